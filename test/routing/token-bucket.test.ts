// Local limits as token buckets: a minute's allowance as burst, continuous refill, both limits
// taken together or not at all, and a refusal that says how long until it would pass.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fullBucket, refill, takeFromLimits, waitFor, type LimitBuckets } from '../../src/routing/token-bucket.ts';
import type { Limits } from '../../src/core/types.ts';

describe('refill and waitFor', () => {
  const rows: Array<{ proves: string; tokens: number; perMinute: number; elapsed: number; want: number }> = [
    // Half a minute refills half the rate.
    { proves: 'half a minute, half the rate', tokens: 0, perMinute: 60, elapsed: 30_000, want: 30 },
    // Never above a minute's allowance.
    { proves: 'capped at the rate', tokens: 50, perMinute: 60, elapsed: 60_000, want: 60 },
    // Time going backwards (a clock quirk) refills nothing.
    { proves: 'no refill backwards', tokens: 5, perMinute: 60, elapsed: -1000, want: 5 },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      assert.equal(refill({ tokens: row.tokens, at: 1000 }, row.perMinute, 1000 + row.elapsed).tokens, row.want);
    });
  }

  const waits: Array<{ proves: string; tokens: number; perMinute: number; amount: number; want: number }> = [
    // Enough now: no wait.
    { proves: 'available now', tokens: 5, perMinute: 60, amount: 1, want: 0 },
    // One token short at 60/min: one second.
    { proves: 'one second for one token at 60 rpm', tokens: 0, perMinute: 60, amount: 1, want: 1000 },
    // More than a minute's allowance can never pass.
    { proves: 'more than the bucket', tokens: 100, perMinute: 100, amount: 101, want: Infinity },
  ];
  for (const row of waits) {
    test(`waitFor: ${row.proves}`, () => {
      assert.equal(waitFor({ tokens: row.tokens, at: 0 }, row.perMinute, row.amount, 0), row.want);
    });
  }
});

describe('takeFromLimits over time', () => {
  // Each row: the limits, then a sequence of takes at given times; ok or the refusal's words.
  const rows: Array<{ proves: string; limits: Limits; takes: Array<{ at: number; tokens: number; ok: boolean; match?: RegExp }> }> = [
    // rpm 2: two requests pass at once, the third waits for the refill (30 s per request at 2/min).
    {
      proves: 'rpm burst then spacing',
      limits: { rpm: 2 },
      takes: [
        { at: 0, tokens: 0, ok: true },
        { at: 0, tokens: 0, ok: true },
        { at: 1000, tokens: 0, ok: false, match: /rpm 2 reached; next request allowed in 29000ms/ },
        { at: 30_000, tokens: 0, ok: true },
      ],
    },
    // tpm 1000: 600 + 300 pass, 300 more must wait; a refused take costs nothing.
    {
      proves: 'tpm counts tokens, refusals take nothing',
      limits: { tpm: 1000 },
      takes: [
        { at: 0, tokens: 600, ok: true },
        { at: 0, tokens: 300, ok: true },
        { at: 0, tokens: 300, ok: false, match: /tpm 1000 reached; 300 tokens allowed in 12000ms/ },
        { at: 12_000, tokens: 300, ok: true },
      ],
    },
    // Both limits: the tpm refusal does not consume the rpm token.
    {
      proves: 'both or neither',
      limits: { rpm: 1, tpm: 100 },
      takes: [
        { at: 0, tokens: 500, ok: false, match: /needs ~500 tokens, more than a minute's allowance/ },
        { at: 0, tokens: 50, ok: true },
        { at: 0, tokens: 1, ok: false, match: /rpm 1 reached/ },
      ],
    },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      let buckets: LimitBuckets = {};
      for (const [i, take] of row.takes.entries()) {
        const result = takeFromLimits(row.limits, buckets, take.tokens, take.at);
        assert.equal(result.ok, take.ok, `take ${i}`);
        if (result.ok) buckets = result.buckets;
        else assert.match(result.reason, take.match ?? /./, `take ${i}`);
      }
    });
  }

  // A full bucket holds exactly the per-minute rate.
  test('fullBucket', () => {
    assert.deepEqual(fullBucket(60, 5), { tokens: 60, at: 5 });
  });
});
