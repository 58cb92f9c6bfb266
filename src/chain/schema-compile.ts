// How the FallbackChain schema becomes a validator: the file view of the schema and Ajv's
// options. Build time only (npm run gen:validator writes fallbackchain.validator.ts from it);
// the sidecar loads the generated code, not Ajv's compiler (startup time and idle memory,
// docs/bench/findings.md).
import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import type { JsonObject } from '../core/json.ts';

// Kubernetes prunes unknown fields silently; a file loader should not: a typo such
// as `retires: 3` must be an error. So the file view of the schema closes every
// object that lists its properties (metadata stays open, as in Kubernetes).
export function closeObjects(node: unknown, pathKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => closeObjects(n, pathKey));
  if (typeof node !== 'object' || node === null) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) out[key] = closeObjects(value, key);
  const hasProps = typeof out['properties'] === 'object' && out['properties'] !== null;
  if (out['type'] === 'object' && hasProps && pathKey !== 'metadata' && !('additionalProperties' in out)) {
    out['additionalProperties'] = false;
  }
  return out;
}

function schemaAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, code: { source: true, esm: true } });
  ajv.addKeyword('x-kubernetes-validations');
  ajv.addKeyword('x-kubernetes-preserve-unknown-fields');
  // Server-side-apply merge hints; the uniqueness they imply is checked by checkCrossFieldRules.
  ajv.addKeyword('x-kubernetes-list-type');
  ajv.addKeyword('x-kubernetes-list-map-keys');
  return ajv;
}

export const VALIDATOR_HEADER = [
  '// @ts-nocheck',
  '// Generated from src/chain/fallbackchain.schema.json by npm run gen:validator (Ajv standalone code) — do not edit.',
  '// test/chain/validator-drift.test.ts fails while this file is stale.',
].join('\n');

// Ajv's ESM output still require()s its runtime helpers (string length in code points); an ES
// module has no require, so each becomes an import of the same CommonJS file.
const RUNTIME_REQUIRE = /require\("(ajv\/dist\/runtime\/[a-z0-9]+)"\)/g;

function asEsModule(code: string): string {
  const imports = new Map<string, string>();
  const body = code.replace(RUNTIME_REQUIRE, (_match, module: string) => {
    const name = `runtime${imports.size}`;
    imports.set(name, `${module}.js`);
    return name;
  });
  const lines = [...imports].map(([name, module]) => `import ${name} from ${JSON.stringify(module)};`);
  return [...lines, body].join('\n');
}

/** The exact text of the generated validator module for `schema`. */
export function renderValidator(schema: object): string {
  const ajv = schemaAjv();
  const validate = ajv.compile(closeObjects(schema) as object);
  return `${VALIDATOR_HEADER}\n${asEsModule(standalone.default(ajv, validate))}\n`;
}
