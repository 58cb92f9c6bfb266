// Small pure helpers: cost accounting, secret redaction, ${VAR:-default} expansion.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addUsage, costOf, NO_USAGE, roundUSD } from '../../src/core/cost.ts';
import { redactSecrets } from '../../src/core/redact.ts';
import { expandEnv } from '../../src/chain/expand-env.ts';
import type { Price, Usage } from '../../src/core/types.ts';

const usage = (inputTokens: number, outputTokens: number, cachedInputTokens = 0): Usage => ({ inputTokens, outputTokens, cachedInputTokens });

describe('costOf', () => {
  const cases: Array<{ name: string; usage: Usage; price: Price | undefined; want: number }> = [
    // No price configured: the attempt costs nothing we know of.
    { name: 'no price → 0', usage: usage(1000, 1000), price: undefined, want: 0 },
    // Plain input + output at their per-million rates.
    { name: 'input and output', usage: usage(1_000_000, 500_000), price: { inputPerMTok: 2, outputPerMTok: 8 }, want: 2 + 4 },
    // Cached tokens are part of the input count and billed at the cached rate.
    {
      name: 'cached at cached rate',
      usage: usage(1_000_000, 0, 400_000),
      price: { inputPerMTok: 1, outputPerMTok: 0, cachedInputPerMTok: 0.25 },
      want: 0.6 + 0.1,
    },
    // Without a cached rate, cached tokens cost the input rate.
    { name: 'cached rate defaults to input rate', usage: usage(1_000_000, 0, 400_000), price: { inputPerMTok: 1, outputPerMTok: 0 }, want: 1 },
    // More cached than input (a provider quirk) is clamped: never a negative uncached count.
    { name: 'cached > input clamped', usage: usage(100_000, 0, 300_000), price: { inputPerMTok: 1, outputPerMTok: 0, cachedInputPerMTok: 0.5 }, want: 0.05 },
    // Zero usage costs zero even with a price.
    { name: 'zero usage', usage: NO_USAGE, price: { inputPerMTok: 3, outputPerMTok: 15 }, want: 0 },
    // A realistic small request: 1200 in, 300 out at gpt-4o-mini prices.
    { name: 'small request', usage: usage(1200, 300), price: { inputPerMTok: 0.15, outputPerMTok: 0.6 }, want: (1200 * 0.15 + 300 * 0.6) / 1e6 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = costOf(c.usage, c.price);
      assert.ok(Math.abs(got - c.want) < 1e-12, `${got} ≈ ${c.want}`);
    });
  }
});

describe('roundUSD', () => {
  const cases: Array<{ value: number; want: number; why: string }> = [
    { value: 0.1 + 0.2, want: 0.3, why: 'float noise is removed' },
    { value: 0.00036, want: 0.00036, why: 'an exact small cost is kept' },
    { value: 1.23456789012345, want: 1.2345678901, why: 'rounded to 10 decimals' },
    { value: 0.00000000004, want: 0, why: 'below 1e-10 rounds to 0' },
    { value: 0.00000000005, want: 1e-10, why: 'half of 1e-10 rounds up' },
    { value: 0, want: 0, why: 'zero stays zero' },
  ];
  for (const c of cases) {
    test(`${c.value} → ${c.want} (${c.why})`, () => {
      assert.equal(roundUSD(c.value), c.want);
    });
  }
});

describe('addUsage', () => {
  // Sums each counter separately.
  test('adds field by field', () => {
    assert.deepEqual(addUsage(usage(10, 20, 3), usage(1, 2, 1)), usage(11, 22, 4));
  });
  // NO_USAGE is the identity, and the frozen constant is not mutated.
  test('NO_USAGE is neutral and stays zero', () => {
    assert.deepEqual(addUsage(NO_USAGE, usage(5, 6, 7)), usage(5, 6, 7));
    assert.deepEqual(NO_USAGE, usage(0, 0, 0));
    assert.ok(Object.isFrozen(NO_USAGE));
  });
});

