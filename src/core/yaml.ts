// The yaml library, loaded with require() on first use instead of `import`. `serve --config`
// parses YAML at start anyway, but `serve --kubernetes` in a pod (the service account's files)
// or with a JSON kubeconfig parses none unless a credentials Secret carries an allowed-hosts
// key: there evaluating the library cost 1.0 MB of idle RSS for nothing (67.1 -> 66.1 MB,
// docs/bench/findings.md).
// In the bundle, scripts/bundle.ts turns this require into the bundled module's lazy loader.
// Its package resolves `import` and `require` to the same CommonJS file: nothing else differs.
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

const require = createRequire(import.meta.url);

let yaml: typeof Yaml | undefined;

function library(): typeof Yaml {
  yaml ??= require('yaml') as typeof Yaml;
  return yaml;
}

/** yaml's `parse` (one document). */
export function parseYaml(text: string): unknown {
  return library().parse(text) as unknown;
}

/** yaml's `parseAllDocuments` (every document of a stream). */
export function parseAllYamlDocuments(
  text: string,
  options: Yaml.ParseOptions & Yaml.DocumentOptions & Yaml.SchemaOptions,
): ReturnType<typeof Yaml.parseAllDocuments> {
  return library().parseAllDocuments(text, options);
}
