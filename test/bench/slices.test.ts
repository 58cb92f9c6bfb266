// The bench takes each measurement in slices that the cases take in turns (bench/lib/slices.ts):
// a run's figure is its slices joined. These tests join made-up slices and check the figure is
// the one all their requests together would give.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUANTILE_COUNT, type LoadResult } from '../../bench/lib/load.ts';
import { joinLoads, roundOrder } from '../../bench/lib/slices.ts';

/** A slice whose requests all took `us`, or spread evenly from `us` to `to`. */
function slice(requests: number, seconds: number, us: number, to = us): LoadResult {
  const quantiles = Array.from({ length: QUANTILE_COUNT }, (_, i) => Math.round(us + ((to - us) * (i + 1)) / QUANTILE_COUNT));
  const at = (p: number): number => quantiles[Math.ceil((p / 100) * QUANTILE_COUNT) - 1] ?? NaN;
  return { rps: requests / seconds, p50us: at(50), p90us: at(90), p99us: at(99), requests, errors: 1, non2xx: 2, seconds, quantiles };
}

describe('joinLoads', () => {
  test('adds up requests, errors and time, and takes the rate over the summed time (not the mean of the rates)', () => {
    const joined = joinLoads([slice(1000, 2, 100), slice(3000, 2, 100), slice(0, 2, 100)]);
    assert.equal(joined.requests, 4000);
    assert.equal(joined.seconds, 6);
    assert.equal(joined.rps, 4000 / 6);
    assert.equal(joined.errors, 3);
    assert.equal(joined.non2xx, 6);
    assert.equal(joined.quantiles, undefined, 'a joined load keeps no quantiles');
  });

  test("percentiles are those of every slice's requests together, each slice weighted by its requests", () => {
    // 9,000 requests at 100 µs and 1,000 at 1,000 µs: the p90 is still 100 µs, the p99 1,000 µs.
    const joined = joinLoads([slice(9000, 2, 100), slice(1000, 2, 1000)]);
    assert.equal(joined.p50us, 100);
    assert.equal(joined.p90us, 100);
    assert.equal(joined.p99us, 1000);
    // The same slices with the slow one the busier: the median moves to it.
    const busier = joinLoads([slice(1000, 2, 100), slice(9000, 2, 1000)]);
    assert.equal(busier.p50us, 1000);
    assert.equal(busier.p99us, 1000);
  });

  test('one slice joins to itself', () => {
    const one = slice(5000, 2, 200, 1200);
    const joined = joinLoads([one]);
    assert.deepEqual([joined.p50us, joined.p90us, joined.p99us, joined.rps], [one.p50us, one.p90us, one.p99us, one.rps]);
  });

  test('slices without quantiles (autocannon) join by the requests-weighted mean of their percentiles', () => {
    const bare = (requests: number, p: number): LoadResult => ({ rps: requests, p50us: p, p90us: p, p99us: p * 2, requests, errors: 0, non2xx: 0, seconds: 1 });
    const joined = joinLoads([bare(3000, 100), bare(1000, 500)]);
    assert.equal(joined.p50us, 200);
    assert.equal(joined.p99us, 400);
  });

  test('no requests at all: a rate of 0 and no percentiles', () => {
    const joined = joinLoads([slice(0, 2, 100)]);
    assert.equal(joined.rps, 0);
    assert.ok(Number.isNaN(joined.p99us));
  });
});

describe('roundOrder', () => {
  test('each round starts one case further on, and every round has every case once', () => {
    const cases = ['direct', 'llm-fallback', 'node-floor'];
    assert.deepEqual(roundOrder(cases, 0), cases);
    assert.deepEqual(roundOrder(cases, 1), ['llm-fallback', 'node-floor', 'direct']);
    assert.deepEqual(roundOrder(cases, 2), ['node-floor', 'direct', 'llm-fallback']);
    assert.deepEqual(roundOrder(cases, 3), cases);
    assert.deepEqual(roundOrder([], 4), []);
  });
});
