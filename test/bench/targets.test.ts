// `npm run bench` judges issue 16's targets from one run's figures (bench/lib/targets.ts) and
// renders them with the start, idle and pod memory figures (bench/lib/report.ts). Both are
// pure: these tests feed them figures and read the rows and the markdown.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown, type CaseResult, type Results, type StartupResults, type TargetCheck } from '../../bench/lib/report.ts';
import { targetChecks } from '../../bench/lib/targets.ts';
import type { Measured } from '../../bench/lib/stats.ts';

const m = (median: number | null): Measured => ({ median, runs: [median] });

interface Figures {
  cpuUs: number;
  rps: number;
  p50us: number;
  p99us: number;
  addedP50us: number;
  ttfbAddedUs: number;
  peakMB: number;
  fallback503P50us?: number;
  fallbackOpenP50us?: number;
}

function proxy(id: string, f: Figures): CaseResult {
  return {
    id,
    label: id,
    available: true,
    notes: [],
    errors: { requests: 0, socketErrors: 0, non2xx: 0 },
    cpuPerRequestUs: m(f.cpuUs),
    c32: { rps: m(f.rps), p99us: m(1000), rpsRatioToDirect: m(0.5) },
    latencyC1: { p50us: m(f.p50us), p99us: m(f.p99us), addedP50us: m(f.addedP50us), addedP99us: m(0) },
    streamTtfb: { p50us: m(0), p99us: m(0), addedP50us: m(f.ttfbAddedUs), failed: 0 },
    memory: { idleMB: 50, afterLoadMB: 80, peakAfterRequestsMB: f.peakMB, peakMB: f.peakMB + 40 },
    fallback503:
      f.fallback503P50us === undefined ? { unavailable: 'the floor has no fallback' } : { p50us: m(f.fallback503P50us), p99us: m(0), addedP50us: m(0) },
    fallbackOpen:
      f.fallbackOpenP50us === undefined ? { unavailable: 'the floor has no fallback' } : { p50us: m(f.fallbackOpenP50us), p99us: m(0), addedP50us: m(0) },
  };
}

const FLOOR: Figures = { cpuUs: 100, rps: 10_000, p50us: 300, p99us: 2000, addedP50us: 250, ttfbAddedUs: 300, peakMB: 100 };
/** Every figure exactly at its limit against FLOOR: every target met (the limits are inclusive). */
const AT_LIMITS: Figures = {
  cpuUs: 140,
  rps: 7000,
  p50us: 400,
  p99us: 3000,
  addedP50us: 300,
  ttfbAddedUs: 500,
  peakMB: 110,
  fallback503P50us: 696, // 400 × 1.74
  fallbackOpenP50us: 428, // 400 × 1.07
};

function startup(over: { config?: number; kubernetes?: number | string; bare?: number; readyMs?: number; afterApiMs?: number } = {}): StartupResults {
  const kubernetes = over.kubernetes ?? 63;
  return {
    runs: 3,
    entry: 'dist/bundle/llm-fallback.mjs',
    compileCache: true,
    nodeFlags: [],
    pinned: true,
    cases: [
      { id: 'bare', label: 'bare Node HTTP server', available: true, readyMs: m(40), cpuMs: m(30), idleRssMB: m(over.bare ?? 48) },
      { id: 'config', label: 'llm-fallback serve --config', available: true, readyMs: m(over.readyMs ?? 250), cpuMs: m(90), idleRssMB: m(over.config ?? 63) },
      typeof kubernetes === 'string'
        ? { id: 'kubernetes', label: 'llm-fallback serve --kubernetes', available: false, reason: kubernetes }
        : {
            id: 'kubernetes',
            label: 'llm-fallback serve --kubernetes',
            available: true,
            readyMs: m(400),
            afterApiMs: m(over.afterApiMs ?? 500),
            cpuMs: m(110),
            idleRssMB: m(kubernetes),
          },
    ],
  };
}

const row = (checks: TargetCheck[], starts: string): TargetCheck => {
  const found = checks.find((c) => c.target.startsWith(starts));
  assert.ok(found, `a row for "${starts}" in ${checks.map((c) => c.target).join(' | ')}`);
  return found;
};

