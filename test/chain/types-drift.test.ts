// The TypeScript types of a FallbackChain are generated from the one JSON schema (npm run
// gen:types writes src/chain/spec.generated.ts): this fails when the committed file is stale,
// and checks the rules of the generator that tsc alone cannot see.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import schema from '../../src/chain/fallbackchain.schema.json' with { type: 'json' };
import { generatedTypesFile, renderGeneratedTypes } from '../../scripts/gen-types.ts';

type Json = Record<string, unknown>;

function withEdit(edit: (spec: Json) => void): object {
  const copy = structuredClone(schema) as unknown as Json;
  edit((copy['properties'] as Json)['spec'] as Json);
  return copy;
}

function specProperty(spec: Json, name: string): Json {
  return (spec['properties'] as Json)[name] as Json;
}

describe('src/chain/spec.generated.ts generation', () => {
  test('the committed file is exactly what npm run gen:types writes (stale-generation check)', () => {
    const committed = readFileSync(generatedTypesFile, 'utf8');
    assert.ok(committed === renderGeneratedTypes(), `${generatedTypesFile} is stale: run \`npm run gen:types\` and commit the result`);
  });

  test('the drift check can fail: a new schema field not regenerated makes the file differ', () => {
    const edited = withEdit((spec) => {
      (spec['properties'] as Json)['newField'] = { type: 'string', description: 'A field added to the schema.' };
    });
    const text = renderGeneratedTypes(edited);
    assert.match(text, /\n {2}newField\?: string;\n/);
    assert.notEqual(text, readFileSync(generatedTypesFile, 'utf8'));
  });

  test('a field with a default is required (the types describe a document after defaults), one without is optional', () => {
    const text = renderGeneratedTypes();
    assert.match(text, /\n {2}retries: number;\n/);
    assert.match(text, /\n {2}policy: PolicySpec;\n/);
    assert.match(text, /\n {2}budget\?: BudgetSpec;\n/);
    assert.match(text, /\n {2}model\?: string;\n/);
  });

  test('enums become unions of literals, and the header value union is kept', () => {
    const text = renderGeneratedTypes();
    assert.match(text, /jitter: 'full' \| 'none';/);
    assert.match(text, /export type HeaderValueSpec = string \| \{/);
    const edited = withEdit((spec) => {
      const policy = specProperty(spec, 'policy');
      specProperty(policy, 'priority')['enum'] = ['speed', 'quality', 'cheapest', 'greenest'];
    });
    assert.match(renderGeneratedTypes(edited), /priority: 'speed' \| 'quality' \| 'cheapest' \| 'greenest';/);
  });

  test('a type named at two paths must have one shape at both', () => {
    const edited = withEdit((spec) => {
      const step = (specProperty(spec, 'steps')['items'] as Json)['properties'] as Json;
      ((step['price'] as Json)['properties'] as Json)['extra'] = { type: 'number', description: 'Only on steps.' };
    });
    assert.throws(() => renderGeneratedTypes(edited), /PriceSpec is declared twice with different shapes/);
  });
});
