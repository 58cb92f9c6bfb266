// Writes docs/configuration.md, the FallbackChain field reference, from the one JSON schema
// (src/chain/fallbackchain.schema.json): every field with its type, default, limits and
// description, and the cross-field rules. Run with `npm run gen:docs` after changing the
// schema (npm run gen:crd runs it too); test/chain/docs-drift.test.ts fails while the page is stale.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import schema from '../src/chain/fallbackchain.schema.json' with { type: 'json' };

export const configurationDocFile = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

type Json = Record<string, unknown>;

interface Row {
  path: string;
  node: Json;
  required: boolean;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every field below `node`, depth first, in the schema's order. */
function rows(node: Json, at: string): Row[] {
  const out: Row[] = [];
  const required = new Set(Array.isArray(node['required']) ? (node['required'] as string[]) : []);
  for (const [name, child] of Object.entries(isObject(node['properties']) ? node['properties'] : {})) {
    if (!isObject(child)) continue;
    const childPath = at === '' ? name : `${at}.${name}`;
    out.push({ path: childPath, node: child, required: required.has(name) });
    out.push(...below(child, childPath));
  }
  return out;
}

function below(node: Json, at: string): Row[] {
  if (isObject(node['items'])) return rows(node['items'], `${at}[]`);
  if (isObject(node['additionalProperties'])) {
    const value = node['additionalProperties'];
    return [{ path: `${at}.<name>`, node: value, required: false }, ...rows(value, `${at}.<name>`), ...union(value, `${at}.<name>`)];
  }
  return rows(node, at);
}

/** The object branches of an anyOf (e.g. a header value that is a string or {valueFrom}). */
function union(node: Json, at: string): Row[] {
  const branches = Array.isArray(node['anyOf']) ? (node['anyOf'] as unknown[]).filter(isObject) : [];
  return branches.flatMap((branch) => rows(branch, at));
}

function typeOf(node: Json): string {
  if (Array.isArray(node['enum'])) return (node['enum'] as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
  if (Array.isArray(node['anyOf'])) return (node['anyOf'] as unknown[]).filter(isObject).map(typeOf).join(' or ');
  const type = typeof node['type'] === 'string' ? node['type'] : node['x-kubernetes-preserve-unknown-fields'] === true ? 'any' : 'object';
  if (type === 'array' && isObject(node['items'])) return `array of ${typeOf(node['items'])}`;
  if (type === 'object' && isObject(node['additionalProperties'])) return `map of ${typeOf(node['additionalProperties'])}`;
  return type;
}

function limitsOf(node: Json): string {
  const parts: string[] = [];
  const pair = (low: string, high: string, unit: string): void => {
    const min = node[low];
    const max = node[high];
    if (typeof min === 'number' && typeof max === 'number') parts.push(`${min}–${max}${unit}`);
    else if (typeof min === 'number') parts.push(`≥ ${min}${unit}`);
    else if (typeof max === 'number') parts.push(`≤ ${max}${unit}`);
  };
  pair('minimum', 'maximum', '');
  pair('minLength', 'maxLength', ' chars');
  pair('minItems', 'maxItems', ' items');
  if (typeof node['maxProperties'] === 'number') parts.push(`≤ ${node['maxProperties']} entries`);
  if (typeof node['pattern'] === 'string') parts.push(`pattern \`${node['pattern']}\``);
  if (node['x-kubernetes-list-type'] === 'map' && Array.isArray(node['x-kubernetes-list-map-keys'])) {
    parts.push(`unique by ${(node['x-kubernetes-list-map-keys'] as string[]).join(', ')}`);
  }
  return parts.join('; ');
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function defaultOf(node: Json): string {
  return 'default' in node ? `\`${JSON.stringify(node['default'])}\`` : '';
}

function table(all: Row[]): string[] {
  const out = ['| field | type | required | default | limits | description |', '|---|---|---|---|---|---|'];
  for (const row of all) {
    const description = typeof row.node['description'] === 'string' ? row.node['description'] : '';
    // Pipes inside backticks stay escaped in GitHub tables, so the type column escapes them itself.
    out.push(
      `| \`${row.path}\` | ${typeOf(row.node)} | ${row.required ? 'yes' : ''} | ${cell(defaultOf(row.node))} | ${cell(limitsOf(row.node))} | ${cell(description)} |`,
    );
  }
  return out;
}

function rules(node: unknown, at: string, out: string[]): string[] {
  if (!isObject(node)) return out;
  const found = node['x-kubernetes-validations'];
  if (Array.isArray(found)) {
    for (const rule of found.filter(isObject))
      out.push(`| \`${at || '.'}\` | ${cell(text(rule['message'] ?? rule['messageExpression']))} | \`${cell(String(rule['rule']))}\` |`);
  }
  if (isObject(node['properties'])) for (const [name, child] of Object.entries(node['properties'])) rules(child, at === '' ? name : `${at}.${name}`, out);
  if (isObject(node['items'])) rules(node['items'], `${at}[]`, out);
  return out;
}

/** The exact text of docs/configuration.md for the schema given (default: the committed one). */
export function renderConfigurationDoc(source: object = schema): string {
  const root = source as Json;
  const properties = root['properties'] as Json;
  const spec = properties['spec'] as Json;
  const status = properties['status'] as Json;
  return [
    '<!-- generated from src/chain/fallbackchain.schema.json by npm run gen:docs — do not edit -->',
    '# Configuration reference: FallbackChain',
    '',
    `${String(root['description'])} This page is generated from the JSON schema`,
    '(`src/chain/fallbackchain.schema.json`) that `serve`, `validate` and the CRD all use, so it',
    'cannot drift from what is accepted. An annotated example and the rules for credentials are in',
    '[chains.md](chains.md); routing fields are explained in [routing.md](routing.md).',
    '',
    'Unknown fields are errors. In config files (not in Kubernetes objects) string values may use',
    '`${VAR}` and `${VAR:-default}`. A path such as `steps[].targets[].weight` names a field of',
    'every element of a list; `<name>` stands for a key of a map.',
    '',
    '## `spec`',
    '',
    ...table(rows(spec, 'spec')),
    '',
    '## Rules across fields',
    '',
    'Checked by the API server (CEL) in a cluster and by `validate`/`serve` everywhere.',
    '',
    '| where | message | rule |',
    '|---|---|---|',
    ...rules(spec, 'spec', []),
    '',
    '## `status` (written by the controller)',
    '',
    ...table(rows(status, 'status')),
    '',
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await writeFile(configurationDocFile, renderConfigurationDoc());
  console.log(`wrote ${path.relative(process.cwd(), configurationDocFile)}`);
}

/** A schema value shown in a table cell: strings as they are, anything else as JSON. */
function text(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
}
