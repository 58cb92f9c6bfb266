// `npm run bench`: what the llm-fallback hop, start and idle pod cost, next to their peers and
// against issue 16's targets, on this machine.
//
//   npm run bench                    # full: 3 runs (each a fresh process of every proxy, warmed up in two passes),
//                                    # 10 s per measurement in 5 slices the cases take in turns, 7 starts of each (~23 min)
//   npm run bench -- --quick         # one short run of each, 3 starts of each (~4 min), for a smoke test
//   options: --runs N  --slices N (per measurement; 1: each case's whole measurement at once)  --duration S  --latency-ms MS (mock upstream latency)  --cases a,b
//            --max-streams N  --loadgen wrk|autocannon  --cpu-prof  --no-install
//            --startup-runs N (starts of each startup case)  --no-startup (request path only)
//            --entry FILE (the sidecar's entry, default dist/bundle/llm-fallback.mjs; with --cpu-prof dist/src/cli.js
//              on the request path)
//            --llm-fallback-node-options="--max-old-space-size=64" (node flags for that process only; note the =)
//            --llm-fallback-log-level warn (default info: one log line per request, as in production)
//            --llm-fallback-env NAME=VALUE (repeatable; e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
//              to measure tracing on: docs/bench/tracing.md)
//            --out DIR (default docs/bench)  --note TEXT (printed with the results)
//            --render (only re-render results.md and chart.svg from <out>/results.json)
//
// Request-path cases: direct to the mock upstream (baseline), llm-fallback (`node
// dist/bundle/llm-fallback.mjs serve`: the bundle, as the image runs it; with --cpu-prof the
// unbundled `dist/src/cli.js`, whose frames name their source files, at the same per-request
// CPU: docs/bench/findings.md), Portkey's gateway from npm (@portkey-ai/gateway), nginx as a
// plain reverse proxy, and the Node floor (bench/node-floor.ts: the least a model-routing proxy
// in Node does). Each proxy is pinned to core 0; the mock, the load generator and this script
// to core 1.
// Startup cases (bench/lib/startup.ts, also `npm run bench:startup`), run first while nothing
// else of the bench runs: a bare Node HTTP server, `serve --config` (with llm-fallback) and
// `serve --kubernetes` against the kube-apiserver harness (case `kubernetes`), spawn to ready
// and idle RSS. It builds what it measures: `npm run build` and `npm run bundle` first.
// Results: <out>/results.json, results.md and chart.svg, with issue 16's targets and the
// sidecar's memory in a real pod from the last `npm run e2e` (bench/lib/e2e-memory.ts). Every
// server binds 127.0.0.1 and is stopped by PID at the end, also on error or Ctrl-C.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  abandonedRequests,
  concurrentStreams,
  requestBody,
  runAutocannon,
  runWrk,
  sequentialStreams,
  type LoadGenerator,
  type LoadResult,
  type StreamSample,
  type Target,
} from './lib/load.ts';
import {
  canPin,
  cpuCount,
  cpuSecondsOf,
  freePort,
  killAllSync,
  memoryOf,
  pinSelf,
  serveFlags,
  spawnPinned,
  stop,
  withPaused,
  stopAll,
  tail,
  waitForPort,
  which,
  type Proc,
} from './lib/procs.ts';
import { readE2eMemory } from './lib/e2e-memory.ts';
import { renderMarkdown, renderSvg, type CaseResult, type LevelResult, type Results, type StartupCaseId, type StartupResults } from './lib/report.ts';
import { IMAGE_FLAGS } from './lib/image-flags.ts';
import { STARTUP_CASE_IDS, measureStartup } from './lib/startup.ts';
import { floorScript } from './lib/floor-script.ts';
import { joinLoads, roundOrder } from './lib/slices.ts';
import { measured, median, percentile, round } from './lib/stats.ts';
import { targetChecks } from './lib/targets.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROXY_CORE = 0;
const LOAD_CORE = 1;
/** Warm-up passes over the cases before a run is measured, and the sequential streams in each (see the warm-up in main). */
const WARM_PASSES = 2;
const WARM_STREAMS = 20;
/** Requests whose callers go away, per warm-up pass (bench/lib/load.ts: abandonedRequests). */
const WARM_ABANDONED = 30;
const CASE_IDS = ['direct', 'llm-fallback', 'portkey', 'nginx', 'node-floor'] as const;
type CaseId = (typeof CASE_IDS)[number];
/** Not a proxy: the start of `serve --kubernetes` against the kube-apiserver harness (its ~10 s of set-up only when asked for). */
const KUBERNETES_CASE = 'kubernetes';
const BUNDLE_ENTRY = path.join(ROOT, 'dist', 'bundle', 'llm-fallback.mjs');
const TSC_ENTRY = path.join(ROOT, 'dist', 'src', 'cli.js');

