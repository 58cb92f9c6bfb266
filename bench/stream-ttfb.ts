// Stream time to first byte, builds side by side: the mock upstream (whole SSE stream written
// at once), the Node floor and one llm-fallback process per compiled build, each pinned to
// core 0 with the image's flags, and sequential streams over one keep-alive connection per
// target, taken in turn request by request, so a noisy neighbour slows every target alike.
// Time to first byte as `npm run bench` measures it (bench/lib/load.ts streamOnce); also the
// proxy's CPU per stream (/proc/<pid>/stat).
//
//   npm run build && cp -r dist .tmp/build-a   # one copy per build to compare
//   node bench/stream-ttfb.ts --build .tmp/build-a --build dist [--requests 300] [--rounds 6]
//                             [--stream-chunks 8] (content events per answer, as npm run bench)
//
// A build directory needs node_modules on its path (put copies under the repository, e.g.
// .tmp/, which git ignores). Prints medians per round and over all rounds.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMockUpstream } from './mock-upstream.ts';
import { floorScript } from './lib/floor-script.ts';
import { IMAGE_FLAGS } from './lib/image-flags.ts';
import { streamOnce, type Target } from './lib/load.ts';
import { cpuSecondsOf, freePort, pinSelf, serveFlags, spawnPinned, stopAll, waitForPort, type Proc } from './lib/procs.ts';
import { median } from './lib/stats.ts';

const PROXY_CORE = 0;
const LOAD_CORE = 1;

interface Case {
  name: string;
  target: Target;
  proc?: Proc;
  agent: Agent;
  ttfbUs: number[];
  roundMedians: number[];
  cpuSeconds: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { build: { type: 'string', multiple: true }, requests: { type: 'string' }, rounds: { type: 'string' }, 'stream-chunks': { type: 'string' } },
    strict: true,
  });
  const builds = values.build ?? [];
  const requests = Number(values.requests ?? 300);
  const rounds = Number(values.rounds ?? 6);
  const streamChunks = Number(values['stream-chunks'] ?? 8);
  pinSelf(LOAD_CORE);
  const scratch = mkdtempSync(path.join(tmpdir(), 'stream-ttfb-'));
  const mock = await startMockUpstream({ port: 0, latencyMs: 0, streamChunks, slowChunks: 20, slowIntervalMs: 100 });
  const mockUrl = `http://127.0.0.1:${mock.port}/v1`;
  const cases: Case[] = [];
  const add = (name: string, url: string, model: string, proc?: Proc): void => {
    cases.push({
      name,
      target: { url, model, headers: {} },
      proc,
      agent: new Agent({ keepAlive: true, maxSockets: 1 }),
      ttfbUs: [],
      roundMedians: [],
      cpuSeconds: 0,
    });
  };
  try {
    add('direct (mock upstream)', `${mockUrl}/chat/completions`, 'bench-ok');
    const floorPort = await freePort();
    const floor = spawnPinned(
      'node-floor',
      PROXY_CORE,
      process.execPath,
      [...IMAGE_FLAGS, floorScript(scratch), '--port', String(floorPort), '--upstream', mockUrl, '--model', 'bench-ok'],
      { logFile: path.join(scratch, 'node-floor.log') },
    );
    await waitForPort(floorPort, floor, 10_000);
    add('Node floor', `http://127.0.0.1:${floorPort}/v1/chat/completions`, 'bench', floor);
    const configDir = path.join(scratch, 'config');
    mkdirSync(configDir);
    writeFileSync(
      path.join(configDir, 'chains.yaml'),
      JSON.stringify({
        apiVersion: 'llmfallback.io/v1alpha1',
        kind: 'FallbackChain',
        metadata: { name: 'bench' },
        spec: {
          providers: [{ name: 'mock', api: 'openai', baseURL: mockUrl, apiKey: { env: 'BENCH_API_KEY' } }],
          steps: [{ provider: 'mock', model: 'bench-ok', retries: 0 }],
          policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 30_000 },
        },
      }),
    );
    for (const [i, build] of builds.entries()) {
      const port = await freePort();
      const proc = spawnPinned(
        `llm-fallback-${i}`,
        PROXY_CORE,
        process.execPath,
        [
          ...IMAGE_FLAGS,
          path.join(path.resolve(build), 'src', 'cli.js'),
          'serve',
          '--config',
          configDir,
          ...serveFlags(port, await freePort(), path.join(scratch, 'no-credentials')),
        ],
        { env: { ...process.env, BENCH_API_KEY: 'sk-bench-not-a-secret', NODE_ENV: 'production' }, logFile: path.join(scratch, `llm-fallback-${i}.log`) },
      );
      await waitForPort(port, proc, 20_000);
      add(`llm-fallback ${build}`, `http://127.0.0.1:${port}/v1/chat/completions`, 'bench', proc);
    }
    // Warm-up: JIT, connections, pools.
    for (const c of cases) for (let i = 0; i < 50; i++) await streamOnce(c.agent, c.target, 10_000);
    for (let round = 0; round < rounds; round++) {
      const before = cases.map((c) => (c.proc ? (cpuSecondsOf(c.proc.pid) ?? 0) : 0));
      const samples: number[][] = cases.map(() => []);
      for (let i = 0; i < requests; i++) {
        for (const [k, c] of cases.entries()) {
          const s = await streamOnce(c.agent, c.target, 10_000);
          if (!s.ok) throw new Error(`${c.name}: ${s.error ?? 'failed'}`);
          samples[k]?.push(s.ttfbUs);
        }
      }
      for (const [k, c] of cases.entries()) {
        const mine = samples[k] ?? [];
        c.ttfbUs.push(...mine);
        c.roundMedians.push(median(mine));
        if (c.proc) c.cpuSeconds += (cpuSecondsOf(c.proc.pid) ?? 0) - (before[k] ?? 0);
      }
      process.stdout.write(`round ${round + 1}/${rounds}: ${cases.map((c) => `${c.name} ${ms(c.roundMedians[round] ?? 0)}`).join(' · ')}\n`);
    }
    const direct = median(cases[0]?.ttfbUs ?? []);
    for (const c of cases) {
      const p50 = median(c.ttfbUs);
      const cpu = c.proc ? ` · CPU ${Math.round((c.cpuSeconds * 1e6) / (requests * rounds))} µs/stream` : '';
      process.stdout.write(`${c.name}: TTFB p50 ${ms(p50)} (added ${ms(p50 - direct)}) · rounds ${c.roundMedians.map(ms).join(' ')}${cpu}\n`);
    }
  } finally {
    for (const c of cases) c.agent.destroy();
    await stopAll();
    await mock.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function ms(us: number): string {
  return `${(us / 1000).toFixed(3)} ms`;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
