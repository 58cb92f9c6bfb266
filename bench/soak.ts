// `npm run soak`: mixed traffic through llm-fallback while the upstream misbehaves.
//
//   npm run soak                         # 200 RPS for 10 minutes
//   npm run soak -- --duration 60s       # short run (what CI runs)
//   options: --duration 10m|60s|90  --rps 200  --stream-share 0.5
//
// The proxy runs in a child process, as in the image: `node <the image's NODE_OPTIONS,
// bench/lib/image-flags.ts> src/cli.ts serve`, with its own config dir, on 127.0.0.1 and free
// ports, stopped by PID. The fault upstream of the tests and the load client run in this
// process. Every chain's primary steps inject faults that happen before the first byte reaches
// the caller (429, 5xx, connection reset, silence, slow first token, an error or content-filter
// first event, an empty stream, a long Retry-After); the last step of every chain is always
// healthy. One chain keeps its circuit breaker flapping.
// Asserts, and exits non-zero otherwise:
//   1. zero client-visible errors (every answer 200; every stream ends with [DONE], no error event);
//   2. the proxy's RSS (VmRSS of the child, /proc/<pid>/status, sampled every 1 s in runs under
//      2 min, else every 5 s) grows < 10% after warm-up: median of the first fifth of the
//      post-warm-up samples vs the last fifth;
//   3. no leaked sockets or timers: after the load and an idle period the upstream has no open
//      connections, the proxy no more sockets (/proc/<pid>/fd, and its active resources on the
//      admin /metrics) and no more timers than before the load beyond one budget per target;
//      on SIGTERM it drains and exits 0 within 5 s with no server, socket, watcher or timer
//      left (reported at exit by bench/lib/exit-report.ts, preloaded into the child).
import { Writable } from 'node:stream';
import { Agent, get, request, type IncomingMessage } from 'node:http';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startFaultUpstream, type FaultUpstream } from '../test/support/fault-upstream.ts';
import type { ExitReport } from './lib/exit-report.ts';
import { IMAGE_FLAGS } from './lib/image-flags.ts';
import { freePort, isRunning, killAllSync, memoryOf, spawnPinned, stop, stopAll, tail, waitForPort, type Proc } from './lib/procs.ts';
import { median, percentile } from './lib/stats.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Options {
  durationMs: number;
  rps: number;
  streamShare: number;
}

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`--duration: "${text}" is not a duration like 30s, 10m or 90`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { duration: { type: 'string' }, rps: { type: 'string' }, 'stream-share': { type: 'string' } },
    strict: true,
  });
  const rps = Number(values.rps ?? 200);
  const streamShare = Number(values['stream-share'] ?? 0.5);
  if (!Number.isFinite(rps) || rps <= 0 || rps > 5000) throw new Error('--rps: 1..5000');
  if (!Number.isFinite(streamShare) || streamShare < 0 || streamShare > 1) throw new Error('--stream-share: 0..1');
  const durationMs = parseDuration(values.duration ?? '10m');
  if (durationMs < 10_000 || durationMs > 24 * 3_600_000) throw new Error('--duration: between 10s and 24h');
  return { durationMs, rps, streamShare };
}

const say = (msg: string): void => void process.stdout.write(`[soak] ${msg}\n`);

// ---------------------------------------------------------------------------
// Chains: faulty primaries, a healthy last step. Every model carries its chain's tag so each
// (provider, model) target, and so each circuit breaker, belongs to one chain only.

interface ChainPlan {
  name: string;
  weight: number;
  steps: Array<{ fault: string; retries?: number; timeouts?: Record<string, number> }>;
  circuitBreaker: { failureThreshold: number; windowSeconds: number; cooldownSeconds: number };
}

// A breaker that never opens at this load (1000 failures within 1 s), so faults keep coming.
const NEVER_OPENS = { failureThreshold: 1000, windowSeconds: 1, cooldownSeconds: 1 };
const FAST_FAIL = { firstByteMs: 150, totalMs: 400 };

