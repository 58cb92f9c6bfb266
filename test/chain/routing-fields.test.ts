// The routing fields of a FallbackChain: step groups (targets with weights), maxOutputTokens,
// limits, policy.adaptive / priority / hedge.maxInFlight; how they validate (with the same words
// as the CRD's CEL rules) and how they resolve into the engine's Chain (a group becomes
// consecutive targets sharing the step's index; prices: target > step > built-in table).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validateChainDocument } from '../../src/chain/validate.ts';
import { resolveChain } from '../../src/chain/resolve.ts';
import type { FallbackChainDoc } from '../../src/chain/spec.ts';

type Json = Record<string, unknown>;

function doc(steps: unknown[], policy?: Json): Json {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: 'chat' },
    spec: {
      providers: [
        { name: 'a', baseURL: 'http://127.0.0.1:9/v1' },
        { name: 'b', baseURL: 'http://127.0.0.1:9/v1' },
      ],
      steps,
      ...(policy ? { policy } : {}),
    },
  };
}

function mustValidate(input: unknown): FallbackChainDoc {
  const result = validateChainDocument(input);
  if (!result.ok) assert.fail(`expected valid, got ${JSON.stringify(result.problems)}`);
  return result.doc;
}

describe('validation', () => {
  const invalid: Array<{ proves: string; input: Json; problems: Array<[string, string]> }> = [
    // provider/model and targets together: which one is meant would be a guess.
    {
      proves: 'both forms',
      input: doc([{ provider: 'a', model: 'm', targets: [{ provider: 'a', model: 'n' }] }]),
      problems: [['/spec/steps/0', 'a step sets either provider and model, or targets']],
    },
    // Neither form.
    { proves: 'neither form', input: doc([{ retries: 1 }]), problems: [['/spec/steps/0', 'a step sets either provider and model, or targets']] },
    // A plain step without a model.
    { proves: 'provider without model', input: doc([{ provider: 'a' }]), problems: [['/spec/steps/0', 'a step sets either provider and model, or targets']] },
    // A target names an undeclared provider.
    {
      proves: 'undeclared target provider',
      input: doc([
        {
          targets: [
            { provider: 'a', model: 'm' },
            { provider: 'zz', model: 'm' },
          ],
        },
      ]),
      problems: [['/spec/steps/0/targets/1/provider', 'each step target must name a provider that spec.providers declares']],
    },
    // The same target twice in a group.
    {
      proves: 'duplicate target',
      input: doc([
        {
          targets: [
            { provider: 'a', model: 'm' },
            { provider: 'a', model: 'm', weight: 2 },
          ],
        },
      ]),
      problems: [['/spec/steps/0', 'a target (provider and model) appears twice in one step']],
    },
    // An empty group.
    { proves: 'empty targets', input: doc([{ targets: [] }]), problems: [['/spec/steps/0/targets', 'must NOT have fewer than 1 items']] },
    // Weights are 0..1000.
    {
      proves: 'negative weight',
      input: doc([{ targets: [{ provider: 'a', model: 'm', weight: -1 }] }]),
      problems: [['/spec/steps/0/targets/0/weight', 'must be >= 0']],
    },
    // Limits are positive integers.
    { proves: 'rpm 0', input: doc([{ provider: 'a', model: 'm', limits: { rpm: 0 } }]), problems: [['/spec/steps/0/limits/rpm', 'must be >= 1']] },
    // maxOutputTokens is a positive integer.
    {
      proves: 'maxOutputTokens 0',
      input: doc([{ provider: 'a', model: 'm', maxOutputTokens: 0 }]),
      problems: [['/spec/steps/0/maxOutputTokens', 'must be >= 1']],
    },
    // priority is an enum.
    {
      proves: 'unknown priority',
      input: doc([{ provider: 'a', model: 'm' }], { priority: 'fastest' }),
      problems: [['/spec/policy/priority', 'must be one of "speed", "quality", "cheapest"']],
    },
    // A typo inside a target is refused like anywhere else.
    {
      proves: 'unknown field in a target',
      input: doc([{ targets: [{ provider: 'a', model: 'm', wieght: 2 }] }]),
      problems: [['/spec/steps/0/targets/0/wieght', 'unknown field']],
    },
  ];
  for (const row of invalid) {
    test(`invalid: ${row.proves}`, () => {
      const result = validateChainDocument(row.input);
      assert.equal(result.ok, false);
      if (!result.ok)
        assert.deepEqual(
          result.problems.map((p) => [p.path, p.message]),
          row.problems,
        );
    });
  }

  // Defaults: weight 1 per target, hedge.maxInFlight 1, adaptive off, quality order.
  test('defaults', () => {
    const d = mustValidate(
      doc(
        [
          {
            targets: [
              { provider: 'a', model: 'm' },
              { provider: 'b', model: 'm', weight: 0 },
            ],
          },
        ],
        { hedge: { afterMs: 300 } },
      ),
    );
    assert.deepEqual(
      d.spec.steps[0]?.targets?.map((t) => t.weight),
      [1, 0],
    );
    assert.deepEqual([d.spec.policy.hedge, d.spec.policy.adaptive, d.spec.policy.priority], [{ afterMs: 300, maxInFlight: 1 }, false, 'quality']);
  });
});

