// What a pod pays before and while it idles, side by side with a bare Node HTTP server: time
// from spawn to /readyz answering 200 (files mode, the examples' kind of config), and the idle
// RSS one second after ready. Each process runs with the image's NODE_OPTIONS and NODE_ENV (not
// the host's Node variables: imageEnvironment), pinned to core 0 like the benchmark's proxies. The CPU time the process used until ready is kept too: on a busy
// machine it is the steadier figure. The Kubernetes case runs `serve --kubernetes` against the
// tests' kube-apiserver + etcd (test/support/kube-harness.ts) with a token and CA kubeconfig
// (what a pod has), and also times from the API server's first answer (its first byte to the
// sidecar, through a relay) to /readyz 200.
//
// Run by `npm run bench` (bench/run.ts) and by `npm run bench:startup` (bench/startup.ts).
// Binds 127.0.0.1 only; every process is stopped by PID before the next starts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startKube } from '../../test/support/kube-harness.ts';
import { IMAGE_FLAGS } from './image-flags.ts';
import { canPin, freePort, serveFlags, spawnPinned, stop, type Proc } from './procs.ts';
import { startRelay } from './relay.ts';
import type { StartupCase, StartupCaseId, StartupResults } from './report.ts';
import { measured } from './stats.ts';

/**
 * Host variables the image does not set and that change what a Node process loads or how it
 * allocates: Node's own (NODE_EXTRA_CA_CERTS makes every process that loads node:tls parse
 * that file as well: +0.7 MB of idle RSS in `serve --kubernetes` with a Debian host's bundle,
 * docs/bench/findings.md), libuv's thread pool size and glibc's malloc tunables.
 */
const HOST_ONLY = /^(NODE_|UV_|MALLOC_|GLIBC_TUNABLES$)/;

/** The environment the processes get: the host's without HOST_ONLY, and the image's NODE_ENV (its NODE_OPTIONS are IMAGE_FLAGS). */
export function imageEnvironment(host: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; dropped: string[] } {
  const env: NodeJS.ProcessEnv = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(host)) {
    if (HOST_ONLY.test(name)) dropped.push(name);
    else env[name] = value;
  }
  return { env: { ...env, NODE_ENV: 'production' }, dropped: dropped.sort() };
}
export const STARTUP_CASE_IDS: readonly StartupCaseId[] = ['bare', 'config', 'kubernetes'];
const PROXY_CORE = 0;

export interface StartupOptions {
  runs: number;
  /** The sidecar's entry: the bundle the image runs (dist/bundle/llm-fallback.mjs), or another build's. */
  entry: string;
  /** Make and use a compile cache as the Dockerfile does (the image's start). */
  compileCache: boolean;
  cases: ReadonlySet<StartupCaseId>;
  /** Scratch directory: config, kubeconfig, compile cache, logs. */
  scratch: string;
  log: (line: string) => void;
}

const LABELS: Record<StartupCaseId, string> = {
  bare: 'bare Node HTTP server',
  config: 'llm-fallback serve --config',
  kubernetes: 'llm-fallback serve --kubernetes',
};

const BENCH_SPEC = {
  providers: [{ name: 'mock', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: { env: 'BENCH_API_KEY' } }],
  steps: [{ provider: 'mock', model: 'bench-ok' }],
};

const BARE_SERVER = `require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.argv[1]), '127.0.0.1');`;

function status(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}

function rssMB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
}

/** The private anonymous part of the RSS (heap, native allocations); the rest is file-backed, shared pages of the binary. */
function anonMB(pid: number): number {
  return Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN) / 1024;
}