const PLANS: ChainPlan[] = [
  { name: 'soak-healthy', weight: 2, steps: [{ fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  { name: 'soak-429', weight: 2, steps: [{ fault: '429', retries: 1 }, { fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  { name: 'soak-5xx', weight: 2, steps: [{ fault: '500', retries: 1 }, { fault: '503' }, { fault: '529' }, { fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  { name: 'soak-reset', weight: 2, steps: [{ fault: 'reset', retries: 1 }, { fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  { name: 'soak-slow', weight: 1, steps: [{ fault: 'slow-first-token-2000', timeouts: FAST_FAIL }, { fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  { name: 'soak-silent', weight: 1, steps: [{ fault: 'silent', timeouts: FAST_FAIL }, { fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  {
    name: 'soak-first-event',
    weight: 2,
    steps: [{ fault: 'error-event' }, { fault: 'content-filter-finish' }, { fault: 'empty-stream' }, { fault: 'ok' }],
    circuitBreaker: NEVER_OPENS,
  },
  { name: 'soak-retry-after', weight: 1, steps: [{ fault: '429-retry-after-30' }, { fault: 'ok' }], circuitBreaker: NEVER_OPENS },
  // Opens after 3 failures, half-opens after 1 s: open → skipped → probe → open again, all run long.
  {
    name: 'soak-flapping',
    weight: 2,
    steps: [{ fault: '500' }, { fault: 'ok' }],
    circuitBreaker: { failureThreshold: 3, windowSeconds: 5, cooldownSeconds: 1 },
  },
];

function chainsYaml(baseURL: string): string {
  return PLANS.map((plan) =>
    JSON.stringify({
      apiVersion: 'llmfallback.io/v1alpha1',
      kind: 'FallbackChain',
      metadata: { name: plan.name },
      spec: {
        providers: [{ name: 'fault', api: 'openai', baseURL }],
        steps: plan.steps.map((s) => ({
          provider: 'fault',
          model: `fault:${s.fault}#${plan.name}`,
          retries: s.retries ?? 0,
          ...(s.timeouts ? { timeouts: s.timeouts } : {}),
        })),
        // Refusals opted in: soak-first-event routes a content-filter finish to the next step.
        policy: {
          backoff: { baseMs: 5, maxMs: 50 },
          deadlineMs: 10_000,
          fallbackOn: ['rateLimited', 'serverError', 'timeout', 'connection', 'contentFiltered', 'authFailed', 'contextLength'],
        },
        circuitBreaker: plan.circuitBreaker,
      },
    }),
  ).join('\n---\n');
}

// ---------------------------------------------------------------------------
// The proxy's log, counted rather than kept (a 10-minute run writes ~250k lines).

interface LogCounts {
  lines: number;
  warn: number;
  error: number;
  requestsNotSuccess: number;
  lastProblems: string[];
}

function countingSink(counts: LogCounts): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        counts.lines++;
        const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
        if (level === 40) counts.warn++;
        if (level >= 50) counts.error++;
        const isRequest = line.includes('"msg":"request"');
        if (isRequest && !line.includes('"outcome":"success"')) counts.requestsNotSuccess++;
        if (level >= 50 || (isRequest && !line.includes('"outcome":"success"'))) {
          counts.lastProblems.push(line.slice(0, 400));
          if (counts.lastProblems.length > 5) counts.lastProblems.shift();
        }
      }
      done();
    },
  });
}

// ---------------------------------------------------------------------------
// Client

interface ClientStats {
  sent: number;
  ok: number;
  failed: number;
  byKind: Map<string, number>;
  examples: string[];
  latenciesMs: number[];
  byChain: Map<string, number[]>;
  inflight: number;
}

function pickPlan(random: number): ChainPlan {
  const total = PLANS.reduce((a, p) => a + p.weight, 0);
  let at = random * total;
  for (const plan of PLANS) {
    at -= plan.weight;
    if (at < 0) return plan;
  }
  return PLANS[PLANS.length - 1] as ChainPlan;
}

function fail(stats: ClientStats, kind: string, detail: string): void {
  stats.failed++;
  stats.byKind.set(kind, (stats.byKind.get(kind) ?? 0) + 1);
  if (stats.examples.length < 10) stats.examples.push(`${kind}: ${detail.slice(0, 300)}`);
}

/** One request; any answer a caller would see as an error is recorded as a failure. */
function sendOne(agent: Agent, url: string, chain: string, stream: boolean, stats: ClientStats): Promise<void> {
  const body = JSON.stringify({ model: chain, messages: [{ role: 'user', content: 'soak' }], ...(stream ? { stream: true } : {}) });
  const started = performance.now();
  stats.sent++;
  stats.inflight++;
  return new Promise<void>((resolve) => {
    let settled = false;
    const settle = (ok: boolean, kind = '', detail = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stats.inflight--;
      if (ok) {
        stats.ok++;
        const ms = performance.now() - started;
        if (stats.latenciesMs.length < 200_000) stats.latenciesMs.push(ms);
        const perChain = stats.byChain.get(chain) ?? [];
        if (perChain.length < 50_000) perChain.push(ms);
        stats.byChain.set(chain, perChain);
      } else {
        fail(stats, kind, `${chain} ${stream ? 'stream' : 'json'}: ${detail}`);
      }
      resolve();
    };
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 64 * 1024) text += c;
        });
        res.once('error', (e) => settle(false, 'response error', e.message));
        res.once('end', () => {
          if (res.statusCode !== 200) return settle(false, `HTTP ${res.statusCode}`, text);
          if (stream) {
            if (/^data: \{"error"/m.test(text)) return settle(false, 'stream error event', text.slice(-300));
            if (!text.includes('data: [DONE]')) return settle(false, 'stream without [DONE]', text.slice(-300));
            if (!text.includes('Hello')) return settle(false, 'stream without content', text.slice(0, 300));
            return settle(true);
          }
          try {
            const parsed = JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown } }> };
            if (typeof parsed.choices?.[0]?.message?.content !== 'string') return settle(false, 'json without content', text);
          } catch {
            return settle(false, 'json unparsable', text);
          }
          settle(true);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      settle(false, 'client timeout', 'no complete answer within 20 s');
    }, 20_000);
    req.once('error', (e) => settle(false, 'request error', e.message));
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// The proxy's process: sockets from /proc, active resources from its admin /metrics.

const fmtCounts = (m: Map<string, number>): string =>
  [...m.entries()]
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '(none)';

function countList(list: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of list) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** Open sockets of a process (TCP listeners and connections, pipes and unix sockets), from /proc/<pid>/fd. */
function socketsOf(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed between readdir and readlink
    }
  }
  return n;
}

/** GET on a fresh connection (no agent, so no socket or timer of ours outlives it). */
function getText(url: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
  });
}

/** The proxy's process.getActiveResourcesInfo(), by type, as prom-client reports it on /metrics. */
async function proxyResources(adminUrl: string): Promise<Map<string, number>> {
  const { status, text } = await getText(`${adminUrl}/metrics`);
  if (status !== 200) throw new Error(`GET ${adminUrl}/metrics: HTTP ${status}`);
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^llm_fallback_process_nodejs_active_resources\{type="([^"]+)"\} (\d+)$/gm)) counts.set(m[1] as string, Number(m[2]));
  if (counts.size === 0) throw new Error(`GET ${adminUrl}/metrics: no llm_fallback_process_nodejs_active_resources`);
  return counts;
}

async function waitFor(check: () => boolean, timeoutMs: number, stepMs = 250): Promise<boolean> {
  for (let waited = 0; waited <= timeoutMs; waited += stepMs) {
    if (check()) return true;
    await delay(stepMs);
  }
  return check();
}

async function waitForReady(adminUrl: string, proc: Proc, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (!isRunning(proc)) throw new Error(`the proxy exited during start-up: ${tail(proc.logFile, 10)}`);
    const ready = await getText(`${adminUrl}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return;
    if (Date.now() > until) break;
    await delay(100);
  }
  throw new Error(`the proxy was not ready within ${timeoutMs} ms`);
}

/** Resolves with the exit code (null: killed by a signal), or 'timeout' after ms. */
async function exitWithin(proc: Proc, ms: number): Promise<number | null | 'timeout'> {
  const gate = new AbortController();
  const result = await Promise.race([proc.exited, delay(ms, 'timeout' as const, { signal: gate.signal }).catch(() => 'timeout' as const)]);
  gate.abort();
  return result;
}

interface Sample {
  atS: number;
  rssMB: number;
  sent: number;
  inflight: number;
  upstreamSockets: number;
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const durationS = opts.durationMs / 1000;
  const warmupMs = Math.min(120_000, Math.max(10_000, opts.durationMs * 0.5)); // 10 min: 2 min; 60 s: 30 s
  const sampleMs = opts.durationMs >= 120_000 ? 5000 : 1000;
  say(
    `${opts.rps} RPS for ${durationS} s (${Math.round(opts.streamShare * 100)}% streams), warm-up ${warmupMs / 1000} s, proxy RSS sampled every ${sampleMs / 1000} s; chains: ${PLANS.map((p) => p.name).join(', ')}`,
  );

  const scratch = mkdtempSync(path.join(os.tmpdir(), 'llmfb-soak-'));
  const configDir = path.join(scratch, 'config');
  mkdirSync(configDir);
  const exitReportFile = path.join(scratch, 'exit-report.json');
  let upstream: FaultUpstream | undefined;
  let proc: Proc | undefined;
  // A timeout of its own makes Node's agent honour the proxy's `Keep-Alive: timeout=65` (closing
  // an idle socket after 64 s, the proxy after 66); without one it keeps idle sockets until the
  // proxy closes them, and a request written at that moment is reset, the proxy unaware.
  const agent = new Agent({ keepAlive: true, maxSockets: 1024, timeout: 120_000 });
  const failures: string[] = [];

  try {
    upstream = await startFaultUpstream();
    writeFileSync(path.join(configDir, 'chains.yaml'), chainsYaml(upstream.url));
    const port = await freePort();
    const adminPort = await freePort();
    const logCounts: LogCounts = { lines: 0, warn: 0, error: 0, requestsNotSuccess: 0, lastProblems: [] };
    proc = spawnPinned(
      'llm-fallback',
      undefined,
      process.execPath,
      [
        ...IMAGE_FLAGS,
        '--import',
        pathToFileURL(path.join(ROOT, 'bench', 'lib', 'exit-report.ts')).href,
        path.join(ROOT, 'src', 'cli.ts'),
        'serve',
        '--config',
        configDir,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--admin-host',
        '127.0.0.1',
        '--admin-port',
        String(adminPort),
        '--log-level',
        'info',
        '--credentials-dir',
        path.join(scratch, 'no-credentials'),
        '--drain-timeout-ms',
        '15000',
      ],
      {
        env: { ...process.env, NODE_ENV: 'production', SOAK_EXIT_REPORT: exitReportFile },
        logFile: path.join(scratch, 'proxy-stderr.log'),
        cwd: ROOT,
        pipeStdout: true,
      },
    );
    const child = proc;
    // Its log (stdout, one line per request) is counted rather than kept (a 10-minute run writes ~250k lines).
    const stdout = child.child.stdout;
    if (!stdout) throw new Error('the proxy has no stdout pipe');
    const logEnded = new Promise<void>((resolve) => stdout.once('close', () => resolve()));
    stdout.pipe(countingSink(logCounts));
    const apiUrl = `http://127.0.0.1:${port}`;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await waitForPort(port, child, 20_000);
    await waitForReady(adminUrl, child, 10_000);
    await delay(500); // let the probes' connections close
    const baselineSockets = socketsOf(child.pid);
    const baseline = await proxyResources(adminUrl);
    const startMemory = memoryOf(child.pid);
    say(`proxy pid ${child.pid} on ${apiUrl} (admin ${adminUrl}), node ${IMAGE_FLAGS.join(' ')}; fault upstream on ${upstream.url}`);
    say(`proxy before load: RSS ${startMemory?.rssMB.toFixed(1) ?? '?'} MB, ${baselineSockets} sockets, resources ${fmtCounts(baseline)}`);

    const url = `${apiUrl}/v1/chat/completions`;
    const stats: ClientStats = { sent: 0, ok: 0, failed: 0, byKind: new Map(), examples: [], latenciesMs: [], byChain: new Map(), inflight: 0 };
    const samples: Sample[] = [];
    // Open-loop pacing: every 10 ms send what the schedule says is due (bounded catch-up).
    const started = performance.now();
    const pending = new Set<Promise<void>>();
    let due = 0;
    let lastSample = started;
    let lastReset = started;
    let capped = 0;
    for (let tick = 0; ; tick++) {
      const now = performance.now();
      const elapsed = now - started;
      if (elapsed >= opts.durationMs || tick > opts.durationMs / 5) break; // bounded either way
      if (!isRunning(child)) throw new Error(`the proxy exited during the load: ${tail(child.logFile, 10)}`);
      const target = Math.floor((elapsed / 1000) * opts.rps);
      due = Math.min(target - stats.sent, opts.rps); // never more than a second's worth at once
      for (let i = 0; i < due; i++) {
        if (stats.inflight >= 2000) {
          capped++;
          continue;
        }
        const plan = pickPlan(Math.random());
        const p = sendOne(agent, url, plan.name, Math.random() < opts.streamShare, stats);
        pending.add(p);
        void p.then(() => pending.delete(p));
      }
      if (now - lastReset >= 5000) {
        upstream.reset(); // the fault upstream records every request: keep that record small
        lastReset = now;
      }
      if (now - lastSample >= sampleMs) {
        lastSample = now;
        const mem = memoryOf(child.pid);
        if (mem && Number.isFinite(mem.rssMB))
          samples.push({ atS: elapsed / 1000, rssMB: mem.rssMB, sent: stats.sent, inflight: stats.inflight, upstreamSockets: upstream.openConnections() });
        const last = samples[samples.length - 1];
        if (last && samples.length % Math.max(1, Math.round(30_000 / sampleMs)) === 0) {
          say(
            `t=${last.atS.toFixed(0)}s sent ${last.sent} ok ${stats.ok} failed ${stats.failed} in flight ${last.inflight} proxy rss ${last.rssMB.toFixed(1)} MB upstream sockets ${last.upstreamSockets}`,
          );
        }
      }
      await delay(10);
    }
    say(`load stopped after ${((performance.now() - started) / 1000).toFixed(1)} s: waiting for ${pending.size} in-flight requests`);
    const gate = new AbortController();
    await Promise.race([Promise.all([...pending]), delay(30_000, undefined, { signal: gate.signal }).catch(() => undefined)]);
    gate.abort();
    if (capped > 0) failures.push(`${capped} requests not sent: more than 2000 in flight (the proxy fell behind)`);

    // 1. Client-visible errors.
    const achievedRps = stats.sent / durationS;
    if (stats.failed > 0) failures.push(`${stats.failed} client-visible errors: ${fmtCounts(stats.byKind)}`);
    if (stats.ok + stats.failed !== stats.sent) failures.push(`${stats.sent - stats.ok - stats.failed} requests never completed`);
    if (achievedRps < opts.rps * 0.9) failures.push(`only ${achievedRps.toFixed(0)} RPS sent of ${opts.rps}`);

    // 2. The proxy's memory after warm-up: median of the first fifth of post-warm-up samples vs the last fifth.
    const steady = samples.filter((s) => s.atS * 1000 >= warmupMs);
    const fifth = Math.max(1, Math.floor(steady.length / 5));
    const early = median(steady.slice(0, fifth).map((s) => s.rssMB));
    const late = median(steady.slice(-fifth).map((s) => s.rssMB));
    const growth = (late - early) / early;
    if (steady.length < 10) failures.push(`too few samples after warm-up (${steady.length}) to judge memory growth`);
    else if (!(growth < 0.1)) failures.push(`proxy RSS grew ${(growth * 100).toFixed(1)}% after warm-up (${early.toFixed(1)} → ${late.toFixed(1)} MB)`);
    const endMemory = memoryOf(child.pid);

    // 3. Leaks: idle, then the proxy's sockets and timers.
    agent.destroy();
    const up = upstream;
    // The fault upstream announces Node's default 5 s keep-alive; the proxy's pool closes its idle sockets a second before.
    const upstreamIdle = await waitFor(() => up.openConnections() === 0, 15_000);
    if (!upstreamIdle) failures.push(`${up.openConnections()} connections to the upstream still open 15 s after the load`);
    // Its end of those connections, and the callers', close once it sees the FIN.
    const proxyIdle = await waitFor(() => isRunning(child) && socketsOf(child.pid) <= baselineSockets, 10_000);
    const idleSockets = isRunning(child) ? socketsOf(child.pid) : -1;
    if (!proxyIdle) failures.push(`the proxy has ${idleSockets} sockets open after the load and an idle period (${baselineSockets} before the load)`);
    const afterIdle = await proxyResources(adminUrl);
    const tcp = afterIdle.get('TCPSocketWrap') ?? 0;
    const tcpBefore = baseline.get('TCPSocketWrap') ?? 0; // both counts include the /metrics request's own socket
    if (tcp > tcpBefore) failures.push(`the proxy has ${tcp} TCP sockets after the load and an idle period (${tcpBefore} before): ${fmtCounts(afterIdle)}`);
    // Timers: the breakers' rolling windows (one per target) may remain until drain; per-request timers may not.
    const targets = PLANS.reduce((a, p) => a + p.steps.length, 0);
    const timers = afterIdle.get('Timeout') ?? 0;
    const timerBudget = (baseline.get('Timeout') ?? 0) + 2 * targets + 10;
    if (timers > timerBudget)
      failures.push(`${timers} timers alive in the proxy after the load (budget ${timerBudget}: ${targets} targets): per-request timers leaked`);

    // Drain: SIGTERM; it must exit 0 within 5 s, leaving nothing of its own behind.
    const drainStarted = performance.now();
    process.kill(child.pid, 'SIGTERM');
    const code = await exitWithin(child, 5000);
    const drainMs = performance.now() - drainStarted;
    let afterDrain = '(no exit report)';
    if (code === 'timeout') failures.push('the proxy did not exit within 5 s of SIGTERM');
    else if (code !== 0) failures.push(`the proxy exited with ${code ?? 'a signal'} after SIGTERM: ${tail(child.logFile, 10)}`);
    else {
      let report: ExitReport | undefined;
      try {
        report = JSON.parse(readFileSync(exitReportFile, 'utf8')) as ExitReport;
      } catch {
        failures.push(`the proxy wrote no exit report (${exitReportFile})`);
      }
      if (report) {
        const left = countList(report.resources);
        afterDrain = fmtCounts(left);
        for (const kind of ['TCPServerWrap', 'TCPSocketWrap', 'FSEventWrap', 'StatWatcher', 'Timeout']) {
          const n = left.get(kind) ?? 0;
          if (n > 0) failures.push(`${n} ${kind} left in the proxy when it exited after drain (${afterDrain})`);
        }
      }
    }
    const gate2 = new AbortController();
    await Promise.race([logEnded, delay(5000, undefined, { signal: gate2.signal }).catch(() => undefined)]);
    gate2.abort();

    const p = (q: number): string => percentile(stats.latenciesMs, q).toFixed(1);
    say('');
    say(
      `requests: ${stats.sent} sent (${achievedRps.toFixed(1)} RPS), ${stats.ok} ok, ${stats.failed} client-visible errors${stats.failed ? ` (${fmtCounts(stats.byKind)})` : ''}`,
    );
    say(`latency of successful requests: p50 ${p(50)} ms, p99 ${p(99)} ms, max ${p(100)} ms`);
    say(
      `per chain p50/p99 ms: ${PLANS.map((plan) => {
        const l = stats.byChain.get(plan.name) ?? [];
        return `${plan.name} ${percentile(l, 50).toFixed(0)}/${percentile(l, 99).toFixed(0)}`;
      }).join(', ')}`,
    );
    say(`proxy log: ${logCounts.lines} lines, ${logCounts.warn} warn, ${logCounts.error} error, ${logCounts.requestsNotSuccess} request lines not 'success'`);
    say(
      `proxy memory: RSS after warm-up ${early.toFixed(1)} MB → end ${late.toFixed(1)} MB (${(growth * 100).toFixed(1)}%, ${steady.length} samples after warm-up); peak ${endMemory?.peakMB.toFixed(1) ?? '?'} MB; samples (s: MB) ${samples
        .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 12)) === 0)
        .map((s) => `${s.atS.toFixed(0)}:${s.rssMB.toFixed(0)}`)
        .join(' ')}`,
    );
    say(
      `proxy sockets: ${baselineSockets} before the load, ${idleSockets} after it and an idle period; resources before ${fmtCounts(baseline)} | after idle ${fmtCounts(afterIdle)} | at exit after drain (${drainMs.toFixed(0)} ms, code ${code}) ${afterDrain}`,
    );

    for (const e of stats.examples) say(`  example error: ${e}`);
    for (const l of logCounts.lastProblems) say(`  proxy log: ${l}`);
  } finally {
    agent.destroy();
    if (proc) await stop(proc);
    if (upstream) await upstream.close();
    rmSync(scratch, { recursive: true, force: true });
  }

  if (failures.length > 0) {
    say('FAILED:');
    for (const f of failures) say(`  - ${f}`);
    return 1;
  }
  say('PASSED: zero client-visible errors, proxy memory steady, no leaked sockets or timers');
  return 0;
}

// Whatever happens, the proxy is stopped by its PID.
process.on('exit', killAllSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping the proxy`);
    void stopAll().then(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything was closed above; a hang here would itself be a leak, so do not wait forever.
    setTimeout(() => {
      process.stderr.write(`[soak] still running 5 s after the end: active resources ${process.getActiveResourcesInfo().join(', ')}\n`);
      process.exit(code === 0 ? 1 : code);
    }, 5000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`[soak] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
