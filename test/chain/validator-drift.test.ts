// The sidecar validates FallbackChain documents with code Ajv generated ahead of time
// (npm run gen:validator): this fails when the committed src/chain/fallbackchain.validator.ts
// is not what the schema compiles to now, and checks that it validates like a fresh compile.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import schema from '../../src/chain/fallbackchain.schema.json' with { type: 'json' };
import { closeObjects } from '../../src/chain/schema-compile.ts';
import { validateChainDocument } from '../../src/chain/validate.ts';
import { renderValidatorFile, validatorFile } from '../../scripts/gen-validator.ts';

describe('generated schema validator', () => {
  test('the committed validator is exactly what npm run gen:validator writes (stale-generation check)', async () => {
    const committed = readFileSync(validatorFile, 'utf8');
    assert.ok(committed === (await renderValidatorFile()), `${validatorFile} is stale: run \`npm run gen:validator\` and commit the result`);
  });

  test('it fills defaults and reports problems like a validator compiled at runtime', () => {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
    const fresh = ajv.compile(closeObjects(schema) as object);
    const doc = {
      apiVersion: 'llmfallback.io/v1alpha1',
      kind: 'FallbackChain',
      metadata: { name: 'c' },
      spec: { providers: [{ name: 'p', baseURL: 'http://127.0.0.1:1/v1', apiKey: { env: 'K' } }], steps: [{ provider: 'p', model: 'm' }] },
    };
    const expected = structuredClone(doc);
    assert.equal(fresh(expected), true);
    const checked = validateChainDocument(doc);
    assert.ok(checked.ok);
    assert.deepEqual(checked.doc, expected);
    const typo = { ...doc, spec: { ...doc.spec, steps: [{ provider: 'p', model: 'm', retires: 3 }] } };
    assert.equal(fresh(structuredClone(typo)), false);
    const refused = validateChainDocument(typo);
    assert.ok(!refused.ok);
    assert.deepEqual(refused.problems, [{ path: '/spec/steps/0/retires', message: 'unknown field' }]);
  });
});