/** User + system CPU time the process has used, in ms: what starting costs, whatever else the machine runs. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
// USER_HZ: 100 on every Linux architecture Node supports.
const CLOCK_TICKS = 100;

/** A compile cache made as the Dockerfile makes it: the entry run once (`help`), its cache then read by every start. */
async function compileCache(entry: string, dir: string, env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const cached = { ...env, NODE_COMPILE_CACHE: dir };
  const child = spawn(process.execPath, [...IMAGE_FLAGS, entry, 'help'], { env: cached, stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${entry} help exited with ${code}`);
  return cached;
}

interface Sample {
  readyMs: number;
  afterApiMs?: number;
  cpuMs: number;
  idleRssMB: number;
  idleAnonMB: number;
}

/** One start: spawn, poll until `probe` answers 200, note the figures, wait 1 s, read the idle RSS, stop it. */
async function startOnce(
  label: string,
  launch: (port: number, admin: number) => { args: string[]; env: NodeJS.ProcessEnv },
  probe: { admin: boolean; path: string },
  logFile: string,
  firstApiAnswerAt?: () => number | undefined,
): Promise<Sample> {
  const port = await freePort();
  const admin = await freePort();
  const { args, env } = launch(port, admin);
  const began = performance.now();
  const proc: Proc = spawnPinned(label, PROXY_CORE, process.execPath, [...IMAGE_FLAGS, ...args], { env, logFile });
  try {
    while ((await status(probe.admin ? admin : port, probe.path)) !== 200) {
      if (proc.child.exitCode !== null) throw new Error(`${label} exited with ${proc.child.exitCode} (log: ${logFile})`);
      await delay(2);
    }
    const readyAt = performance.now();
    const sample: Sample = { readyMs: readyAt - began, cpuMs: cpuMs(proc.pid), idleRssMB: NaN, idleAnonMB: NaN };
    if (firstApiAnswerAt) sample.afterApiMs = readyAt - (firstApiAnswerAt() ?? NaN);
    await delay(1000);
    sample.idleRssMB = rssMB(proc.pid);
    sample.idleAnonMB = anonMB(proc.pid);
    return sample;
  } finally {
    await stop(proc);
  }
}

function summarise(id: StartupCaseId, samples: Sample[]): StartupCase {
  const result: StartupCase = {
    id,
    label: LABELS[id],
    available: true,
    readyMs: measured(
      samples.map((s) => s.readyMs),
      0,
    ),
    cpuMs: measured(
      samples.map((s) => s.cpuMs),
      0,
    ),
    idleRssMB: measured(samples.map((s) => s.idleRssMB)),
    idleAnonMB: measured(samples.map((s) => s.idleAnonMB)),
  };
  if (id === 'kubernetes')
    result.afterApiMs = measured(
      samples.map((s) => s.afterApiMs),
      0,
    );
  return result;
}

async function runCase(id: StartupCaseId, runs: number, once: () => Promise<Sample>): Promise<StartupCase> {
  const samples: Sample[] = [];
  try {
    for (let i = 0; i < runs; i++) samples.push(await once());
  } catch (error) {
    return { id, label: LABELS[id], available: false, reason: (error as Error).message };
  }
  return summarise(id, samples);
}

/**
 * `serve --kubernetes` with a token kubeconfig whose server is a relay in front of a real
 * kube-apiserver: the relay notes when the API server first answers the sidecar (the first
 * byte back, the TLS handshake), so start to ready is also given from that moment.
 */
async function kubernetesCase(opts: StartupOptions, env: NodeJS.ProcessEnv): Promise<StartupCase> {
  let kube: Awaited<ReturnType<typeof startKube>>;
  try {
    kube = await startKube();
  } catch (error) {
    return { id: 'kubernetes', label: LABELS.kubernetes, available: false, reason: `the kube-apiserver harness did not start: ${(error as Error).message}` };
  }
  const relay = await startRelay(Number(new URL(kube.server).port));
  try {
    await kube.installCrd();
    await kube.createNamespace('bench');
    const chain = { apiVersion: 'llmfallback.io/v1alpha1', kind: 'FallbackChain', metadata: { name: 'bench', namespace: 'bench' }, spec: BENCH_SPEC };
    const applied = await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(chain) });
    if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
    // As in a pod: a token and the API server's CA (the harness's self-signed serving cert names 127.0.0.1).
    const ca = readFileSync(path.join(path.dirname(kube.kubeconfigPath), 'certs', 'apiserver.crt'), 'utf8').split(/(?=-----BEGIN CERTIFICATE-----)/)[1] ?? '';
    const kubeconfig = JSON.parse(readFileSync(kube.kubeconfigPath, 'utf8')) as { clusters: Array<{ cluster: Record<string, unknown> }> };
    for (const entry of kubeconfig.clusters) entry.cluster = { server: relay.url, 'certificate-authority-data': Buffer.from(ca).toString('base64') };
    const kubeconfigPath = path.join(opts.scratch, 'bench.kubeconfig');
    writeFileSync(kubeconfigPath, JSON.stringify(kubeconfig), { mode: 0o600 });
    return await runCase('kubernetes', opts.runs, () => {
      relay.reset();
      return startOnce(
        LABELS.kubernetes,
        (port, admin) => ({
          args: [
            opts.entry,
            'serve',
            '--kubernetes',
            '--kubeconfig',
            kubeconfigPath,
            '--namespace',
            'bench',
            ...serveFlags(port, admin, path.join(opts.scratch, 'none')),
          ],
          env,
        }),
        { admin: true, path: '/readyz' },
        path.join(opts.scratch, 'kubernetes.log'),
        () => relay.firstAnswerAt(),
      );
    });
  } catch (error) {
    return { id: 'kubernetes', label: LABELS.kubernetes, available: false, reason: (error as Error).message };
  } finally {
    await relay.close();
    await kube.stop();
  }
}

/** Measures the asked-for cases, in the order bare, config, kubernetes; a case that cannot run is reported unavailable, with the reason. */
export async function measureStartup(opts: StartupOptions): Promise<StartupResults> {
  const config = path.join(opts.scratch, 'config');
  mkdirSync(config, { recursive: true });
  writeFileSync(
    path.join(config, 'chains.yaml'),
    JSON.stringify({ apiVersion: 'llmfallback.io/v1alpha1', kind: 'FallbackChain', metadata: { name: 'bench' }, spec: BENCH_SPEC }),
  );
  const image = imageEnvironment(process.env);
  if (image.dropped.length > 0) opts.log(`not passed to the measured processes (the image does not set them): ${image.dropped.join(' ')}`);
  const env = { ...image.env, BENCH_API_KEY: 'sk-bench-not-a-secret' };
  const results: StartupResults = {
    runs: opts.runs,
    entry: opts.entry,
    compileCache: opts.compileCache,
    nodeFlags: [...IMAGE_FLAGS],
    pinned: canPin(),
    cases: [],
  };
  let sidecarEnv: NodeJS.ProcessEnv = env;
  const sidecar = opts.cases.has('config') || opts.cases.has('kubernetes');
  if (sidecar && opts.compileCache) {
    try {
      sidecarEnv = await compileCache(opts.entry, path.join(opts.scratch, 'compile-cache'), env);
    } catch (error) {
      results.compileCache = false;
      opts.log(`no compile cache: ${(error as Error).message}`);
    }
  }
  const done = (c: StartupCase): void => {
    results.cases.push(c);
    opts.log(startupLine(c));
  };
  if (opts.cases.has('bare'))
    done(
      await runCase('bare', opts.runs, () =>
        startOnce(LABELS.bare, (port) => ({ args: ['-e', BARE_SERVER, String(port)], env }), { admin: false, path: '/' }, path.join(opts.scratch, 'bare.log')),
      ),
    );
  if (opts.cases.has('config'))
    done(
      await runCase('config', opts.runs, () =>
        startOnce(
          LABELS.config,
          (port, admin) => ({ args: [opts.entry, 'serve', '--config', config, ...serveFlags(port, admin, path.join(opts.scratch, 'none'))], env: sidecarEnv }),
          { admin: true, path: '/readyz' },
          path.join(opts.scratch, 'config.log'),
        ),
      ),
    );
  if (opts.cases.has('kubernetes')) done(await kubernetesCase(opts, sidecarEnv));
  return results;
}

/** One line per case: medians, then every run in brackets. */
export function startupLine(c: StartupCase): string {
  if (!c.available) return `${c.label.padEnd(34)} UNAVAILABLE: ${c.reason ?? ''}`;
  const one = (x: number | null | undefined, digits = 0): string => (x === null || x === undefined ? '–' : x.toFixed(digits));
  const list = (xs: Array<number | null> | undefined, digits = 0): string => (xs ?? []).map((x) => one(x, digits)).join(' ');
  const api = c.afterApiMs ? `, after the API server's first answer ${one(c.afterApiMs.median)} ms (${list(c.afterApiMs.runs)})` : '';
  return `${c.label.padEnd(34)} start to ready: median ${one(c.readyMs?.median)} ms (${list(c.readyMs?.runs)})${api}, CPU until ready ${one(c.cpuMs?.median)} ms (${list(c.cpuMs?.runs)})   idle RSS: median ${one(c.idleRssMB?.median, 1)} MB (${list(c.idleRssMB?.runs, 1)}), private ${one(c.idleAnonMB?.median, 1)} MB`;
}