interface Options {
  quick: boolean;
  runs: number;
  /** Each measurement of a run is split into this many slices, which the cases take in turns (bench/lib/slices.ts). */
  slices: number;
  latencySeconds: number;
  throughputSeconds: number;
  warmSeconds: number;
  upstreamLatencyMs: number;
  outDir: string;
  cases: Set<CaseId>;
  /** bare (the reference) with config when llm-fallback is asked for, and with kubernetes when that is. */
  startupCases: Set<StartupCaseId>;
  startupRuns: number;
  /** The sidecar's entry on the request path. */
  entry: string;
  /** The sidecar's entry in the startup cases: the bundle the image starts, unless --entry names another. */
  startupEntry: string;
  install: boolean;
  loadgen?: LoadGenerator;
  cpuProf: boolean;
  /** Extra node flags for the llm-fallback process only, e.g. "--max-old-space-size=64". */
  llmFallbackNodeOptions: string[];
  /** --log-level for llm-fallback (default info, as in production). */
  llmFallbackLogLevel: string;
  /** Extra environment for the llm-fallback process only (--llm-fallback-env NAME=VALUE). */
  llmFallbackEnv: Record<string, string>;
  note: string;
  /** Only re-render results.md and chart.svg from <out>/results.json. */
  render: boolean;
  ttfbRequests: number;
  slow: { chunks: number; intervalMs: number; levels: number[]; spreadMs: number };
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      slices: { type: 'string' },
      duration: { type: 'string' },
      'latency-ms': { type: 'string' },
      out: { type: 'string' },
      cases: { type: 'string' },
      'no-install': { type: 'boolean' },
      'no-startup': { type: 'boolean' },
      'startup-runs': { type: 'string' },
      entry: { type: 'string' },
      'max-streams': { type: 'string' },
      loadgen: { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'llm-fallback-node-options': { type: 'string' },
      'llm-fallback-log-level': { type: 'string' },
      'llm-fallback-env': { type: 'string', multiple: true },
      note: { type: 'string' },
      render: { type: 'boolean' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const num = (v: string | undefined, fallback: number, name: string): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: "${v}" is not a non-negative number`);
    return n;
  };
  const seconds = num(values.duration, quick ? 3 : 10, 'duration');
  const maxStreams = num(values['max-streams'], 4096, 'max-streams');
  const cases = new Set<CaseId>();
  let kubernetes = false;
  for (const name of (values.cases ?? [...CASE_IDS, KUBERNETES_CASE].join(',')).split(',')) {
    if (name.trim() === KUBERNETES_CASE) {
      kubernetes = true;
      continue;
    }
    const id = CASE_IDS.find((c) => c === name.trim());
    if (!id) throw new Error(`--cases: unknown case "${name}" (known: ${[...CASE_IDS, KUBERNETES_CASE].join(', ')})`);
    cases.add(id);
  }
  cases.add('direct'); // the baseline every ratio needs
  const startupCases = new Set<StartupCaseId>();
  if (values['no-startup'] !== true) {
    if (cases.has('llm-fallback')) startupCases.add('config');
    if (kubernetes) startupCases.add('kubernetes');
    if (startupCases.size > 0) startupCases.add('bare'); // the reference the idle RSS targets need
  }
  const cpuProf = values['cpu-prof'] === true;
  const loadgen = values.loadgen;
  if (loadgen !== undefined && loadgen !== 'wrk' && loadgen !== 'autocannon') throw new Error('--loadgen: wrk or autocannon');
  const levels = (quick ? [128, 256, 512, 1024, 2048] : [64, 128, 256, 512, 1024, 2048, 4096]).filter((l) => l <= maxStreams);
  return {
    quick,
    runs: Math.max(1, Math.round(num(values.runs, quick ? 1 : 3, 'runs'))),
    // Slices of 2 s in a full run: long enough for wrk's connections to matter little, short enough that a slow minute of the host falls on every case.
    slices: Math.max(1, Math.round(num(values.slices, quick ? 1 : 5, 'slices'))),
    latencySeconds: seconds,
    throughputSeconds: seconds,
    warmSeconds: quick ? 1 : 3,
    upstreamLatencyMs: num(values['latency-ms'], 0, 'latency-ms'),
    outDir: path.resolve(values.out ?? path.join(ROOT, 'docs', 'bench')),
    cases,
    startupCases,
    startupRuns: Math.max(1, Math.round(num(values['startup-runs'], quick ? 3 : 7, 'startup-runs'))),
    // Profiles need frames that name their source files: the unbundled build, whose per-request CPU is the bundle's (findings.md).
    entry: values.entry ? path.resolve(values.entry) : cpuProf ? TSC_ENTRY : BUNDLE_ENTRY,
    startupEntry: values.entry ? path.resolve(values.entry) : BUNDLE_ENTRY,
    install: values['no-install'] !== true,
    loadgen,
    cpuProf,
    llmFallbackLogLevel: values['llm-fallback-log-level'] ?? 'info',
    // The image's NODE_OPTIONS unless told otherwise (`--llm-fallback-node-options ''` runs without flags): the floor gets the same.
    llmFallbackNodeOptions:
      values['llm-fallback-node-options'] === undefined ? [...IMAGE_FLAGS] : values['llm-fallback-node-options'].split(/\s+/).filter(Boolean),
    llmFallbackEnv: Object.fromEntries(
      (values['llm-fallback-env'] ?? []).map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new Error(`--llm-fallback-env: "${pair}" is not NAME=VALUE`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    ),
    note: values.note ?? '',
    render: values.render === true,
    ttfbRequests: quick ? 50 : 300,
    slow: quick ? { chunks: 10, intervalMs: 100, levels, spreadMs: 500 } : { chunks: 20, intervalMs: 100, levels, spreadMs: 1000 },
  };
}

const log = (msg: string): void => void process.stdout.write(`[bench] ${msg}\n`);

// ---------------------------------------------------------------------------
// Tools from Debian (wrk, nginx): located, else installed with apt-get when allowed.

function ensureDebianTools(wanted: Array<{ bin: string; pkg: string }>, allowInstall: boolean): Map<string, string> {
  const found = new Map<string, string>();
  const missing: Array<{ bin: string; pkg: string }> = [];
  for (const w of wanted) {
    const at = which(w.bin);
    if (at) found.set(w.bin, at);
    else missing.push(w);
  }
  if (missing.length === 0 || !allowInstall) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !which('apt-get')) return found;
  const pkgs = missing.map((m) => m.pkg);
  log(`installing ${pkgs.join(', ')} with apt-get (Debian packages; --no-install to skip)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean => {
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, stdio: 'ignore', timeout: 300_000 });
      return true;
    } catch {
      return false;
    }
  };
  if (!install()) {
    try {
      execFileSync('apt-get', ['update'], { env, stdio: 'ignore', timeout: 300_000 });
    } catch {
      // the install below reports the failure
    }
    install();
  }
  for (const m of missing) {
    const at = which(m.bin);
    if (at) found.set(m.bin, at);
  }
  return found;
}

// ---------------------------------------------------------------------------
// Servers

interface CaseSetup {
  id: CaseId;
  label: string;
  proc?: Proc;
  version?: string;
  reason?: string;
  notes: string[];
  plain?: Target;
  stream?: Target;
  slow?: Target;
  fallback503?: Target;
  fallbackOpen?: Target;
  fallbackOpenReason?: string;
  fallback503Reason?: string;
}

interface Context {
  opts: Options;
  scratch: string;
  node: string;
  mockPort: number;
  mockProc?: Proc;
}

async function startMock(ctx: Context): Promise<Proc> {
  const proc = spawnPinned(
    'mock-upstream',
    LOAD_CORE,
    ctx.node,
    [
      path.join(ROOT, 'bench', 'mock-upstream.ts'),
      '--port',
      String(ctx.mockPort),
      '--latency-ms',
      String(ctx.opts.upstreamLatencyMs),
      '--slow-chunks',
      String(ctx.opts.slow.chunks),
      '--slow-interval-ms',
      String(ctx.opts.slow.intervalMs),
    ],
    { logFile: path.join(ctx.scratch, 'mock.log') },
  );
  await waitForPort(ctx.mockPort, proc, 15_000);
  return proc;
}

function chainDoc(name: string, mockUrl: string, steps: Array<Record<string, unknown>>, circuitBreaker?: Record<string, number>): string {
  return JSON.stringify({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [{ name: 'mock', api: 'openai', baseURL: mockUrl, apiKey: { env: 'BENCH_API_KEY' } }],
      steps: steps.map((s) => ({ provider: 'mock', retries: 0, ...s })),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 30_000 },
      ...(circuitBreaker ? { circuitBreaker } : {}),
    },
  });
}

