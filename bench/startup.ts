// `node bench/startup.ts`: what a pod pays before and while it idles, side by side with a bare
// Node HTTP server: time from spawn to /readyz answering 200 (files mode, the examples' kind of
// config), and the idle RSS one second after ready. Compiled JavaScript (npm run build first)
// with the image's NODE_OPTIONS, pinned to one core like the benchmark's proxies. The CPU time
// the process used until ready is printed too: on a busy machine it is the steadier figure.
// The Kubernetes case runs `serve --kubernetes` against the tests' kube-apiserver + etcd
// (test/support/kube-harness.ts) with a token and CA kubeconfig (what a pod has), and also reports the time from the
// API server's first answer (its first byte to the sidecar, through a relay) to /readyz 200.
//
//   node bench/startup.ts [--runs 7] [--dist dist] [--cases bare,config,kubernetes] [--entry dist/src/cli.js] [--without-compile-cache]
//
// The sidecar runs as the image runs it: the bundle (dist/bundle/llm-fallback.mjs, `npm run
// bundle`) with a compile cache made as the Dockerfile makes it (`help` run once, then read).
// --entry measures another entry (the unbundled `npm run build` output: dist/src/cli.js),
// --without-compile-cache the start without the cache.
//
// Binds 127.0.0.1 only; every process is stopped by PID before the next starts.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, freePort } from './lib/procs.ts';
import { median } from './lib/stats.ts';
import { startRelay } from './lib/relay.ts';
import { startKube } from '../test/support/kube-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE_FLAGS = ['--max-semi-space-size=2', '--max-old-space-size=96'];
const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    dist: { type: 'string' },
    cases: { type: 'string' },
    entry: { type: 'string' },
    'without-compile-cache': { type: 'boolean' },
  },
  strict: true,
});
const runs = Number(values.runs ?? 7);
const dist = path.resolve(values.dist ?? path.join(ROOT, 'dist'));
const entry = values.entry ? path.resolve(values.entry) : path.join(dist, 'bundle', 'llm-fallback.mjs');
const cases = new Set((values.cases ?? 'bare,config,kubernetes').split(','));

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
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** User + system CPU time the process has used, in ms: what starting costs, whatever else the machine runs. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

function start(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const [command, argv] = canPin() ? ['taskset', ['-c', '0', process.execPath, ...IMAGE_FLAGS, ...args]] : [process.execPath, [...IMAGE_FLAGS, ...args]];
  return spawn(command, argv, { env, stdio: 'ignore' });
}

