// Writes src/chain/spec.generated.ts, the TypeScript types of a FallbackChain, from the one JSON
// schema (src/chain/fallbackchain.schema.json), so the types cannot drift from what is validated.
// Run with `npm run gen:types` after changing the schema (npm run gen:crd runs it too);
// test/chain/types-drift.test.ts fails while the file is stale.
//
// A small generator of our own rather than json-schema-to-typescript: the types describe a
// document *after* validation, when ajv has filled in the defaults, so a field with a default is
// required here although the schema does not list it as required; and the CRD-only keywords
// (x-kubernetes-*) must simply be ignored. Named types come from the NAMES table below; every
// other object is written inline.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import schema from '../src/chain/fallbackchain.schema.json' with { type: 'json' };

export const generatedTypesFile = fileURLToPath(new URL('../src/chain/spec.generated.ts', import.meta.url));

type Json = Record<string, unknown>;

/** Schema paths (lists as [], map values as {}) that get a named, exported type. */
const NAMES: Record<string, string> = {
  spec: 'FallbackChainSpec',
  'spec.providers[]': 'ProviderSpec',
  'spec.providers[].apiKey': 'ApiKeyRef',
  'spec.providers[].headers{}': 'HeaderValueSpec',
  'spec.steps[]': 'StepSpec',
  'spec.steps[].timeouts': 'StepTimeoutsSpec',
  'spec.steps[].price': 'PriceSpec',
  'spec.steps[].limits': 'LimitsSpec',
  'spec.steps[].targets[]': 'TargetSpec',
  'spec.steps[].targets[].price': 'PriceSpec',
  'spec.steps[].targets[].limits': 'LimitsSpec',
  'spec.policy': 'PolicySpec',
  'spec.circuitBreaker': 'CircuitBreakerSpec',
  'spec.budget': 'BudgetSpec',
  status: 'FallbackChainStatus',
  'status.conditions[]': 'ChainCondition',
};

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class Generator {
  readonly declarations = new Map<string, string>();

  /** The type of the node at `at`: a name (declared once) or an inline type. */
  typeAt(node: Json, at: string, indent: string): string {
    const name = NAMES[at];
    if (name === undefined) return this.inline(node, at, indent);
    const body = this.inline(node, at, '');
    // A type named at several paths (a price, limits) gets no path-specific description.
    const shared = Object.values(NAMES).filter((other) => other === name).length > 1;
    const declaration = `${shared ? '' : doc(node, '')}export ${body.startsWith('{') ? `interface ${name} ` : `type ${name} = `}${body}${body.startsWith('{') ? '' : ';'}\n`;
    const earlier = this.declarations.get(name);
    if (earlier !== undefined && earlier !== declaration) {
      throw new Error(`${at}: ${name} is declared twice with different shapes`);
    }
    if (earlier === undefined) this.declarations.set(name, declaration);
    return name;
  }

  inline(node: Json, at: string, indent: string): string {
    if (Array.isArray(node['enum'])) return (node['enum'] as unknown[]).map(literal).join(' | ');
    if (Array.isArray(node['anyOf'])) {
      return (node['anyOf'] as unknown[])
        .filter(isObject)
        .map((branch) => this.inline(branch, at, indent))
        .join(' | ');
    }
    switch (node['type']) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array': {
        const item = this.typeAt(isObject(node['items']) ? node['items'] : {}, `${at}[]`, indent);
        return /^[\w]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
      }
      case 'object':
        return this.object(node, at, indent);
      default:
        return 'unknown';
    }
  }

  object(node: Json, at: string, indent: string): string {
    const properties = isObject(node['properties']) ? node['properties'] : {};
    const required = new Set(Array.isArray(node['required']) ? (node['required'] as string[]) : []);
    const lines: string[] = [];
    for (const [name, child] of Object.entries(properties)) {
      if (!isObject(child)) continue;
      // After validation ajv has filled in defaults: a defaulted field is always there.
      const present = required.has(name) || 'default' in child;
      const type = this.typeAt(child, at === '' ? name : `${at}.${name}`, `${indent}  `);
      lines.push(`${doc(child, `${indent}  `)}${indent}  ${name}${present ? '' : '?'}: ${type};`);
    }
    if (isObject(node['additionalProperties'])) {
      lines.push(`${indent}  [name: string]: ${this.typeAt(node['additionalProperties'], `${at}{}`, `${indent}  `)};`);
    }
    if (lines.length === 0) return 'Record<string, unknown>';
    return `{\n${lines.join('\n')}\n${indent}}`;
  }
}

function literal(value: unknown): string {
  return typeof value === 'string' && !/['\\]/.test(value) ? `'${value}'` : JSON.stringify(value);
}

function doc(node: Json, indent: string): string {
  const parts: string[] = [];
  if (typeof node['description'] === 'string') parts.push(node['description']);
  if ('default' in node) parts.push(`Default: ${JSON.stringify(node['default'])}.`);
  if (parts.length === 0) return '';
  return `${indent}/** ${parts.join(' ').replaceAll('*/', '*\\/')} */\n`;
}

/** The exact text of src/chain/spec.generated.ts for the schema given (default: the committed one). */
export function renderGeneratedTypes(source: object = schema): string {
  const root = source as Json;
  const properties = root['properties'] as Json;
  const generator = new Generator();
  generator.typeAt(properties['spec'] as Json, 'spec', '');
  generator.typeAt(properties['status'] as Json, 'status', '');
  return [
    '// generated from src/chain/fallbackchain.schema.json by npm run gen:types — do not edit',
    '// The TypeScript view of a FallbackChain after schema validation, with the defaults filled in.',
    '',
    ...[...generator.declarations.values()],
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await writeFile(generatedTypesFile, renderGeneratedTypes());
  console.log(`wrote ${path.relative(process.cwd(), generatedTypesFile)}`);
}