async function startLlmFallback(ctx: Context): Promise<CaseSetup> {
  const setup: CaseSetup = { id: 'llm-fallback', label: 'llm-fallback', notes: [] };
  const configDir = path.join(ctx.scratch, 'llm-fallback-config');
  mkdirSync(configDir, { recursive: true });
  const mockUrl = `http://127.0.0.1:${ctx.mockPort}/v1`;
  writeFileSync(
    path.join(configDir, 'chains.yaml'),
    [
      chainDoc('bench', mockUrl, [{ model: 'bench-ok' }]),
      chainDoc('bench-slow', mockUrl, [{ model: 'slow-stream' }]),
      // Breaker effectively off (1000 failures within 0.1 s), so every request meets the 503.
      chainDoc('bench-fallback', mockUrl, [{ model: 'fail-503-a' }, { model: 'bench-ok' }], {
        failureThreshold: 1000,
        windowSeconds: 0.1,
        cooldownSeconds: 0.05,
      }),
      // Opens on the first failure and stays open for the whole run.
      chainDoc('bench-open', mockUrl, [{ model: 'fail-503-b' }, { model: 'bench-ok' }], { failureThreshold: 1, windowSeconds: 3600, cooldownSeconds: 3600 }),
    ].join('\n---\n'),
  );
  const port = await freePort();
  const adminPort = await freePort();
  const prof = ctx.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir(ctx)] : [];
  const proc = spawnPinned(
    'llm-fallback',
    PROXY_CORE,
    ctx.node,
    [
      ...ctx.opts.llmFallbackNodeOptions,
      ...prof,
      ctx.opts.entry,
      'serve',
      '--config',
      configDir,
      ...serveFlags(port, adminPort, path.join(ctx.scratch, 'no-credentials'), ctx.opts.llmFallbackLogLevel),
    ],
    {
      env: { ...process.env, BENCH_API_KEY: 'sk-bench-not-a-secret', NODE_ENV: 'production', ...ctx.opts.llmFallbackEnv },
      logFile: path.join(ctx.scratch, 'llm-fallback.log'),
    },
  );
  setup.proc = proc;
  await waitForPort(port, proc, 20_000);
  await waitForPort(adminPort, proc, 5_000);
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;
  setup.version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  setup.plain = { url, model: 'bench', headers: {} };
  setup.stream = setup.plain;
  setup.slow = { url, model: 'bench-slow', headers: {} };
  setup.fallback503 = { url, model: 'bench-fallback', headers: {} };
  setup.fallbackOpen = { url, model: 'bench-open', headers: {} };
  const perRequest =
    ctx.opts.llmFallbackLogLevel === 'info' ? ' (one line per request, as in production)' : ' (NOT the production default: no per-request line)';
  setup.notes.push(
    `pino log at level ${ctx.opts.llmFallbackLogLevel}${perRequest} written to a file; one-step chain, API key from the environment; \`node ${path.relative(ROOT, ctx.opts.entry)} serve\`${ctx.opts.entry === BUNDLE_ENTRY ? ' (the bundle, as the image runs it)' : ''}`,
  );
  if (ctx.opts.llmFallbackNodeOptions.length > 0) setup.notes.push(`node flags: ${ctx.opts.llmFallbackNodeOptions.join(' ')}`);
  const env = Object.entries(ctx.opts.llmFallbackEnv);
  if (env.length > 0) setup.notes.push(`environment: ${env.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return setup;
}

function portkeyConfig(mockUrl: string, models: Array<string | undefined>): string {
  return JSON.stringify({
    strategy: { mode: 'fallback' },
    targets: models.map((model) => ({
      provider: 'openai',
      api_key: 'sk-bench-not-a-secret',
      custom_host: mockUrl,
      ...(model ? { override_params: { model } } : {}),
    })),
  });
}

/** Where llm-fallback's processes write their CPU profiles (--cpu-prof): one per run. */
function profileDir(ctx: Context): string {
  return path.join(ctx.opts.outDir, 'profile');
}

async function startPortkey(ctx: Context): Promise<CaseSetup> {
  const setup: CaseSetup = { id: 'portkey', label: 'Portkey gateway', notes: [] };
  const pkgDir = path.join(ROOT, 'node_modules', '@portkey-ai', 'gateway');
  const entry = path.join(pkgDir, 'build', 'start-server.js');
  if (!existsSync(entry)) {
    setup.reason = '@portkey-ai/gateway is not installed (npm i -D @portkey-ai/gateway)';
    return setup;
  }
  setup.version = (JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  setup.label = `Portkey ${setup.version}`;
  const port = await freePort();
  // Its start-server takes --port= only and binds every interface: the preload binds it to 127.0.0.1.
  const proc = spawnPinned(
    'portkey',
    PROXY_CORE,
    ctx.node,
    ['--import', path.join(ROOT, 'bench', 'loopback-only.ts'), '--import', path.join(ROOT, 'bench', 'portkey-shim.ts'), entry, `--port=${port}`, '--headless'],
    { env: { ...process.env, NODE_ENV: 'production' }, logFile: path.join(ctx.scratch, 'portkey.log') },
  );
  setup.proc = proc;
  try {
    await waitForPort(port, proc, 30_000);
  } catch (error) {
    setup.reason = `did not start: ${(error as Error).message}; last log lines: ${tail(proc.logFile, 5).replace(/\s+/g, ' ').slice(0, 300)}`;
    await stop(proc);
    setup.proc = undefined;
    return setup;
  }
  const mockUrl = `http://127.0.0.1:${ctx.mockPort}/v1`;
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;
  const one = { 'x-portkey-config': portkeyConfig(mockUrl, [undefined]) };
  setup.plain = { url, model: 'bench-ok', headers: one };
  setup.stream = setup.plain;
  setup.slow = { url, model: 'slow-stream', headers: one };
  setup.fallback503 = { url, model: 'bench-ok', headers: { 'x-portkey-config': portkeyConfig(mockUrl, ['fail-503', 'bench-ok']) } };
  setup.fallbackOpenReason = 'the open-source gateway has no circuit breaker; every request tries the failing target first';
  setup.notes.push(
    'started from node_modules/@portkey-ai/gateway/build/start-server.js --headless with a one-target `strategy: fallback` config in the x-portkey-config header (the equivalent of a one-step chain)',
  );
  setup.notes.push(
    'its stream transformer waits 25 ms before forwarding the first chunk (a setTimeout in build/start-server.js), which dominates its time to first event',
  );
  setup.notes.push(
    'run with bench/portkey-shim.ts: with the @hono/node-server 1.19 that npm resolves for it, every streaming request otherwise fails with "TypeError: immutable" (HTTP 500); and bench/loopback-only.ts, because it has no bind-address option',
  );
  return setup;
}

