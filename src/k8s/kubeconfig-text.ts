// A kubeconfig file's text as a value. JSON is a subset of YAML, so a file that is JSON (what
// many tools and scripts write, `kubectl config view -o json` too) is read with JSON.parse and
// gives what the yaml library would; anything else (kubectl's own YAML) goes to the yaml library.
//
// Why not the yaml library for both: its double-quoted-scalar reader walks a string one
// character at a time, and a JSON kubeconfig's `certificate-authority-data` is one such string
// of 1.5–2.5 KB. That loop ran long enough for V8 to optimise it on the spot (OSR, TurboFan), which
// touches the optimising compiler's code in the node binary (and its zone memory): `serve
// --kubernetes` with the bench's JSON kubeconfig idled at 74.0 MB of RSS, 68.0 MB with
// JSON.parse (docs/bench/findings.md). JSON.parse is native code and optimises nothing.
import { readFileSync } from 'node:fs';
import { parseJson } from '../core/json.ts';
import { parseYaml } from '../core/yaml.ts';

/** The parsed document; the file system's or the YAML parser's error when it cannot be read. */
export function readKubeconfigText(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  // A YAML flow mapping (`{apiVersion: v1, …}`) is not JSON: parseJson gives undefined, and the yaml library reads it.
  const json = text.trimStart().startsWith('{') ? parseJson(text) : undefined;
  return json !== undefined ? json : parseYaml(text);
}