describe('resolveChain', () => {
  const keys = { env: {}, credentialsDir: '/nonexistent' };

  // A group becomes consecutive targets sharing the step's index; step settings apply to each.
  test('a group flattens into targets of one step', () => {
    const chain = resolveChain(
      mustValidate(
        doc(
          [
            {
              targets: [
                { provider: 'a', model: 'gpt-4o', weight: 3 },
                { provider: 'b', model: 'gpt-4o', limits: { rpm: 5 }, price: { inputPerMTok: 1, outputPerMTok: 2 } },
              ],
              retries: 2,
              maxOutputTokens: 500,
              limits: { rpm: 100, tpm: 5000 },
            },
            { provider: 'a', model: 'm-last' },
          ],
          { adaptive: true, priority: 'speed', hedge: { afterMs: 250, maxInFlight: 2 } },
        ),
      ),
      'x.yaml#1',
      keys,
    );
    assert.deepEqual(
      chain.steps.map((s) => [s.index, s.provider.name, s.model, s.weight, s.retries, s.maxOutputTokens, s.limits]),
      [
        [0, 'a', 'gpt-4o', 3, 2, 500, { rpm: 100, tpm: 5000 }],
        [0, 'b', 'gpt-4o', 1, 2, 500, { rpm: 5 }],
        [1, 'a', 'm-last', undefined, 1, undefined, undefined],
      ],
    );
    assert.notEqual(chain.steps[0]?.target, chain.steps[1]?.target, 'two keys of one model are two targets (two breakers)');
    assert.deepEqual([chain.policy.adaptive, chain.policy.priority, chain.policy.hedgeAfterMs, chain.policy.hedgeMaxInFlight], [true, 'speed', 250, 2]);
  });

  // Prices: a target's own, else the step's, else the built-in table; priceSource says which.
  const prices: Array<{ proves: string; step: Json; want: { price: unknown; source: string | undefined } }> = [
    // The built-in table prices a known model without configuration.
    {
      proves: 'built-in',
      step: { provider: 'a', model: 'gpt-4o-mini' },
      want: { price: { inputPerMTok: 0.15, outputPerMTok: 0.6, cachedInputPerMTok: 0.075 }, source: 'builtin' },
    },
    // The step's price overrides the table.
    {
      proves: 'step over built-in',
      step: { provider: 'a', model: 'gpt-4o-mini', price: { inputPerMTok: 9, outputPerMTok: 9 } },
      want: { price: { inputPerMTok: 9, outputPerMTok: 9, cachedInputPerMTok: undefined }, source: 'config' },
    },
    // A target's price overrides the step's.
    {
      proves: 'target over step',
      step: {
        targets: [{ provider: 'a', model: 'x', price: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 0.5 } }],
        price: { inputPerMTok: 9, outputPerMTok: 9 },
      },
      want: { price: { inputPerMTok: 1, outputPerMTok: 1, cachedInputPerMTok: 0.5 }, source: 'config' },
    },
    // An unknown model without a price has none.
    { proves: 'unknown model', step: { provider: 'a', model: 'my-finetune' }, want: { price: undefined, source: undefined } },
  ];
  for (const row of prices) {
    test(`price: ${row.proves}`, () => {
      const chain = resolveChain(mustValidate(doc([row.step])), 'x.yaml#1', keys);
      assert.deepEqual(chain.steps[0]?.price, row.want.price);
      assert.equal(chain.steps[0]?.priceSource, row.want.source);
    });
  }
});