/** A compile cache made as the Dockerfile makes it: the entry run once (`help`), its cache then read by every start. */
async function compileCache(dir: string, env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const cached = { ...env, NODE_COMPILE_CACHE: dir };
  const child = spawn(process.execPath, [...IMAGE_FLAGS, entry, 'help'], { env: cached, stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${entry} help exited with ${code}`);
  return cached;
}

async function measure(label: string, launch: (port: number, admin: number) => ChildProcess, probe: { admin: boolean; path: string }): Promise<void> {
  const ready: number[] = [];
  const cpu: number[] = [];
  const idle: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const admin = await freePort();
    const began = performance.now();
    const child = launch(port, admin);
    try {
      while ((await status(probe.admin ? admin : port, probe.path)) !== 200) {
        if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}`);
        await delay(2);
      }
      ready.push(performance.now() - began);
      cpu.push(cpuMs(child.pid ?? 0));
      await delay(1000);
      idle.push(rssMB(child.pid ?? 0));
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  const list = (xs: number[], digits: number): string => xs.map((x) => x.toFixed(digits)).join(' ');
  console.log(
    `${label.padEnd(34)} start to ready: median ${median(ready).toFixed(0)} ms (${list(ready, 0)}), CPU until ready ${median(cpu).toFixed(0)} ms (${list(cpu, 0)})   idle RSS: median ${median(idle).toFixed(1)} MB (${list(idle, 1)})`,
  );
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'llm-fallback-startup-'));
try {
  const config = path.join(scratch, 'config');
  mkdirSync(config);
  writeFileSync(
    path.join(config, 'chains.yaml'),
    JSON.stringify({
      apiVersion: 'llmfallback.io/v1alpha1',
      kind: 'FallbackChain',
      metadata: { name: 'bench' },
      spec: BENCH_SPEC,
    }),
  );
  const env = { ...process.env, BENCH_API_KEY: 'sk-bench-not-a-secret', NODE_ENV: 'production' };
  const sidecarEnv = values['without-compile-cache'] ? env : await compileCache(path.join(scratch, 'compile-cache'), env);
  console.log(
    `${runs} runs each, pinned to core 0: ${canPin()}, node flags ${IMAGE_FLAGS.join(' ')}, ${path.relative(ROOT, entry)} ${values['without-compile-cache'] ? 'without' : 'with'} compile cache, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (cases.has('bare')) await measure('bare Node HTTP server', (port) => start(['-e', BARE_SERVER, String(port)], env), { admin: false, path: '/' });
  if (cases.has('config'))
    await measure(
      'llm-fallback serve --config',
      (port, admin) =>
        start(
          [
            entry,
            'serve',
            '--config',
            config,
            '--host',
            '127.0.0.1',
            '--port',
            String(port),
            '--admin-port',
            String(admin),
            '--credentials-dir',
            path.join(scratch, 'none'),
            '--log-level',
            'info',
          ],
          sidecarEnv,
        ),
      { admin: true, path: '/readyz' },
    );
  if (cases.has('kubernetes')) await measureKubernetes(sidecarEnv);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

/**
 * `serve --kubernetes` with a token kubeconfig whose server is a relay in front of a real
 * kube-apiserver: the relay notes when the API server first answers the sidecar (the first
 * byte back, the TLS handshake), so start to ready is also given from that moment.
 */
async function measureKubernetes(env: NodeJS.ProcessEnv): Promise<void> {
  const kube = await startKube();
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
    const kubeconfigPath = path.join(scratch, 'bench.kubeconfig');
    writeFileSync(kubeconfigPath, JSON.stringify(kubeconfig), { mode: 0o600 });
    const ready: number[] = [];
    const afterApi: number[] = [];
    const cpu: number[] = [];
    const idle: number[] = [];
    for (let i = 0; i < runs; i++) {
      const admin = await freePort();
      const port = await freePort();
      relay.reset();
      const began = performance.now();
      const child = start(
        [
          entry,
          'serve',
          '--kubernetes',
          '--kubeconfig',
          kubeconfigPath,
          '--namespace',
          'bench',
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--admin-port',
          String(admin),
          '--credentials-dir',
          path.join(scratch, 'none'),
          '--log-level',
          'info',
        ],
        env,
      );
      try {
        while ((await status(admin, '/readyz')) !== 200) {
          if (child.exitCode !== null) throw new Error(`serve --kubernetes exited with ${child.exitCode}`);
          await delay(2);
        }
        const readyAt = performance.now();
        ready.push(readyAt - began);
        afterApi.push(readyAt - (relay.firstAnswerAt() ?? Number.NaN));
        cpu.push(cpuMs(child.pid ?? 0));
        await delay(1000);
        idle.push(rssMB(child.pid ?? 0));
      } finally {
        child.kill('SIGTERM');
        if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    const list = (xs: number[], digits: number): string => xs.map((x) => x.toFixed(digits)).join(' ');
    console.log(
      `${'llm-fallback serve --kubernetes'.padEnd(34)} start to ready: median ${median(ready).toFixed(0)} ms (${list(ready, 0)}), after the API server's first answer ${median(afterApi).toFixed(0)} ms (${list(afterApi, 0)}), CPU until ready ${median(cpu).toFixed(0)} ms (${list(cpu, 0)})   idle RSS: median ${median(idle).toFixed(1)} MB (${list(idle, 1)})`,
    );
  } finally {
    await relay.close();
    await kube.stop();
  }
}
