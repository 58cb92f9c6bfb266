// Issue 16's targets ("a sidecar that costs what Node costs"), judged on one benchmark run:
// llm-fallback against the Node floor (bench/node-floor.ts) measured in the same run, its
// start and idle memory against a bare Node HTTP server's, and its fallback path against the
// ratios the last full run had. Pure: figures in, rows out (test/bench/targets.test.ts).
import type { CaseResult, StartupCase, StartupCaseId, StartupResults, TargetCheck } from './report.ts';

/**
 * The fallback path's p50 at c=1 over the one-step chain's, from docs/bench/results.json of
 * 2026-11-21 (full run, 3 runs, quiet machine): 503 → second step 709 / 408 µs, open circuit
 * 437 / 408 µs. Issue 16: "within the same ratios of the no-fallback case as today or better".
 */
export const FALLBACK_RATIOS_BEFORE = { fallback503: 1.74, fallbackOpen: 1.07, measured: '2026-11-21' } as const;

export const LIMITS = {
  cpuRatio: 1.4,
  rpsRatio: 0.7,
  p99Ratio: 1.5,
  addedP50Us: 50,
  ttfbAddedUs: 200,
  rssUnderLoadMB: 10,
  idleRssMB: 15,
  readyFilesMs: 250,
  readyAfterApiMs: 500,
} as const;

type Figure = number | null | undefined;

const known = (x: Figure): x is number => x !== null && x !== undefined && Number.isFinite(x);
const fixed = (x: number, digits: number): string => x.toFixed(digits);
const signed = (x: number, digits: number, unit: string): string => `${x < 0 ? '−' : '+'}${fixed(Math.abs(x), digits)}${unit}`;
const us = (x: number): string => `${fixed(x / 1000, 3)} ms`;
const mb = (x: number): string => `${fixed(x, 1)} MB`;
const msec = (x: number): string => `${fixed(x, 0)} ms`;

/** A row whose figures this run did not have: why, in the reference column. */
function notMeasured(target: string, ours: Figure, show: (x: number) => string, why: string): TargetCheck {
  return { target, ours: known(ours) ? show(ours) : 'not measured', reference: why, comparison: '–', passed: null };
}

/** ours / reference ≤ limit (or ≥ limit with `atLeast`). */
function ratio(
  target: string,
  ours: Figure,
  reference: Figure,
  referenceName: string,
  show: (x: number) => string,
  limit: number,
  atLeast = false,
): TargetCheck {
  if (!known(ours) || !known(reference) || reference === 0)
    return notMeasured(target, ours, show, known(reference) ? `${referenceName}: 0` : `${referenceName}: not measured`);
  const r = ours / reference;
  return {
    target,
    ours: show(ours),
    reference: `${referenceName} ${show(reference)}`,
    comparison: `${fixed(r, 2)}×`,
    passed: atLeast ? r >= limit : r <= limit,
  };
}

/** ours − reference ≤ allowance. */
function difference(
  target: string,
  ours: Figure,
  reference: Figure,
  referenceName: string,
  show: (x: number) => string,
  signedDiff: (x: number) => string,
  allowance: number,
): TargetCheck {
  if (!known(ours) || !known(reference)) return notMeasured(target, ours, show, `${referenceName}: not measured`);
  const d = ours - reference;
  return { target, ours: show(ours), reference: `${referenceName} ${show(reference)}`, comparison: signedDiff(d), passed: d <= allowance };
}

/** ours ≤ limit, an absolute bound. */
function atMost(target: string, ours: Figure, show: (x: number) => string, limit: number, why: string): TargetCheck {
  if (!known(ours)) return notMeasured(target, ours, show, why);
  return { target, ours: show(ours), reference: `limit ${show(limit)}`, comparison: signed(ours - limit, 0, ' ms'), passed: ours <= limit };
}

function fallbackRatio(target: string, lf: CaseResult | undefined, key: 'fallback503' | 'fallbackOpen'): TargetCheck {
  const before = FALLBACK_RATIOS_BEFORE[key];
  const f = lf?.[key];
  const oneStep = lf?.latencyC1?.p50us.median;
  const reference = `one-step chain's p50 ${known(oneStep) ? us(oneStep) : 'not measured'}; before: ${fixed(before, 2)}× (${FALLBACK_RATIOS_BEFORE.measured})`;
  if (!f || 'unavailable' in f || !known(f.p50us.median) || !known(oneStep) || oneStep === 0)
    return { target, ours: f && 'unavailable' in f ? `not measured (${f.unavailable})` : 'not measured', reference, comparison: '–', passed: null };
  const r = f.p50us.median / oneStep;
  // Compared as shown: a ratio that prints as the one before is the same ratio.
  return { target, ours: `p50 ${us(f.p50us.median)}`, reference, comparison: `${fixed(r, 2)}×`, passed: Number(fixed(r, 2)) <= before };
}

