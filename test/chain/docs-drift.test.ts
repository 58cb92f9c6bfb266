// The configuration reference is generated from the one JSON schema (npm run gen:docs): this
// fails when the committed docs/configuration.md is stale, and checks that every field of the
// schema has a row, so the page cannot drift from what serve, validate and the CRD accept.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import schema from '../../src/chain/fallbackchain.schema.json' with { type: 'json' };
import { configurationDocFile, renderConfigurationDoc } from '../../scripts/gen-docs.ts';

type Json = Record<string, unknown>;

/** Every leaf field path of the spec, in the page's notation (lists as [], maps as .<name>). */
function fieldPaths(node: Json, at: string): string[] {
  const out: string[] = [];
  const properties = (node['properties'] ?? {}) as Json;
  for (const [name, child] of Object.entries(properties)) {
    const path = `${at}.${name}`;
    out.push(path);
    const c = child as Json;
    if (c['items']) out.push(...fieldPaths(c['items'] as Json, `${path}[]`));
    else out.push(...fieldPaths(c, path));
  }
  return out;
}

describe('docs/configuration.md generation', () => {
  test('the committed page is exactly what npm run gen:docs writes (stale-generation check)', () => {
    const committed = readFileSync(configurationDocFile, 'utf8');
    assert.ok(committed === renderConfigurationDoc(), `${configurationDocFile} is stale: run \`npm run gen:docs\` and commit the result`);
  });

  test('every field of the spec has a row', () => {
    const committed = readFileSync(configurationDocFile, 'utf8');
    const missing = fieldPaths(schema.properties.spec as Json, 'spec').filter((path) => !committed.includes(`| \`${path}\` |`));
    assert.deepEqual(missing, []);
  });

  test('the drift check can fail: a schema edit not regenerated makes the page differ', () => {
    const edited = structuredClone(schema) as unknown as Json;
    const spec = (edited['properties'] as Json)['spec'] as Json;
    const model = (spec['properties'] as Json)['model'] as Json;
    model['description'] = `${String(model['description'])} (edited)`;
    assert.notEqual(renderConfigurationDoc(edited), readFileSync(configurationDocFile, 'utf8'));
  });
});
