// What a request may cost before it is sent: the input estimate (characters / 4 of the body's
// JSON), the output bound (max_tokens and the step's cap, times n), and the worst case.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHARS_PER_TOKEN,
  NOMINAL_OUTPUT_TOKENS,
  orderingCost,
  outputBound,
  tokensForLimits,
  usd,
  worstCaseCost,
  type RequestFacts,
} from '../../src/routing/estimate.ts';
import { requestFacts } from '../../src/wire/openai-chat/facts.ts';
import type { Price } from '../../src/core/types.ts';

const PRICE: Price = { inputPerMTok: 2, outputPerMTok: 10 };

describe('requestFacts', () => {
  const rows: Array<{ proves: string; body: unknown; endpoint?: string; want: Omit<RequestFacts, 'inputTokens'> }> = [
    // No limit in the request: the output is unbounded as far as the request goes.
    { proves: 'no max_tokens', body: { model: 'c', messages: [{ role: 'user', content: 'hi' }] }, want: { choices: 1, producesOutput: true } },
    // max_tokens is read.
    { proves: 'max_tokens', body: { model: 'c', max_tokens: 300 }, want: { requestedMaxOutput: 300, choices: 1, producesOutput: true } },
    // max_completion_tokens (the newer name) wins over max_tokens.
    {
      proves: 'max_completion_tokens wins',
      body: { model: 'c', max_tokens: 300, max_completion_tokens: 50 },
      want: { requestedMaxOutput: 50, choices: 1, producesOutput: true },
    },
    // n > 1 multiplies the output.
    { proves: 'n choices', body: { model: 'c', max_tokens: 10, n: 3 }, want: { requestedMaxOutput: 10, choices: 3, producesOutput: true } },
    // Nonsense limits are ignored, not trusted.
    { proves: 'invalid limits ignored', body: { model: 'c', max_tokens: -5, max_completion_tokens: 1.5, n: 0 }, want: { choices: 1, producesOutput: true } },
    // Embeddings have no output.
    { proves: 'embeddings', body: { model: 'c', input: 'text' }, endpoint: 'embeddings', want: { choices: 1, producesOutput: false } },
    // A body that is not an object still gets an estimate.
    { proves: 'non-object body', body: 'just text', want: { choices: 1, producesOutput: true } },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const facts = requestFacts(row.body, row.endpoint);
      const { inputTokens, ...rest } = facts;
      assert.deepEqual(rest, row.want);
      assert.equal(inputTokens, Math.ceil(JSON.stringify(row.body).length / CHARS_PER_TOKEN), 'characters / 4 of the JSON');
    });
  }

  // The estimate grows with the prompt: 4000 characters of content are at least 1000 tokens.
  test('the input estimate covers the content', () => {
    const facts = requestFacts({ model: 'c', messages: [{ role: 'user', content: 'x'.repeat(4000) }] });
    assert.ok(facts.inputTokens >= 1000 && facts.inputTokens < 1020, String(facts.inputTokens));
  });
});

describe('requestFacts serialises the body only when the estimate is read', () => {
  // Proves the per-request JSON.stringify is skipped for chains that never read the estimate
  // (no budget, no tpm limit, no "cheapest" order), and done once for those that do.
  test('lazy and memoised', () => {
    let serialised = 0;
    const body = {
      model: 'm',
      max_tokens: 10,
      toJSON: () => {
        serialised++;
        return { messages: 'x'.repeat(40) };
      },
    };
    const facts = requestFacts(body, 'chat');
    assert.equal(facts.requestedMaxOutput, 10);
    assert.equal(serialised, 0);
    assert.equal(facts.inputTokens, Math.ceil(JSON.stringify({ messages: 'x'.repeat(40) }).length / CHARS_PER_TOKEN));
    assert.equal(facts.inputTokens, facts.inputTokens);
    assert.equal(serialised, 1);
  });
});