/**
 * One row per target of issue 16, in its order. A target whose figures this run lacks (the
 * floor not asked for, the startup skipped, a case unavailable) is a row with `passed: null`.
 */
export function targetChecks(cases: readonly CaseResult[], startup?: StartupResults): TargetCheck[] {
  const lf = cases.find((c) => c.id === 'llm-fallback' && c.available);
  const floor = cases.find((c) => c.id === 'node-floor' && c.available);
  const FLOOR = 'Node floor';
  const started = (id: StartupCaseId): StartupCase | undefined => startup?.cases.find((c) => c.id === id && c.available);
  const bare = started('bare');
  const config = started('config');
  const kubernetes = started('kubernetes');
  const BARE = 'bare Node server';
  const startupWhy = (id: StartupCaseId): string => {
    if (!startup) return 'startup not run';
    const c = startup.cases.find((s) => s.id === id);
    if (!c) return 'not in this run (--cases)';
    return c.available ? 'not measured' : `unavailable: ${c.reason ?? ''}`;
  };
  const idle = (label: string, c: StartupCase | undefined, id: StartupCaseId): TargetCheck =>
    c
      ? difference(
          `idle RSS, ${label}, ≤ a bare Node HTTP server's + ${LIMITS.idleRssMB} MB`,
          c.idleRssMB?.median,
          bare?.idleRssMB?.median,
          BARE,
          mb,
          (d) => signed(d, 1, ' MB'),
          LIMITS.idleRssMB,
        )
      : notMeasured(`idle RSS, ${label}, ≤ a bare Node HTTP server's + ${LIMITS.idleRssMB} MB`, undefined, mb, startupWhy(id));
  return [
    ratio(
      `CPU per request ≤ ${LIMITS.cpuRatio}× the Node floor's`,
      lf?.cpuPerRequestUs?.median,
      floor?.cpuPerRequestUs?.median,
      FLOOR,
      (x) => `${fixed(x, 0)} µs`,
      LIMITS.cpuRatio,
    ),
    ratio(`RPS at c=32 ≥ ${LIMITS.rpsRatio}× the Node floor's`, lf?.c32?.rps.median, floor?.c32?.rps.median, FLOOR, (x) => fixed(x, 0), LIMITS.rpsRatio, true),
    ratio(`p99 at c=1 ≤ ${LIMITS.p99Ratio}× the Node floor's`, lf?.latencyC1?.p99us.median, floor?.latencyC1?.p99us.median, FLOOR, us, LIMITS.p99Ratio),
    difference(
      `added p50 at c=1 ≤ the Node floor's + ${LIMITS.addedP50Us / 1000} ms`,
      lf?.latencyC1?.addedP50us.median,
      floor?.latencyC1?.addedP50us.median,
      FLOOR,
      us,
      (d) => signed(d / 1000, 3, ' ms'),
      LIMITS.addedP50Us,
    ),
    difference(
      `stream TTFB added ≤ the Node floor's + ${LIMITS.ttfbAddedUs / 1000} ms`,
      lf?.streamTtfb?.addedP50us.median,
      floor?.streamTtfb?.addedP50us.median,
      FLOOR,
      us,
      (d) => signed(d / 1000, 3, ' ms'),
      LIMITS.ttfbAddedUs,
    ),
    difference(
      `RSS under load (peak) ≤ the Node floor's + ${LIMITS.rssUnderLoadMB} MB`,
      lf?.memory?.peakAfterRequestsMB,
      floor?.memory?.peakAfterRequestsMB,
      FLOOR,
      mb,
      (d) => signed(d, 1, ' MB'),
      LIMITS.rssUnderLoadMB,
    ),
    idle('`serve --config`', config, 'config'),
    idle('`serve --kubernetes`', kubernetes, 'kubernetes'),
    atMost(`start to ready with files ≤ ${LIMITS.readyFilesMs} ms`, config?.readyMs?.median, msec, LIMITS.readyFilesMs, startupWhy('config')),
    atMost(
      `start to ready in Kubernetes mode ≤ ${LIMITS.readyAfterApiMs} ms after the API server first answers`,
      kubernetes?.afterApiMs?.median,
      msec,
      LIMITS.readyAfterApiMs,
      startupWhy('kubernetes'),
    ),
    fallbackRatio("first step 503 → second step: p50 over the one-step chain's ≤ before", lf, 'fallback503'),
    fallbackRatio("first step's circuit open (skipped): p50 over the one-step chain's ≤ before", lf, 'fallbackOpen'),
  ];
}