async function startNginx(ctx: Context, nginx: string | undefined): Promise<CaseSetup> {
  const setup: CaseSetup = { id: 'nginx', label: 'nginx', notes: [] };
  if (!nginx) {
    setup.reason = 'nginx not found and could not be installed (apt-get install nginx-light needs root and the Debian archive; or pass --no-install)';
    return setup;
  }
  try {
    setup.version = execFileSync('sh', ['-c', `"${nginx}" -v 2>&1`], { encoding: 'utf8' }).trim(); // nginx -v prints to stderr
  } catch {
    setup.version = undefined;
  }
  setup.version = setup.version?.replace(/^nginx version: /, '');
  setup.label = setup.version ? setup.version.replace(/^nginx\//, 'nginx ') : 'nginx';
  const port = await freePort();
  const prefix = path.join(ctx.scratch, 'nginx');
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 12000; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream mock { server 127.0.0.1:${ctx.mockPort}; keepalive 1024; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`;
  const confFile = path.join(prefix, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = spawnPinned('nginx', PROXY_CORE, nginx, ['-p', prefix, '-c', confFile, '-e', path.join(prefix, 'logs', 'error.log')], {
    logFile: path.join(ctx.scratch, 'nginx.log'),
  });
  setup.proc = proc;
  try {
    await waitForPort(port, proc, 10_000);
  } catch (error) {
    setup.reason = `did not start: ${(error as Error).message}; ${tail(path.join(prefix, 'logs', 'error.log'), 3).replace(/\s+/g, ' ')}`;
    await stop(proc);
    setup.proc = undefined;
    return setup;
  }
  return withoutFallback(
    setup,
    `http://127.0.0.1:${port}/v1/chat/completions`,
    'bench-ok',
    'a plain reverse proxy: no model fallback',
    'one process (master_process off), upstream keepalive pool, proxy_buffering off, access_log off: the floor for an HTTP hop',
  );
}

async function startNodeFloor(ctx: Context): Promise<CaseSetup> {
  const setup: CaseSetup = { id: 'node-floor', label: 'Node floor (bench/node-floor.ts)', notes: [] };
  const port = await freePort();
  const proc = spawnPinned(
    'node-floor',
    PROXY_CORE,
    ctx.node,
    [
      ...ctx.opts.llmFallbackNodeOptions,
      floorScript(ctx.scratch),
      '--port',
      String(port),
      '--upstream',
      `http://127.0.0.1:${ctx.mockPort}/v1`,
      '--model',
      'bench-ok',
    ],
    { logFile: path.join(ctx.scratch, 'node-floor.log') },
  );
  setup.proc = proc;
  await waitForPort(port, proc, 10_000);
  setup.version = process.versions.node;
  return withoutFallback(
    setup,
    `http://127.0.0.1:${port}/v1/chat/completions`,
    'bench',
    'the floor has no fallback',
    'the least a model-routing proxy in Node does (parse the body, substitute the model, keep-alive node:http client, pipe the answer back) and nothing else: what Node itself costs on this machine, with the same node flags as llm-fallback; run as plain JavaScript (bench/lib/floor-script.ts)',
  );
}

/** One run's cases, each started afresh and smoke-tested; a case that did not start or answer has a reason. */
async function startCases(ctx: Context, nginx: string | undefined): Promise<CaseSetup[]> {
  const { cases } = ctx.opts;
  const setups: CaseSetup[] = [directSetup(ctx)];
  if (cases.has('llm-fallback')) setups.push(await startLlmFallback(ctx));
  if (cases.has('portkey')) setups.push(await startPortkey(ctx));
  if (cases.has('nginx')) setups.push(await startNginx(ctx, nginx));
  if (cases.has('node-floor')) setups.push(await startNodeFloor(ctx));
  for (const s of setups) {
    if (s.reason) {
      log(`${s.label}: UNAVAILABLE: ${s.reason}`);
      continue;
    }
    const problem = await smoke(s).catch((e: unknown) => `smoke request failed: ${(e as Error).message}`);
    if (problem) {
      s.reason = problem;
      log(`${s.label}: UNAVAILABLE: ${problem}`);
      if (s.proc && s.id !== 'direct') await stop(s.proc);
      continue;
    }
    log(`${s.label}: ready${s.proc ? ` (pid ${s.proc.pid})` : ''}`);
  }
  return setups;
}

/** A proxy with no model fallback: the plain, stream and slow-stream targets at `url`; the fallback cases are not measured, for `reason`. */
function withoutFallback(setup: CaseSetup, url: string, model: string, reason: string, note: string): CaseSetup {
  setup.plain = { url, model, headers: {} };
  setup.stream = setup.plain;
  setup.slow = { url, model: 'slow-stream', headers: {} };
  setup.fallback503Reason = reason;
  setup.fallbackOpenReason = reason;
  setup.notes.push(note);
  return setup;
}

/** How much of each measurement one slice takes. */
interface SliceLength {
  latencySeconds: number;
  throughputSeconds: number;
  ttfbRequests: number;
}

function sliceLength(opts: Options): SliceLength {
  // wrk takes whole seconds.
  const seconds = (total: number): number => Math.max(1, Math.round(total / opts.slices));
  return {
    latencySeconds: seconds(opts.latencySeconds),
    throughputSeconds: seconds(opts.throughputSeconds),
    ttfbRequests: Math.max(1, Math.ceil(opts.ttfbRequests / opts.slices)),
  };
}

/** One slice of one part of a case's request measurements. */
type MeasurePart = (ctx: Context, wrk: string | undefined, s: CaseSetup, plain: Target, stream: Target, length: SliceLength) => Promise<Partial<MeasuredRun>>;

/**
 * A run's measurements in two parts, each taken in slices by every case before the next part
 * begins: every process meets them in the order it did before there were slices, and no
 * counted c=1 or c=32 slice follows a c=128 one in the same process (the sidecar promotes
 * garbage to its old space at c=128, the floor does not: findings.md, "fourteenth sitting").
 */
const MEASURE_PARTS: readonly MeasurePart[] = [
  // Latency, then throughput with the CPU it cost.
  async (ctx, wrk, s, plain, _stream, length) => {
    await settle(ctx, wrk, plain);
    const c1 = await load(ctx, wrk, plain, 1, length.latencySeconds);
    const cpuBefore = s.proc ? cpuSecondsOf(s.proc.pid) : undefined;
    const c32 = await load(ctx, wrk, plain, 32, length.throughputSeconds);
    const cpuAfter = s.proc ? cpuSecondsOf(s.proc.pid) : undefined;
    return { c1, c32, ...(cpuBefore !== undefined && cpuAfter !== undefined ? { cpuSeconds: cpuAfter - cpuBefore } : {}) };
  },
  // Many connections, streams, fallback.
  async (ctx, wrk, s, plain, stream, length) => {
    await settle(ctx, wrk, plain);
    const c128 = await load(ctx, wrk, plain, 128, length.throughputSeconds);
    const ttfb = await sequentialStreams(stream, length.ttfbRequests);
    const r: Partial<MeasuredRun> = { c128, ttfb };
    if (s.fallback503) r.fb503 = await load(ctx, wrk, s.fallback503, 1, length.latencySeconds);
    if (s.fallbackOpen) r.fbOpen = await load(ctx, wrk, s.fallbackOpen, 1, length.latencySeconds);
    return r;
  },
];

/**
 * The process was stopped while its neighbours' slices ran: a second of requests, not
 * counted, lets what was due meanwhile (its timers) run and its caches fill again.
 */
async function settle(ctx: Context, wrk: string | undefined, plain: Target): Promise<void> {
  await load(ctx, wrk, plain, 1, 1);
}

/** The process's CPU time during a run's c=32 load, per request it served (µs); none when the load was not measured. */
function cpuUsPerRequest(r: RunRaw): number | undefined {
  const { cpuSeconds, c32 } = r;
  return cpuSeconds === undefined || !c32 || !Number.isFinite(c32.rps) || c32.requests === 0 ? undefined : (cpuSeconds * 1e6) / c32.requests;
}

/** A slice with both parts taken. */
function wholeSlice(r: Partial<MeasuredRun>): MeasuredRun {
  const { c1, c32, c128, ttfb } = r;
  if (!c1 || !c32 || !c128 || !ttfb) throw new Error('bench: a slice is missing one of its measurements');
  return { ...r, c1, c32, c128, ttfb };
}

/** A run's slices of one case as its run: the loads joined, the streams together, the CPU of every c=32 slice over their requests. */
function joinSlices(slices: readonly MeasuredRun[]): MeasuredRun {
  const loads = (pick: (r: MeasuredRun) => LoadResult | undefined): LoadResult | undefined => {
    const parts = slices.map(pick);
    return parts.every((p): p is LoadResult => p !== undefined) && parts.length > 0 ? joinLoads(parts) : undefined;
  };
  const c32 = joinLoads(slices.map((r) => r.c32));
  const r: MeasuredRun = {
    c1: joinLoads(slices.map((x) => x.c1)),
    c32,
    c128: joinLoads(slices.map((x) => x.c128)),
    ttfb: slices.flatMap((x) => x.ttfb),
  };
  const cpu = slices.map((x) => x.cpuSeconds);
  if (cpu.every((c): c is number => c !== undefined)) r.cpuSeconds = cpu.reduce((a, c) => a + c, 0);
  const fb503 = loads((x) => x.fb503);
  if (fb503) r.fb503 = fb503;
  const fbOpen = loads((x) => x.fbOpen);
  if (fbOpen) r.fbOpen = fbOpen;
  return r;
}

function directSetup(ctx: Context): CaseSetup {
  const url = `http://127.0.0.1:${ctx.mockPort}/v1/chat/completions`;
  return {
    id: 'direct',
    label: 'direct (no proxy)',
    proc: ctx.mockProc,
    notes: ["the mock upstream itself, on core 1 with the load generator; RSS shown is the mock's"],
    plain: { url, model: 'bench-ok', headers: {} },
    stream: { url, model: 'bench-ok', headers: {} },
    slow: { url, model: 'slow-stream', headers: {} },
    fallback503Reason: 'baseline',
    fallbackOpenReason: 'baseline',
  };
}

// ---------------------------------------------------------------------------
// Smoke checks: every case must answer correctly before it is measured.

async function post(target: Target, stream: boolean): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: requestBody(target.model, stream),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

async function smoke(setup: CaseSetup): Promise<string | undefined> {
  if (!setup.plain || !setup.stream) return 'no target';
  const plain = await post(setup.plain, false);
  if (plain.status !== 200 || !plain.text.includes('"choices"')) return `non-streaming request answered ${plain.status}: ${plain.text.slice(0, 200)}`;
  const stream = await post(setup.stream, true);
  if (stream.status !== 200 || !stream.text.includes('data: [DONE]')) return `streaming request answered ${stream.status}: ${stream.text.slice(0, 200)}`;
  if (setup.fallback503) {
    const fb = await post(setup.fallback503, false);
    if (fb.status !== 200) {
      setup.fallback503Reason = `fallback request answered ${fb.status}: ${fb.text.slice(0, 120)}`;
      setup.fallback503 = undefined;
    }
  }
  if (setup.fallbackOpen) {
    await post(setup.fallbackOpen, false); // opens the circuit (threshold 1)
    const open = await post(setup.fallbackOpen, false);
    const attempts = open.headers.get('x-llm-fallback-attempts') ?? '';
    if (open.status !== 200 || !attempts.includes('=skipped')) {
      setup.fallbackOpenReason = `circuit did not open (status ${open.status}, attempts "${attempts}")`;
      setup.fallbackOpen = undefined;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Measurements

/** A case's process memory at three points of one run (VmRSS and VmHWM). */
interface RunMemory {
  idle?: ReturnType<typeof memoryOf>;
  afterLoad?: ReturnType<typeof memoryOf>;
  final?: ReturnType<typeof memoryOf>;
}

interface RunRaw {
  c1?: LoadResult;
  c32?: LoadResult;
  /** The process's CPU time during the c=32 run (s). */
  cpuSeconds?: number;
  c128?: LoadResult;
  ttfb?: StreamSample[];
  fb503?: LoadResult;
  fbOpen?: LoadResult;
  levels?: LevelResult[];
}

/** A run of the request measurements: those four are always taken. */
type MeasuredRun = RunRaw & Required<Pick<RunRaw, 'c1' | 'c32' | 'c128' | 'ttfb'>>;

async function rampStreams(ctx: Context, target: Target): Promise<LevelResult[]> {
  const { chunks, intervalMs, levels, spreadMs } = ctx.opts.slow;
  const nominalMs = (chunks + 3) * intervalMs;
  const out: LevelResult[] = [];
  for (const n of levels) {
    const samples = await concurrentStreams(target, n, spreadMs, nominalMs * 3 + 5000);
    const ok = samples.filter((s) => s.ok);
    const failed = samples.length - ok.length;
    const ttfbP99ms = percentile(
      samples.map((s) => (s.ttfbUs < 0 ? Infinity : s.ttfbUs / 1000)),
      99,
    );
    const durationP99ms = percentile(
      samples.map((s) => s.totalUs / 1000),
      99,
    );
    const passed = failed === 0 && ttfbP99ms <= 500 && durationP99ms <= nominalMs * 1.5;
    out.push({
      streams: n,
      ok: ok.length,
      failed,
      ttfbP99ms: round(ttfbP99ms, 1),
      durationP99ms: round(durationP99ms, 1),
      passed,
      firstError: samples.find((s) => !s.ok)?.error,
    });
    log(
      `    ${n} concurrent streams: ${ok.length} ok, ${failed} failed, p99 TTFB ${ttfbP99ms.toFixed(1)} ms, p99 duration ${durationP99ms.toFixed(0)} ms (nominal ${nominalMs}) -> ${passed ? 'sustained' : 'NOT sustained'}`,
    );
    if (!passed) break;
    await delay(500); // let the previous level's sockets close
  }
  return out;
}

function sustainedOf(levels: LevelResult[]): number {
  let best = 0;
  for (const l of levels) {
    if (!l.passed) break;
    best = l.streams;
  }
  return best;
}

async function load(ctx: Context, wrk: string | undefined, target: Target, connections: number, seconds: number): Promise<LoadResult> {
  if (wrk) return runWrk(wrk, target, connections, seconds, ctx.scratch, LOAD_CORE);
  return runAutocannon(target, connections, seconds);
}

// ---------------------------------------------------------------------------
// Profile summary (--cpu-prof)

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const IDLE_FRAMES = new Set(['(idle)', '(program)', '(root)']);

/** Where a frame's code lives: a src/ file, an npm package, Node's internals, or native code. */
function areaOf(url: string): string {
  if (url === '') return 'native (V8 / libuv / syscalls)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  return url.replace(`file://${ROOT}/`, '');
}

/** The profiles of every run's llm-fallback process (one each, --cpu-prof), summed. */
function summariseProfile(dir: string): Results['profile'] {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  if (files.length === 0) return undefined;
  const nodes = files.flatMap((file) => (JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { nodes: ProfileNode[] }).nodes);
  const byFn = new Map<string, { fn: string; where: string; hits: number }>();
  const byArea = new Map<string, number>();
  let busy = 0;
  for (const n of nodes) {
    const hits = n.hitCount ?? 0;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (IDLE_FRAMES.has(fn)) continue;
    busy += hits;
    const where = `${n.callFrame.url.replace(`file://${ROOT}/`, '').replace(/^.*node_modules\//, 'node_modules/')}:${n.callFrame.lineNumber + 1}`;
    const key = `${fn}@${where}`;
    const entry = byFn.get(key) ?? { fn, where, hits: 0 };
    entry.hits += hits;
    byFn.set(key, entry);
    const area = areaOf(n.callFrame.url);
    byArea.set(area, (byArea.get(area) ?? 0) + hits);
  }
  const pct = (hits: number): number => (100 * hits) / Math.max(1, busy);
  return {
    files: files.map((file) => path.relative(ROOT, path.join(dir, file))),
    top: [...byFn.values()]
      .sort((a, b) => b.hits - a.hits)
      .slice(0, 20)
      .map((e) => ({ selfPercent: pct(e.hits), fn: e.fn, where: e.where })),
    byArea: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([area, hits]) => ({ area, selfPercent: pct(hits) })),
  };
}

// ---------------------------------------------------------------------------

function machineInfo(): Results['machine'] {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    // not Linux
  }
  return { nproc: cpuCount(), cpuModel, node: process.version, kernel: os.release(), loadAverageAtStart: os.loadavg(), loadAverageAtEnd: [], pinned: canPin() };
}

/**
 * Builds what is measured: the compiled JavaScript (`npm run build`: type stripping would cost
 * ~21 MB of RSS) and the bundle the image runs (`npm run bundle`). The `tsc` npm scripts use
 * (TypeScript 7; the `typescript` package name holds the side-by-side TypeScript 6 API for
 * typescript-eslint, see eslint.config.js), and scripts/bundle.ts, run by this Node.
 */
function build(node: string): void {
  log('building: npm run build, npm run bundle');
  execFileSync(node, [realpathSync(path.join(ROOT, 'node_modules', '.bin', 'tsc')), '-p', path.join(ROOT, 'tsconfig.build.json')], {
    stdio: 'inherit',
    cwd: ROOT,
  });
  execFileSync(node, [path.join(ROOT, 'scripts', 'bundle.ts')], { stdio: 'inherit', cwd: ROOT });
}

function writeReports(outDir: string, results: Results): string {
  mkdirSync(outDir, { recursive: true });
  const md = renderMarkdown(results);
  writeFileSync(path.join(outDir, 'results.md'), md);
  writeFileSync(path.join(outDir, 'chart.svg'), renderSvg(results));
  return md;
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.render) {
    writeReports(opts.outDir, JSON.parse(readFileSync(path.join(opts.outDir, 'results.json'), 'utf8')) as Results);
    log(`re-rendered results.md and chart.svg from ${path.join(opts.outDir, 'results.json')}`);
    return 0;
  }
  const machine = machineInfo();
  log(
    `machine: ${machine.nproc} cores, ${machine.cpuModel}, node ${machine.node}, load average ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  if (!canPin()) log('WARNING: cannot pin processes (taskset missing or fewer than 2 cores): proxy and load generator share CPUs');
  pinSelf(LOAD_CORE);

  const tools = ensureDebianTools(
    [
      { bin: 'wrk', pkg: 'wrk' },
      { bin: 'nginx', pkg: 'nginx-light' },
    ],
    opts.install,
  );
  const wrk = opts.loadgen === 'autocannon' ? undefined : tools.get('wrk');
  if (opts.loadgen === 'wrk' && !wrk) throw new Error('--loadgen wrk: wrk is not installed and could not be installed');
  const loadGenerator = wrk
    ? 'wrk 4 (one thread, pinned to core 1), latencies in µs'
    : 'autocannon (npm): wrk unavailable; latencies have 1 ms resolution, so sub-millisecond added latency is not measurable';
  log(`load generator: ${loadGenerator}`);

  const scratch = mkdtempSync(path.join(os.tmpdir(), 'llmfb-bench-'));
  const ctx: Context = { opts, scratch, node: process.execPath, mockPort: await freePort() };
  const setups: CaseSetup[] = [];
  try {
    if (opts.cases.has('llm-fallback') || opts.startupCases.size > 0) build(ctx.node);
    let startup: StartupResults | undefined;
    if (opts.startupCases.size > 0) {
      // First, while no proxy, mock or load generator of this run is up.
      log(`startup: ${STARTUP_CASE_IDS.filter((id) => opts.startupCases.has(id)).join(', ')}, ${opts.startupRuns} start(s) each`);
      const startupScratch = path.join(scratch, 'startup');
      mkdirSync(startupScratch);
      startup = await measureStartup({
        runs: opts.startupRuns,
        entry: opts.startupEntry,
        compileCache: true,
        cases: opts.startupCases,
        scratch: startupScratch,
        log: (line) => log(`  ${line}`),
      });
      startup.entry = path.relative(ROOT, startup.entry);
    }
    ctx.mockProc = await startMock(ctx);
    log(`mock upstream on 127.0.0.1:${ctx.mockPort} (pid ${ctx.mockProc.pid})`);
    if (opts.cpuProf) rmSync(profileDir(ctx), { recursive: true, force: true });

    // Every run starts every proxy afresh, warms it up, measures it and stops it: three draws
    // rather than one process measured three times (104-185 µs per request at c=32 across nine
    // sidecar processes: docs/bench/findings.md, "Targets, thirteenth sitting"). Within a run
    // the cases take turns, slice by slice: what a request costs moves with the host's moments
    // by a third over minutes, for the floor as for the sidecar ("fourteenth sitting"), so a
    // ratio of two figures taken minutes apart compares two moments as much as two proxies.
    const raw = new Map<CaseId, Array<RunRaw | undefined>>();
    const memory = new Map<CaseId, RunMemory[]>();
    const length = sliceLength(opts);
    for (let run = 1; run <= opts.runs; run++) {
      log(`run ${run}/${opts.runs}: starting every case afresh`);
      const started = await startCases(ctx, tools.get('nginx'));
      if (run === 1) setups.push(...started);
      // A case that did not start in run 1 is not measured at all; one that fails a later run misses that run, with a note.
      const ready: CaseSetup[] = [];
      for (const s of started) {
        const first = setups.find((f) => f.id === s.id);
        if (!first || first.reason) continue;
        if (s.reason) first.notes.push(`run ${run}: ${s.reason}`);
        else ready.push(s);
      }
      const memoryNow = (slot: keyof RunMemory): void => {
        for (const s of ready) {
          const m = memory.get(s.id) ?? [];
          memory.set(s.id, m);
          const entry = (m[run - 1] ??= {});
          if (s.proc) entry[slot] = memoryOf(s.proc.pid);
        }
      };
      memoryNow('idle');

      // Warm-up: JIT, connection pools, the open circuit. Two passes over the cases, each with
      // c=32 and c=1: a process's first load is not the end of its compiles. For tens of
      // seconds a first-time event (the first switch from c=32 to c=1, the first idle pooled
      // sockets closed, the first collections of the old space) changes object layouts its
      // optimised code was made for, and the code is deoptimised and compiled again: 180-220 ms
      // of compiles per event for llm-fallback, on the request's thread (the image's
      // --no-concurrent-recompilation; docs/bench/findings.md, "Targets, fifteenth sitting").
      // A measured slice that met one took its c=1 tail from it. Between a case's two passes
      // it idles while the others warm, as it will between its slices. Callers that go away
      // mid-request are part of the steady state too: wrk's exit leaves some at the end of
      // every load, but by chance (which stage each request is at), and a process whose
      // warm-up met none of some kind met it in a measured slice instead, ~90 recompiles
      // (180-200 ms) at once ("Targets, eighteenth sitting"); each pass has some of each kind.
      for (let pass = 0; pass < WARM_PASSES; pass++) {
        for (const s of ready) {
          if (!s.plain) continue;
          await load(ctx, wrk, s.plain, 32, opts.warmSeconds);
          await load(ctx, wrk, s.plain, 1, opts.warmSeconds);
          await abandonedRequests(s.plain, WARM_ABANDONED);
          if (s.stream) await sequentialStreams(s.stream, WARM_STREAMS);
          if (s.fallback503) await load(ctx, wrk, s.fallback503, 1, 1);
          if (s.fallbackOpen) await load(ctx, wrk, s.fallbackOpen, 1, 1);
        }
      }

      // Each case is measured with the other proxies stopped: the core is the measured one's alone.
      const neighbours = (s: CaseSetup): Proc[] => ready.flatMap((o) => (o !== s && o.id !== 'direct' && o.proc ? [o.proc] : []));
      log(`run ${run}/${opts.runs}: non-streaming, stream TTFB, fallback${opts.slices > 1 ? ` (${opts.slices} slices, the cases in turns)` : ''}`);
      const measurable = ready.filter((s) => s.plain && s.stream);
      const sliced = new Map<CaseId, Array<Partial<MeasuredRun>>>();
      for (const part of MEASURE_PARTS) {
        for (let slice = 0; slice < opts.slices; slice++) {
          for (const s of roundOrder(measurable, slice)) {
            const plain = s.plain;
            const stream = s.stream;
            if (!plain || !stream) continue;
            const r = await withPaused(neighbours(s), () => part(ctx, wrk, s, plain, stream, length));
            const list = sliced.get(s.id) ?? [];
            sliced.set(s.id, list);
            list[slice] = { ...list[slice], ...r };
          }
        }
      }
      for (const s of measurable) {
        const r = joinSlices((sliced.get(s.id) ?? []).map(wholeSlice));
        const runs = raw.get(s.id) ?? [];
        raw.set(s.id, runs);
        runs[run - 1] = r;
        log(
          `  ${s.label}: c=1 p50 ${(r.c1.p50us / 1000).toFixed(3)} ms p99 ${(r.c1.p99us / 1000).toFixed(3)} ms; c=32 ${r.c32.rps.toFixed(0)} rps p99 ${(r.c32.p99us / 1000).toFixed(2)} ms${cpuUsPerRequest(r) !== undefined ? ` (${cpuUsPerRequest(r)?.toFixed(0)} µs CPU/request)` : ''}; c=128 ${r.c128.rps.toFixed(0)} rps p99 ${(r.c128.p99us / 1000).toFixed(2)} ms; TTFB p50 ${(median(r.ttfb.map((t) => t.ttfbUs)) / 1000).toFixed(3)} ms${r.fb503 ? `; 503 fallback p50 ${(r.fb503.p50us / 1000).toFixed(3)} ms` : ''}${r.fbOpen ? `; open circuit p50 ${(r.fbOpen.p50us / 1000).toFixed(3)} ms` : ''}`,
        );
      }
      memoryNow('afterLoad');

      log(`run ${run}/${opts.runs}: concurrent slow streams`);
      for (const s of ready) {
        const slow = s.slow;
        if (!slow) continue;
        log(`  ${s.label}`);
        const levels = await withPaused(neighbours(s), () => rampStreams(ctx, slow));
        const slot = raw.get(s.id)?.[run - 1];
        if (slot) slot.levels = levels;
      }
      memoryNow('final');

      // Stop this run's proxies (llm-fallback writes its CPU profile on exit); the mock stays.
      for (const s of started) if (s.proc && s.id !== 'direct') await stop(s.proc, 30_000);
    }
    machine.loadAverageAtEnd = os.loadavg();

    // -----------------------------------------------------------------------
    // Assemble
    const directRuns = raw.get('direct') ?? [];
    const cases: CaseResult[] = setups.map((s) => {
      // A run the case missed (it did not start that time) counts as measuring nothing.
      const runs = Array.from({ length: opts.runs }, (_, i): RunRaw => raw.get(s.id)?.[i] ?? {});
      const result: CaseResult = {
        id: s.id,
        label: s.label,
        available: !s.reason,
        reason: s.reason,
        version: s.version,
        notes: [...s.notes],
        errors: { requests: 0, socketErrors: 0, non2xx: 0 },
      };
      if (s.reason) return result;
      const at = (i: number): RunRaw | undefined => directRuns[i];
      const loads = runs.flatMap((r) => [r.c1, r.c32, r.c128, r.fb503, r.fbOpen]).filter((l): l is LoadResult => l !== undefined);
      result.errors = {
        requests: loads.reduce((a, l) => a + l.requests, 0),
        socketErrors: loads.reduce((a, l) => a + l.errors, 0),
        non2xx: loads.reduce((a, l) => a + l.non2xx, 0),
      };
      if (result.errors.socketErrors + result.errors.non2xx > 0)
        result.notes.push(`${result.errors.socketErrors} socket errors and ${result.errors.non2xx} non-2xx answers out of ${result.errors.requests} requests`);
      result.latencyC1 = {
        p50us: measured(runs.map((r) => r.c1?.p50us)),
        p99us: measured(runs.map((r) => r.c1?.p99us)),
        addedP50us: measured(runs.map((r, i) => (r.c1 && at(i)?.c1 ? r.c1.p50us - (at(i)?.c1?.p50us ?? NaN) : undefined))),
        addedP99us: measured(runs.map((r, i) => (r.c1 && at(i)?.c1 ? r.c1.p99us - (at(i)?.c1?.p99us ?? NaN) : undefined))),
      };
      const conc = (key: 'c32' | 'c128'): NonNullable<CaseResult['c32']> => ({
        rps: measured(
          runs.map((r) => r[key]?.rps),
          0,
        ),
        p99us: measured(runs.map((r) => r[key]?.p99us)),
        rpsRatioToDirect: measured(
          runs.map((r, i) => (r[key] && at(i)?.[key] ? (r[key]?.rps ?? NaN) / (at(i)?.[key]?.rps ?? NaN) : undefined)),
          3,
        ),
      });
      result.c32 = conc('c32');
      result.cpuPerRequestUs = measured(runs.map(cpuUsPerRequest), 0);
      result.c128 = conc('c128');
      // Each figure is the median of the runs' processes.
      const mem = (pick: (m: RunMemory) => number | undefined): number | null =>
        measured(
          Array.from({ length: opts.runs }, (_, i) => {
            const m = memory.get(s.id)?.[i];
            return m ? pick(m) : undefined;
          }),
        ).median;
      result.memory = {
        idleMB: mem((m) => m.idle?.rssMB),
        afterLoadMB: mem((m) => m.afterLoad?.rssMB),
        peakAfterRequestsMB: mem((m) => m.afterLoad?.peakMB),
        peakMB: mem((m) => m.final?.peakMB),
      };
      const ttfbP50 = (r: RunRaw | undefined): number => median((r?.ttfb ?? []).filter((t) => t.ok).map((t) => t.ttfbUs));
      result.streamTtfb = {
        p50us: measured(runs.map((r) => ttfbP50(r))),
        p99us: measured(
          runs.map((r) =>
            percentile(
              (r.ttfb ?? []).filter((t) => t.ok).map((t) => t.ttfbUs),
              99,
            ),
          ),
        ),
        addedP50us: measured(runs.map((r, i) => ttfbP50(r) - ttfbP50(at(i)))),
        failed: runs.reduce((a, r) => a + (r.ttfb ?? []).filter((t) => !t.ok).length, 0),
      };
      if (result.streamTtfb.failed > 0) result.notes.push(`${result.streamTtfb.failed} of the sequential streams failed`);
      const levels = runs.map((r) => r.levels ?? []);
      result.streams = { sustained: measured(levels.map(sustainedOf), 0), levels };
      const fb = (key: 'fb503' | 'fbOpen', reason: string | undefined): CaseResult['fallback503'] => {
        if (!runs.some((r) => r[key])) return { unavailable: reason ?? 'not measured' };
        return {
          p50us: measured(runs.map((r) => r[key]?.p50us)),
          p99us: measured(runs.map((r) => r[key]?.p99us)),
          addedP50us: measured(runs.map((r) => (r[key] && r.c1 ? (r[key]?.p50us ?? NaN) - r.c1.p50us : undefined))),
        };
      };
      result.fallback503 = fb('fb503', s.fallback503Reason);
      result.fallbackOpen = fb('fbOpen', s.fallbackOpenReason);
      return result;
    });
    const direct = cases.find((c) => c.id === 'direct');
    const top = opts.slow.levels[opts.slow.levels.length - 1] ?? 0;
    for (const c of cases) {
      if (!c.streams) continue;
      const sustained = c.streams.sustained.median ?? 0;
      if (sustained >= top) c.streams.limitedBy = 'the highest level tried';
      else if (c.id !== 'direct' && direct?.streams && sustained >= (direct.streams.sustained.median ?? Infinity))
        c.streams.limitedBy = 'same as direct: the client and mock on core 1 are the limit';
    }

    const results: Results = {
      date: new Date().toISOString(),
      machine,
      settings: {
        mode: opts.quick ? 'quick' : 'full',
        runs: opts.runs,
        freshProcessPerRun: true,
        slices: opts.slices,
        warmUp: { passes: WARM_PASSES, seconds: opts.warmSeconds, streams: WARM_STREAMS, abandoned: WARM_ABANDONED },
        // What ran: the slices' whole seconds, not the asked-for total.
        latencySeconds: length.latencySeconds * opts.slices,
        throughputSeconds: length.throughputSeconds * opts.slices,
        upstreamLatencyMs: opts.upstreamLatencyMs,
        loadGenerator,
        streamTtfbRequests: opts.ttfbRequests,
        slowStream: opts.slow,
        note: opts.note,
        llmFallbackEntry: opts.cases.has('llm-fallback') ? path.relative(ROOT, opts.entry) : undefined,
      },
      cases,
      startup,
      e2eMemory: readE2eMemory() ?? null,
      targets: targetChecks(cases, startup),
    };

    if (opts.cpuProf) results.profile = summariseProfile(profileDir(ctx));

    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(path.join(opts.outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    const md = writeReports(opts.outDir, results);
    process.stdout.write(`\n${md}\n`);
    log(`written: ${path.relative(process.cwd(), path.join(opts.outDir, 'results.md'))}, results.json, chart.svg`);
    return 0;
  } finally {
    await stopAll();
    rmSync(scratch, { recursive: true, force: true });
  }
}

process.on('exit', killAllSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping servers`);
    void stopAll().then(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    process.stderr.write(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await stopAll();
    process.exit(1);
  },
);
