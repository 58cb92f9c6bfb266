// Gates before a call: the budget (worst case against what is left, in-flight hedges held
// against it) and the hedge decision (when to start the next target in parallel).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { anyAffordable, hedgeDecision, overBudget, type HedgeFacts } from '../../src/routing/gates.ts';
import type { WorstCase } from '../../src/routing/estimate.ts';
import { targetKey, type Provider, type Target } from '../../src/core/types.ts';

describe('overBudget', () => {
  const bounded = (usd: number): WorstCase => ({ kind: 'bounded', usd, inputTokens: 100, outputTokens: 200 });
  const rows: Array<{ proves: string; worst: WorstCase; max?: number; committed: number; want: RegExp | undefined }> = [
    // No budget: everything fits.
    { proves: 'no budget', worst: { kind: 'unbounded' }, committed: 0, want: undefined },
    // Within budget.
    { proves: 'fits', worst: bounded(0.009), max: 0.01, committed: 0, want: undefined },
    // Exactly the budget fits (float sums tolerated).
    { proves: 'exactly the budget', worst: bounded(0.1 + 0.2), max: 0.3, committed: 0, want: undefined },
    // Above: refused with the numbers.
    {
      proves: 'over',
      worst: bounded(0.02),
      max: 0.01,
      committed: 0,
      want: /^over budget: worst case \$0\.0200 \(~100 input \+ 200 output tokens\) exceeds budget\.maxCostPerRequestUSD \$0\.0100$/,
    },
    // What was spent (and is in flight) comes off the budget.
    {
      proves: 'committed counts',
      worst: bounded(0.006),
      max: 0.01,
      committed: 0.005,
      want: /exceeds the \$0\.0050 left of budget\.maxCostPerRequestUSD \$0\.0100/,
    },
    // Unbounded output with a price: refused, saying how to bound it.
    {
      proves: 'unbounded',
      worst: { kind: 'unbounded' },
      max: 1,
      committed: 0,
      want: /output is not bounded \(no max_tokens in the request, no maxOutputTokens on the step\)/,
    },
    // No price known: never refused for cost.
    { proves: 'unpriced', worst: { kind: 'unpriced' }, max: 0, committed: 0, want: undefined },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const why = overBudget(row.worst, row.max, row.committed);
      if (row.want) assert.match(why ?? '', row.want);
      else assert.equal(why, undefined);
    });
  }

  // The up-front check: any one target that fits an untouched budget is enough.
  test('anyAffordable', () => {
    const provider: Provider = { name: 'p', api: 'openai', baseURL: 'http://x/v1', apiKey: 'k', keySource: 'env:K', headers: {} };
    const step = (model: string, outputPerMTok: number): Target => ({
      index: 0,
      provider,
      model,
      retries: 0,
      timeouts: { firstByteMs: 1, idleMs: 1, totalMs: 1 },
      target: targetKey(provider, model),
      price: { inputPerMTok: 1, outputPerMTok },
    });
    const facts = { inputTokens: 1000, requestedMaxOutput: 1000, choices: 1, producesOutput: true };
    assert.equal(anyAffordable([step('a', 100), step('b', 1)], facts, 0.005), true, 'b costs $0.002');
    assert.equal(anyAffordable([step('a', 100), step('b', 50)], facts, 0.005), false, 'both above');
    assert.equal(anyAffordable([step('a', 100)], facts, undefined), true, 'no budget');
  });
});

describe('hedgeDecision', () => {
  const base: HedgeFacts = { afterMs: 200, maxInFlight: 1, inFlight: 1, sinceLastStartMs: 0, remainingMs: 10_000, candidates: true };
  const rows: Array<{ proves: string; facts: Partial<HedgeFacts>; want: ReturnType<typeof hedgeDecision> }> = [
    // Just started: wait the whole afterMs.
    { proves: 'wait afterMs', facts: {}, want: { kind: 'wait', ms: 200 } },
    // Part of it passed: wait the rest.
    { proves: 'wait the rest', facts: { sinceLastStartMs: 150 }, want: { kind: 'wait', ms: 50 } },
    // Time is up: hedge now.
    { proves: 'now', facts: { sinceLastStartMs: 200 }, want: { kind: 'now' } },
    // Hedging off.
    { proves: 'disabled', facts: { afterMs: 0, sinceLastStartMs: 500 }, want: { kind: 'no' } },
    // One hedge already races the attempt (maxInFlight 1): no second.
    { proves: 'bounded to one hedge', facts: { inFlight: 2, sinceLastStartMs: 500 }, want: { kind: 'no' } },
    // maxInFlight 2 allows a second hedge.
    { proves: 'second hedge when allowed', facts: { inFlight: 2, maxInFlight: 2, sinceLastStartMs: 500 }, want: { kind: 'now' } },
    // Nothing left to hedge with.
    { proves: 'no candidate', facts: { candidates: false }, want: { kind: 'no' } },
    // The deadline comes before the hedge time.
    { proves: 'deadline first', facts: { remainingMs: 100 }, want: { kind: 'no' } },
    // Past the deadline: never (and never "now" in a loop).
    { proves: 'past the deadline', facts: { remainingMs: -5, sinceLastStartMs: 900 }, want: { kind: 'no' } },
    // Nothing in flight: nothing to hedge.
    { proves: 'nothing in flight', facts: { inFlight: 0 }, want: { kind: 'no' } },
  ];
  for (const row of rows) {
    test(row.proves, () => assert.deepEqual(hedgeDecision({ ...base, ...row.facts }), row.want));
  }
});
