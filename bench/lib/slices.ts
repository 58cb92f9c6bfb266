// A measurement taken in slices: the cases take turns, slice by slice, so that each meets
// nearly the same moments of the host (a round of slices takes under a minute). On this VM what
// a request costs moves by a third within minutes, for every process alike
// (docs/bench/findings.md, "Targets, fourteenth sitting"): measured one after the other, a case
// and the floor it is compared with could meet different minutes. Here the slices of one load
// are joined back into the load it stands for.
import { QUANTILE_COUNT, type LoadResult } from './load.ts';

/**
 * The slices as one load: requests and errors added up, the rate over their summed time, and
 * the latency percentiles of all their requests together (each slice's quantiles weighted by
 * its requests). A slice without quantiles (autocannon) joins by the requests-weighted mean of
 * its percentiles instead. A slice that served nothing (the process died or hung) leaves the
 * whole load unmeasured: its rate and percentiles NaN, so the run counts as missing, not as a
 * blend of before and after.
 */
export function joinLoads(slices: readonly LoadResult[]): LoadResult {
  const requests = sum(slices, (s) => s.requests);
  const seconds = sum(slices, (s) => s.seconds);
  const errors = sum(slices, (s) => s.errors);
  const non2xx = sum(slices, (s) => s.non2xx);
  if (slices.length === 0 || slices.some((s) => s.requests === 0)) return { rps: NaN, p50us: NaN, p90us: NaN, p99us: NaN, requests, errors, non2xx, seconds };
  const pooled = slices.every((s) => s.quantiles !== undefined);
  const at = (p: number, pick: (s: LoadResult) => number): number =>
    pooled ? pooledPercentile(slices, p) : sum(slices, (s) => pick(s) * s.requests) / requests;
  return {
    rps: requests / seconds,
    p50us: at(50, (s) => s.p50us),
    p90us: at(90, (s) => s.p90us),
    p99us: at(99, (s) => s.p99us),
    requests,
    errors,
    non2xx,
    seconds,
  };
}

/** The p-th percentile of the slices' requests together (every slice served some): each quantile of a slice stands for 1/QUANTILE_COUNT of its requests. */
function pooledPercentile(slices: readonly LoadResult[], p: number): number {
  const points: Array<{ us: number; weight: number }> = [];
  for (const s of slices) for (const us of s.quantiles ?? []) points.push({ us, weight: s.requests / QUANTILE_COUNT });
  points.sort((a, b) => a.us - b.us);
  const total = sum(points, (x) => x.weight);
  let seen = 0;
  for (const x of points) {
    seen += x.weight;
    // A relative tolerance: the weights are fractions, and p/100 of the total must not be missed by rounding.
    if (seen >= (p / 100) * total * (1 - 1e-12)) return x.us;
  }
  return points[points.length - 1]?.us ?? NaN;
}

/**
 * The order the cases take in a round: round r starts at case r and steps through the list k at
 * a time (k coprime with the number of cases, a different k each round), so both a case's place
 * in the round and the case just before it change from round to round.
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const n = items.length;
  const steps = Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1).filter((k) => gcd(k, n) === 1);
  if (steps.length === 0) return [...items];
  const step = steps[round % steps.length] ?? 1;
  return Array.from({ length: n }, (_, i) => items[(round + i * step) % n] as T);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function sum<T>(items: readonly T[], pick: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += pick(item);
  return total;
}