describe('outputBound, worstCaseCost, orderingCost, tokensForLimits', () => {
  const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({ inputTokens: 1000, choices: 1, producesOutput: true, ...over });
  const rows: Array<{
    proves: string;
    cap?: number;
    price?: Price;
    facts: RequestFacts;
    bound: number | undefined;
    worst: ReturnType<typeof worstCaseCost>;
    ordering: number | undefined;
    tokens: number;
  }> = [
    // The request's max_tokens bounds the output.
    {
      proves: 'request bound',
      price: PRICE,
      facts: facts({ requestedMaxOutput: 500 }),
      bound: 500,
      worst: { kind: 'bounded', usd: (1000 * 2 + 500 * 10) / 1e6, inputTokens: 1000, outputTokens: 500 },
      ordering: (1000 * 2 + 500 * 10) / 1e6,
      tokens: 1500,
    },
    // The step's cap bounds it when the request does not.
    {
      proves: 'step cap',
      cap: 200,
      price: PRICE,
      facts: facts(),
      bound: 200,
      worst: { kind: 'bounded', usd: (1000 * 2 + 200 * 10) / 1e6, inputTokens: 1000, outputTokens: 200 },
      ordering: (1000 * 2 + 200 * 10) / 1e6,
      tokens: 1200,
    },
    // The smaller of the two wins.
    {
      proves: 'smaller of request and cap',
      cap: 200,
      price: PRICE,
      facts: facts({ requestedMaxOutput: 900 }),
      bound: 200,
      worst: { kind: 'bounded', usd: (1000 * 2 + 200 * 10) / 1e6, inputTokens: 1000, outputTokens: 200 },
      ordering: (1000 * 2 + 200 * 10) / 1e6,
      tokens: 1200,
    },
    // n choices multiply the bound.
    {
      proves: 'n multiplies',
      price: PRICE,
      facts: facts({ requestedMaxOutput: 100, choices: 3 }),
      bound: 300,
      worst: { kind: 'bounded', usd: (1000 * 2 + 300 * 10) / 1e6, inputTokens: 1000, outputTokens: 300 },
      ordering: (1000 * 2 + 300 * 10) / 1e6,
      tokens: 1300,
    },
    // Nothing bounds the output and it costs money: the worst case is unbounded; ordering assumes a nominal answer.
    {
      proves: 'unbounded',
      price: PRICE,
      facts: facts(),
      bound: undefined,
      worst: { kind: 'unbounded' },
      ordering: (1000 * 2 + NOMINAL_OUTPUT_TOKENS * 10) / 1e6,
      tokens: 1000,
    },
    // Free output makes an unbounded answer affordable.
    {
      proves: 'free output is bounded in cost',
      price: { inputPerMTok: 1, outputPerMTok: 0 },
      facts: facts(),
      bound: undefined,
      worst: { kind: 'bounded', usd: 1000 / 1e6, inputTokens: 1000, outputTokens: 0 },
      ordering: 1000 / 1e6,
      tokens: 1000,
    },
    // No price: never refused for cost, sorted last by cheapest.
    { proves: 'unpriced', facts: facts({ requestedMaxOutput: 10 }), bound: 10, worst: { kind: 'unpriced' }, ordering: undefined, tokens: 1010 },
    // Embeddings: no output at all.
    {
      proves: 'embeddings',
      price: PRICE,
      facts: facts({ producesOutput: false }),
      bound: 0,
      worst: { kind: 'bounded', usd: 2000 / 1e6, inputTokens: 1000, outputTokens: 0 },
      ordering: 2000 / 1e6,
      tokens: 1000,
    },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const step = { maxOutputTokens: row.cap, price: row.price };
      assert.equal(outputBound(step, row.facts), row.bound);
      assert.deepEqual(worstCaseCost(step, row.facts), row.worst);
      assert.equal(orderingCost(step, row.facts), row.ordering);
      assert.equal(tokensForLimits(step, row.facts), row.tokens);
    });
  }

  // Amounts print readably at every scale.
  test('usd formatting', () => {
    assert.deepEqual([usd(0), usd(0.05), usd(0.0012345), usd(Infinity)], ['$0', '$0.0500', '$0.0012', 'unbounded']);
  });
});
