// The bench takes each measurement in slices that the cases take in turns (bench/lib/slices.ts):
// a run's figure is its slices joined. These tests join made-up slices and check the figure is
// the one all their requests together would give.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUANTILE_COUNT, wrkScript, type LoadResult } from '../../bench/lib/load.ts';
import { joinLoads, roundOrder } from '../../bench/lib/slices.ts';

/** A slice whose requests all took `us`, or spread evenly from `us` to `to`. */
function slice(requests: number, seconds: number, us: number, to = us): LoadResult {
  const quantiles = Array.from({ length: QUANTILE_COUNT }, (_, i) => Math.round(us + ((to - us) * (i + 1)) / QUANTILE_COUNT));
  const at = (p: number): number => quantiles[Math.ceil((p / 100) * QUANTILE_COUNT) - 1] ?? NaN;
  return { rps: requests / seconds, p50us: at(50), p90us: at(90), p99us: at(99), requests, errors: 1, non2xx: 2, seconds, quantiles };
}

describe('joinLoads', () => {
  test('adds up requests, errors and time, and takes the rate over the summed time (not the mean of the rates)', () => {
    const joined = joinLoads([slice(1000, 2, 100), slice(3000, 2, 100), slice(500, 3, 100)]);
    assert.equal(joined.requests, 4500);
    assert.equal(joined.seconds, 7);
    assert.equal(joined.rps, 4500 / 7);
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

  test('a slice that served nothing (the process died or hung) leaves the whole load unmeasured, not a blend', () => {
    const joined = joinLoads([slice(9000, 2, 100), slice(0, 2, 100), slice(9000, 2, 100)]);
    assert.ok(Number.isNaN(joined.rps));
    assert.ok(Number.isNaN(joined.p50us) && Number.isNaN(joined.p99us));
    assert.equal(joined.requests, 18000, 'the requests and errors are still counted');
    assert.ok(Number.isNaN(joinLoads([]).rps));
  });
});

describe('roundOrder', () => {
  test('each round starts one case further on and steps through the cases by a different stride; every round has every case once', () => {
    const cases = ['direct', 'llm-fallback', 'portkey', 'nginx', 'node-floor'];
    assert.deepEqual(roundOrder(cases, 0), cases);
    assert.deepEqual(roundOrder(cases, 1), ['llm-fallback', 'nginx', 'direct', 'portkey', 'node-floor']);
    assert.deepEqual(roundOrder(cases, 2), ['portkey', 'direct', 'nginx', 'llm-fallback', 'node-floor']);
    for (const list of [cases, cases.slice(0, 4), cases.slice(0, 3), cases.slice(0, 2), cases.slice(0, 1)])
      for (let round = 0; round < 7; round++) assert.deepEqual([...roundOrder(list, round)].sort(), [...list].sort(), `${list.length} cases, round ${round}`);
    // The case measured just before llm-fallback is not always the same one.
    const before = Array.from({ length: 5 }, (_, round) => {
      const order = roundOrder(cases, round);
      return order[order.indexOf('llm-fallback') - 1] ?? '(first)';
    });
    assert.ok(new Set(before).size >= 3, before.join(', '));
    assert.deepEqual(roundOrder([], 4), []);
  });
});

describe("wrk's quantiles", () => {
  test("the last is wrk's largest latency: its percentile(100) answers 0, which would sort first and shift every pooled percentile", () => {
    const script = wrkScript({ url: 'http://127.0.0.1:1/v1/chat/completions', model: 'm', headers: {} });
    assert.match(
      script,
      new RegExp(`for i = 1, ${QUANTILE_COUNT - 1} do q\\[i\\] = string\\.format\\('%d', latency:percentile\\(i \\* 100 / ${QUANTILE_COUNT}\\)\\) end`),
    );
    assert.match(script, new RegExp(`q\\[${QUANTILE_COUNT}\\] = string\\.format\\('%d', latency\\.max\\)`));
    assert.match(script, /io\.write\('WRKQUANTILES ' \.\. table\.concat\(q, ','\) \.\. '\\n'\)/);
  });
});

describe("wrk's request", () => {
  test('is written out whole, its headers in one fixed order, not listed by wrk from a Lua table', () => {
    const script = wrkScript({ url: 'http://127.0.0.1:1/v1/chat/completions', model: 'm', headers: { Authorization: 'Bearer k', 'X-Two': '2' } });
    // wrk.format (which wrk.init calls once for a static request), not a global request function, which would make wrk call Lua per request.
    assert.match(script, /^wrk\.format = function\(\)$/m);
    assert.doesNotMatch(script, /^(request|function request)\b/m);
    assert.doesNotMatch(script, /wrk\.headers\[[^\]]+\] =/, 'no header goes through wrk.headers, whose order pairs() decides');
    const line = script.split('\n').find((l) => l.trimStart().startsWith('return "POST "')) ?? '';
    const order = [...line.matchAll(/(Host|Content-Type|Authorization|X-Two|Content-Length): /g)].map((m) => m[1]);
    assert.deepEqual(order, ['Host', 'Content-Type', 'Authorization', 'X-Two', 'Content-Length']);
  });
});