describe('redactSecrets', () => {
  const KEY = 'sk-proj-abcdefghijklmnop1234';
  const cases: Array<{ name: string; text: string; secrets: string[]; want: string }> = [
    // An upstream error echoing the key has it replaced, every occurrence.
    {
      name: 'key replaced everywhere',
      text: `Incorrect API key provided: ${KEY}. Key ${KEY} is invalid.`,
      secrets: [KEY],
      want: 'Incorrect API key provided: [REDACTED]. Key [REDACTED] is invalid.',
    },
    // Several secrets are all replaced.
    {
      name: 'several secrets',
      text: 'a=secret-one-1234 b=secret-two-5678',
      secrets: ['secret-one-1234', 'secret-two-5678'],
      want: 'a=[REDACTED] b=[REDACTED]',
    },
    // Short strings would blank out ordinary words: not replaced.
    { name: 'short secret not replaced', text: 'the model said test', secrets: ['test'], want: 'the model said test' },
    // Seven characters is still too short; eight is enough.
    { name: 'length boundary', text: 'abcdefg abcdefgh', secrets: ['abcdefg', 'abcdefgh'], want: 'abcdefg [REDACTED]' },
    // A bearer token is redacted even when it is not a known secret.
    { name: 'Bearer token redacted', text: 'authorization: Bearer eyJhbGciOi.payload_part-1', secrets: [], want: 'authorization: Bearer [REDACTED]' },
    // A short bearer word is left alone (it is not a token).
    { name: 'short Bearer word kept', text: 'Bearer abc', secrets: [], want: 'Bearer abc' },
    // Text without secrets is unchanged.
    { name: 'nothing to redact', text: 'all fine', secrets: [KEY], want: 'all fine' },
    // An empty secret list is fine.
    { name: 'no secrets', text: `key ${KEY}`, secrets: [], want: `key ${KEY}` },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(redactSecrets(c.text, c.secrets), c.want);
    });
  }
  // Any iterable works (the proxy passes a Set of resolved keys).
  test('accepts a Set', () => {
    assert.equal(redactSecrets(`x ${KEY} y`, new Set([KEY])), 'x [REDACTED] y');
  });
});

describe('expandEnv', () => {
  const env = { A: 'alpha', URL: 'http://127.0.0.1:4010/v1', EMPTY: '' };
  const cases: Array<{ name: string; value: unknown; want: unknown; missing: string[] }> = [
    // A set variable is substituted.
    { name: '${A}', value: 'x-${A}-y', want: 'x-alpha-y', missing: [] },
    // A set variable wins over its default.
    { name: '${A:-def} with A set', value: '${A:-def}', want: 'alpha', missing: [] },
    // An unset variable uses its default.
    { name: '${B:-def} with B unset', value: '${B:-def}', want: 'def', missing: [] },
    // An empty variable also uses the default (shell :- semantics).
    { name: 'empty var uses default', value: '${EMPTY:-fallback}', want: 'fallback', missing: [] },
    // A default may be empty.
    { name: 'empty default', value: 'a${B:-}b', want: 'ab', missing: [] },
    // A default may contain URL characters.
    { name: 'URL default', value: '${NOPE:-http://127.0.0.1:4010/v1}', want: 'http://127.0.0.1:4010/v1', missing: [] },
    // Missing without a default: replaced by nothing and recorded.
    { name: 'missing without default', value: 'k=${MISSING_KEY}', want: 'k=', missing: ['MISSING_KEY'] },
    // An empty variable without a default counts as missing.
    { name: 'empty without default is missing', value: '${EMPTY}', want: '', missing: ['EMPTY'] },
    // Several references in one string.
    { name: 'two references', value: '${A}/${URL}', want: 'alpha/http://127.0.0.1:4010/v1', missing: [] },
    // Nested objects and arrays are walked.
    {
      name: 'nested',
      value: { spec: { providers: [{ baseURL: '${URL}', headers: { x: '${A}' } }], list: ['${A}', '${NOPE}'] } },
      want: { spec: { providers: [{ baseURL: 'http://127.0.0.1:4010/v1', headers: { x: 'alpha' } }], list: ['alpha', ''] } },
      missing: ['NOPE'],
    },
    // Non-strings are left as they are.
    { name: 'non-strings untouched', value: { n: 3, b: true, z: null, arr: [1.5, false] }, want: { n: 3, b: true, z: null, arr: [1.5, false] }, missing: [] },
    // A bare $A (no braces) is not a reference.
    { name: 'no braces, no expansion', value: '$A and $(A)', want: '$A and $(A)', missing: [] },
    // An invalid name is not a reference.
    { name: 'invalid name left alone', value: '${1A}', want: '${1A}', missing: [] },
    // The value is expanded once: a variable whose content looks like a reference is not re-expanded.
    { name: 'no recursive expansion', value: '${REF}', want: '${A}', missing: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const missing = new Set<string>();
      const input = structuredClone(c.value);
      const got = expandEnv(input, { ...env, REF: '${A}' }, missing);
      assert.deepEqual(got, c.want);
      assert.deepEqual([...missing].sort(), c.missing);
      assert.deepEqual(input, c.value, 'the input is not mutated');
    });
  }
});