describe("issue 16's targets", () => {
  test('one row per target, in the issue’s order, each met when its figure is exactly at the limit', () => {
    const checks = targetChecks([proxy('llm-fallback', AT_LIMITS), proxy('node-floor', FLOOR)], startup());
    assert.deepEqual(
      checks.map((c) => [c.target, c.passed]),
      [
        ["CPU per request ≤ 1.4× the Node floor's", true],
        ["RPS at c=32 ≥ 0.7× the Node floor's", true],
        ["p99 at c=1 ≤ 1.5× the Node floor's", true],
        ["added p50 at c=1 ≤ the Node floor's + 0.05 ms", true],
        ["stream TTFB added ≤ the Node floor's + 0.2 ms", true],
        ["RSS under load (peak) ≤ the Node floor's + 10 MB", true],
        ["idle RSS, `serve --config`, ≤ a bare Node HTTP server's + 15 MB", true],
        ["idle RSS, `serve --kubernetes`, ≤ a bare Node HTTP server's + 15 MB", true],
        ['start to ready with files ≤ 250 ms', true],
        ['start to ready in Kubernetes mode ≤ 500 ms after the API server first answers', true],
        ["first step 503 → second step: p50 over the one-step chain's ≤ before", true],
        ["first step's circuit open (skipped): p50 over the one-step chain's ≤ before", true],
      ],
    );
  });

  test('each target is missed just past its limit, and the row shows both figures and the ratio or difference', () => {
    const past: Figures = {
      cpuUs: 141,
      rps: 6999,
      p50us: 400,
      p99us: 3001,
      addedP50us: 301,
      ttfbAddedUs: 501,
      peakMB: 110.1,
      fallback503P50us: 700, // 1.75×
      fallbackOpenP50us: 432, // 1.08×
    };
    const checks = targetChecks(
      [proxy('llm-fallback', past), proxy('node-floor', FLOOR)],
      startup({ config: 63.1, kubernetes: 63.1, readyMs: 251, afterApiMs: 501 }),
    );
    assert.deepEqual(
      checks.filter((c) => c.passed !== false).map((c) => c.target),
      [],
    );
    assert.deepEqual(row(checks, 'CPU per request'), {
      target: "CPU per request ≤ 1.4× the Node floor's",
      ours: '141 µs',
      reference: 'Node floor 100 µs',
      comparison: '1.41×',
      passed: false,
    });
    assert.equal(row(checks, 'RPS at c=32').comparison, '0.70×', 'shown rounded; judged on 0.6999');
    assert.deepEqual(
      [row(checks, 'added p50').ours, row(checks, 'added p50').reference, row(checks, 'added p50').comparison],
      ['0.301 ms', 'Node floor 0.250 ms', '+0.051 ms'],
    );
    assert.equal(row(checks, 'RSS under load').comparison, '+10.1 MB');
    assert.deepEqual(
      [row(checks, 'idle RSS, `serve --config`').ours, row(checks, 'idle RSS, `serve --config`').reference],
      ['63.1 MB', 'bare Node server 48.0 MB'],
    );
    assert.deepEqual([row(checks, 'start to ready with files').ours, row(checks, 'start to ready with files').comparison], ['251 ms', '+1 ms']);
    assert.equal(row(checks, 'first step 503').comparison, '1.75×');
    assert.match(row(checks, 'first step 503').reference, /one-step chain's p50 0\.400 ms; before: 1\.74×/);
  });

  test('better than the floor is met too: a negative difference, a ratio under 1', () => {
    const faster: Figures = { ...FLOOR, cpuUs: 90, rps: 12_000, addedP50us: 200, fallback503P50us: 300, fallbackOpenP50us: 290 };
    const checks = targetChecks([proxy('llm-fallback', faster), proxy('node-floor', FLOOR)], startup({ config: 40 }));
    assert.equal(
      checks.every((c) => c.passed === true),
      true,
      JSON.stringify(checks.filter((c) => c.passed !== true)),
    );
    assert.equal(row(checks, 'added p50').comparison, '−0.050 ms');
    assert.equal(row(checks, 'idle RSS, `serve --config`').comparison, '−8.0 MB');
  });

  test('without the Node floor, the startup or a case, its rows are not measured (null), with the reason, never met or missed', () => {
    const checks = targetChecks([proxy('llm-fallback', AT_LIMITS)]);
    assert.deepEqual(
      checks.filter((c) => c.passed !== null).map((c) => c.target),
      ["first step 503 → second step: p50 over the one-step chain's ≤ before", "first step's circuit open (skipped): p50 over the one-step chain's ≤ before"],
      'only the fallback rows need neither the floor nor the startup',
    );
    assert.deepEqual([row(checks, 'CPU per request').ours, row(checks, 'CPU per request').reference], ['140 µs', 'Node floor: not measured']);
    assert.equal(row(checks, 'idle RSS, `serve --config`').reference, 'startup not run');
    assert.equal(row(checks, 'start to ready in Kubernetes mode').reference, 'startup not run');

    const noKube = targetChecks(
      [proxy('llm-fallback', AT_LIMITS), proxy('node-floor', FLOOR)],
      startup({ kubernetes: 'the kube-apiserver harness did not start: no etcd' }),
    );
    assert.equal(row(noKube, 'idle RSS, `serve --kubernetes`').passed, null);
    assert.equal(row(noKube, 'idle RSS, `serve --kubernetes`').reference, 'unavailable: the kube-apiserver harness did not start: no etcd');
    assert.equal(row(noKube, 'idle RSS, `serve --config`').passed, true);

    const unavailable: CaseResult = {
      id: 'llm-fallback',
      label: 'llm-fallback',
      available: false,
      reason: 'did not start',
      notes: [],
      errors: { requests: 0, socketErrors: 0, non2xx: 0 },
    };
    assert.ok(
      targetChecks([unavailable, proxy('node-floor', FLOOR)], startup())
        .slice(0, 6)
        .every((c) => c.passed === null && c.ours === 'not measured'),
    );
    const noFallback = proxy('llm-fallback', { ...AT_LIMITS, fallback503P50us: undefined });
    assert.deepEqual(
      [row(targetChecks([noFallback]), 'first step 503').passed, row(targetChecks([noFallback]), 'first step 503').ours],
      [null, 'not measured (the floor has no fallback)'],
    );
  });
});

describe('results.md', () => {
  const results = (over: Partial<Results>): Results => ({
    date: '2026-12-02T10:00:00.000Z',
    machine: { nproc: 2, cpuModel: 'AMD EPYC', node: 'v24.21.0', kernel: '6.18', loadAverageAtStart: [1, 1, 1], loadAverageAtEnd: [1, 1, 1], pinned: true },
    settings: {
      mode: 'quick',
      runs: 1,
      latencySeconds: 3,
      throughputSeconds: 3,
      upstreamLatencyMs: 0,
      loadGenerator: 'wrk',
      streamTtfbRequests: 50,
      slowStream: { chunks: 10, intervalMs: 100, levels: [128], spreadMs: 500 },
      note: '',
      llmFallbackEntry: 'dist/bundle/llm-fallback.mjs',
    },
    cases: [proxy('llm-fallback', { ...AT_LIMITS, cpuUs: 300 }), proxy('node-floor', FLOOR)],
    targets: [],
    ...over,
  });
  const section = (md: string, title: string): string => md.slice(md.indexOf(`## ${title}`), md.indexOf('\n## ', md.indexOf(`## ${title}`) + 1));

  test('the targets table has the two figures, the ratio and met or not; it is judged from the figures, not the stored rows', () => {
    const targets = section(renderMarkdown(results({ startup: startup() })), 'Targets (issue 16)');
    assert.match(targets, /\| CPU per request ≤ 1\.4× the Node floor's \| 300 µs \| Node floor 100 µs \| 3\.00× \| \*\*no\*\* \|/);
    assert.match(targets, /\| RPS at c=32 ≥ 0\.7× the Node floor's \| 7000 \| Node floor 10000 \| 0\.70× \| yes \|/);
    assert.match(targets, /\| start to ready in Kubernetes mode ≤ 500 ms after the API server first answers \| 500 ms \| limit 500 ms \| \+0 ms \| yes \|/);
    assert.doesNotMatch(targets, /≤ 0\.3 ms|70 MB|3× Portkey/, "no row of the older issue's targets");
  });

  test('start and idle figures get their own table; without a startup the idle and start rows say so', () => {
    const md = renderMarkdown(results({ startup: startup({ kubernetes: 'no etcd' }) }));
    assert.match(section(md, 'Start and idle memory'), /\| llm-fallback serve --config \| 250 ms \| – \| 90 ms \| 63\.0 MB \|/);
    assert.match(section(md, 'Start and idle memory'), /\| llm-fallback serve --kubernetes \| unavailable: no etcd/);
    const without = renderMarkdown(results({}));
    assert.ok(!without.includes('## Start and idle memory'));
    assert.match(section(without, 'Targets (issue 16)'), /\| start to ready with files ≤ 250 ms \| not measured \| startup not run \| – \| not measured \|/);
  });

  test("with a fresh process per run, each run's CPU per request and RPS are listed beside the median; older results say one process", () => {
    const perRun = (id: string, cpu: number[], rps: number[]): CaseResult => ({
      ...proxy(id, FLOOR),
      cpuPerRequestUs: { median: cpu[1] ?? null, runs: cpu },
      c32: { rps: { median: rps[1] ?? null, runs: rps }, p99us: m(1000), rpsRatioToDirect: m(0.5) },
    });
    const cases = [perRun('llm-fallback', [106, 158, 112], [9354, 6244, 8841]), perRun('node-floor', [99, 96, 122], [10021, 10353, 8121])];
    const fresh = renderMarkdown(results({ cases, settings: { ...results({}).settings, runs: 3, freshProcessPerRun: true } }));
    assert.match(fresh, /3 run\(s\) per measurement, each with every proxy started afresh/);
    assert.match(
      section(fresh, 'Non-streaming'),
      /llm-fallback 106 \/ 158 \/ 112 µs CPU per request, 9354 \/ 6244 \/ 8841 RPS at c=32; node-floor 99 \/ 96 \/ 122 µs CPU per request, 10021 \/ 10353 \/ 8121 RPS at c=32\./,
    );
    const older = renderMarkdown(results({ cases, settings: { ...results({}).settings, runs: 3 } }));
    assert.match(older, /3 run\(s\) per measurement, all in one process per case/);
    assert.ok(!older.includes("Each run's process"));
  });

  test('a run taken in slices says so in the mode line; one taken whole (or older results) does not', () => {
    const sliced = renderMarkdown(results({ settings: { ...results({}).settings, runs: 3, freshProcessPerRun: true, slices: 5 } }));
    assert.match(
      sliced,
      /3 s per throughput run, each taken in 5 slices that the cases take in turns \(a round of slices takes under a minute, so every case meets nearly the same moments of the host;/,
    );
    for (const slices of [1, undefined]) {
      const whole = renderMarkdown(results({ settings: { ...results({}).settings, runs: 3, freshProcessPerRun: true, ...(slices ? { slices } : {}) } }));
      assert.ok(!whole.includes('slices'), `slices: ${slices}`);
    }
  });

  test('the mode line says how each run was warmed up, and nothing for results from before it was recorded', () => {
    const warmed = renderMarkdown(
      results({ settings: { ...results({}).settings, runs: 3, freshProcessPerRun: true, warmUp: { passes: 2, seconds: 3, streams: 20 } } }),
    );
    assert.match(
      warmed,
      /a fresh process per run and case; the warm-up: 2 passes over the cases, each of c=32 then c=1 for 3 s, 20 streams and the fallback chains\)/,
    );
    const once = renderMarkdown(
      results({ settings: { ...results({}).settings, runs: 1, freshProcessPerRun: true, warmUp: { passes: 1, seconds: 1, streams: 20 } } }),
    );
    assert.match(once, /the warm-up: one pass over the cases, each of c=32 then c=1 for 1 s,/);
    const older = renderMarkdown(results({ settings: { ...results({}).settings, runs: 3, freshProcessPerRun: true } }));
    assert.match(older, /\(a fresh process per run and case\)/);
    assert.ok(!older.includes('the warm-up:'));
  });

  test("the CPU profile names every run's process it sums, and an older single profile as one", () => {
    const profile = {
      top: [{ selfPercent: 12.5, fn: 'serveRequest', where: 'dist/src/server/app.js:10' }],
      byArea: [{ area: 'node internals', selfPercent: 40 }],
    };
    const summed = section(
      renderMarkdown(results({ profile: { ...profile, files: ['out/profile/CPU.1.cpuprofile', 'out/profile/CPU.2.cpuprofile'] } })),
      'CPU profile of llm-fallback',
    );
    assert.match(summed, /Profiles of the 2 runs' processes, summed: `out\/profile\/CPU\.1\.cpuprofile`, `out\/profile\/CPU\.2\.cpuprofile` \(whole run/);
    const one = section(renderMarkdown(results({ profile: { ...profile, file: 'out/profile/CPU.1.cpuprofile' } })), 'CPU profile of llm-fallback');
    assert.match(one, /Profile: `out\/profile\/CPU\.1\.cpuprofile` \(whole run/);
    assert.match(one, /\| 12\.5 \| serveRequest \| dist\/src\/server\/app\.js:10 \|/);
  });

  test("the sidecar's memory in a real pod beside the bench's own, or that no e2e ran here", () => {
    const none = section(renderMarkdown(results({ e2eMemory: null })), 'Memory: this run and a real pod');
    assert.match(none, /no e2e run on this machine/);
    assert.match(
      none,
      /\| llm-fallback \(this run\) \| 50\.0 MB RSS once ready \| 80\.0 MB RSS after the request runs \| 110\.0 MB \(after the slow streams: 150\.0 MB\)/,
    );
    const pod = section(
      renderMarkdown(
        results({
          e2eMemory: {
            measuredAt: '2026-12-01T08:00:00.000Z',
            idle: { usageMiB: 58.2, rssMiB: 41.5 },
            afterLoad: { usageMiB: 66.4, rssMiB: 47.9, peakMiB: 70.3, limitMiB: 256 },
            requests: 1000,
            loadMs: 2345,
          },
        }),
      ),
      'Memory: this run and a real pod',
    );
    assert.ok(!pod.includes('no e2e run'));
    assert.match(
      pod,
      /2026-12-01T08:00:00\.000Z\) \| cgroup usage 58\.2 MiB, rss 41\.5 MiB \| after 1000 requests \(2345 ms\): usage 66\.4 MiB, rss 47\.9 MiB \| 70\.3 MiB \(limit 256 MiB\) \|/,
    );
  });
});
