// Reads FallbackChain documents from a folder of YAML files, the way `serve --config`
// and `validate` both see them.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllYamlDocuments } from '../core/yaml.ts';
import { credentialProblems, type CredentialPolicy } from './credential-rules.ts';
import { expandEnv } from './expand-env.ts';
import type { FallbackChainDoc } from './spec.ts';
import { validateChainDocument, type Problem } from './validate.ts';

export interface SourcedDoc {
  doc: FallbackChainDoc;
  /** "file.yaml#1": file and 1-based document number. */
  source: string;
}

export interface SourcedProblem extends Problem {
  file: string;
  /** 1-based document number inside the file; 0 for file-level problems. */
  document: number;
}

export interface LoadResult {
  docs: SourcedDoc[];
  problems: SourcedProblem[];
}

const YAML_FILE = /\.ya?ml$/i;

/** The file (as given) and document number of each loaded document, for problems found after loading. */
const origin = new WeakMap<SourcedDoc, { file: string; document: number }>();

/** Every *.yaml / *.yml directly in `dir` (hidden files skipped: Kubernetes' ..data links live there). */
export async function listConfigFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => !e.name.startsWith('.') && YAML_FILE.test(e.name) && (e.isFile() || e.isSymbolicLink()))
    .map((e) => path.join(dir, e.name))
    .sort();
}

export interface LoadOptions {
  /**
   * Check the documents as Kubernetes objects (`validate --kubernetes`): no `${VAR}`
   * expansion (the cluster is the source of truth) and the Kubernetes credential rules.
   */
  kubernetes?: CredentialPolicy;
}

export async function loadFiles(files: string[], env: Readonly<Record<string, string | undefined>>, options: LoadOptions = {}): Promise<LoadResult> {
  const result: LoadResult = { docs: [], problems: [] };
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      result.problems.push({ file, document: 0, path: '', message: `cannot read file: ${(error as Error).message}` });
      continue;
    }
    collectDocuments(file, text, env, result, options);
  }
  checkModelsUnique(result);
  return result;
}

function collectDocuments(file: string, text: string, env: Readonly<Record<string, string | undefined>>, into: LoadResult, options: LoadOptions): void {
  const documents = parseAllYamlDocuments(text, { prettyErrors: true });
  const list = Array.isArray(documents) ? documents : [documents];
  list.forEach((document, i) => {
    const number = i + 1;
    if (document.errors.length > 0) {
      for (const error of document.errors) into.problems.push({ file, document: number, path: '', message: `YAML: ${error.message}` });
      return;
    }
    let raw: unknown;
    try {
      // Parsing can succeed and conversion still fail: an alias with no anchor, or an
      // alias bomb that the yaml library refuses to expand.
      raw = document.toJS({ maxAliasCount: 100 });
    } catch (error) {
      into.problems.push({ file, document: number, path: '', message: `YAML: ${(error as Error).message}` });
      return;
    }
    if (raw === null || raw === undefined) return; // an empty document between `---` lines
    const missing = new Set<string>();
    const expanded = options.kubernetes ? raw : expandEnv(raw, env, missing);
    for (const name of missing) {
      into.problems.push({ file, document: number, path: '', message: `environment variable ${name} is not set and has no default (\${${name}:-default})` });
    }
    const checked = validateChainDocument(expanded);
    const refused = checked.ok && options.kubernetes ? credentialProblems(checked.doc, options.kubernetes) : [];
    for (const problem of refused) into.problems.push({ file, document: number, ...problem });
    if (checked.ok && refused.length === 0) {
      const sourced = { doc: checked.doc, source: `${path.basename(file)}#${number}` };
      origin.set(sourced, { file, document: number });
      into.docs.push(sourced);
    } else if (!checked.ok) {
      for (const problem of checked.problems) into.problems.push({ file, document: number, ...problem });
    }
  });
}

/** Two chains answering to the same model name would make routing ambiguous. */
function checkModelsUnique(result: LoadResult): void {
  const byModel = new Map<string, string>();
  for (const sourced of result.docs) {
    const { doc, source } = sourced;
    const model = doc.spec.model ?? doc.metadata.name;
    const earlier = byModel.get(model);
    if (earlier) {
      const { file, document } = origin.get(sourced) ?? { file: source, document: 0 };
      result.problems.push({ file, document, path: '/spec/model', message: `model "${model}" is already served by the chain in ${earlier}` });
    } else {
      byModel.set(model, source);
    }
  }
}
