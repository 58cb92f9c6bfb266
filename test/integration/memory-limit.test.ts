// Issue 12, finding 5: the sidecar's defaults fit together, and a real proxy process under the
// worst load they allow stays under the memory limit the chart gives the sidecar.
//
// The proxy is the shipped build (the bundle the image runs, `npm run bundle`) run as its own process
// with the image's node flags and no size flags, so every limit is a default. The load:
//   1. the body budget filled with image bodies at the body limit, the last ones Anthropic
//      requests translated to an OpenAI-format upstream, through a chain whose first step
//      answers 500 (so each request is prepared for two steps), all held in flight at once;
//   2. while they are held, more such bodies: every one must be refused (503 + Retry-After);
//      then the same fill on a hedged chain (each request raced on two steps, both held);
//   3. a body of tiny objects whose parsed form could never fit the budget (413, unparsed) and
//      one that just fits.
// Its peak RSS (VmHWM, which the kernel keeps) must stay under the chart's memory limit. Peak
// RSS depends on what is allocated, not on how fast: the test holds on a loaded machine too.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { IMAGE_FLAGS } from '../../bench/lib/image-flags.ts';
import { SERVE_DEFAULTS } from '../../src/config/options.ts';
import { DEFAULT_SIDECAR } from '../../src/k8s/sidecar-settings.ts';
import { copiesInFlight } from '../../src/server/body-budget.ts';
import { jsonShape, parsedBytes } from '../../src/server/json-shape.ts';
import { buildBundle } from '../support/bundle-build.ts';
import { childEnv } from '../support/child-env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// The defaults, read from where they are set

function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  assert.ok(match, `memory quantity ${quantity} in Mi or Gi`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

/** The injected sidecar's memory limit in the chart's values, in MiB. */
async function chartMemoryLimitMiB(): Promise<number> {
  const values = parseYaml(await readFile(path.join(ROOT, 'charts/llm-fallback/values.yaml'), 'utf8')) as {
    sidecar: { resources: { limits: { memory: string } } };
  };
  return mebibytes(values.sidecar.resources.limits.memory);
}

// ---------------------------------------------------------------------------
// A held upstream: holds every request until released; step model "fails" answers 500 at once

interface HeldUpstream {
  url: string;
  /** Requests held now. */
  held(): number;
  /** Resolves once `n` requests are held. */
  whenHeld(n: number): Promise<void>;
  /** Answers every request held; later ones are held again. */
  release(): void;
  close(): Promise<void>;
}

const ANSWER = JSON.stringify({
  id: 'x',
  object: 'chat.completion',
  created: 1,
  model: 'held',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

async function startHeldUpstream(): Promise<HeldUpstream> {
  const waiting: ServerResponse[] = [];
  const watchers: Array<{ n: number; resolve: () => void }> = [];
  const answer = (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(ANSWER);
  };
  const server: Server = createServer((req, res) => {
    let head = '';
    req.on('data', (chunk: Buffer) => {
      if (head.length < 512) head += chunk.subarray(0, 512).toString('latin1');
    });
    req.on('end', () => {
      if (head.includes('"model":"fails"')) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"boom","type":"server_error","code":null}}');
        return;
      }
      waiting.push(res);
      for (const w of watchers.filter((w) => waiting.length >= w.n)) w.resolve();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    held: () => waiting.length,
    whenHeld: (n) => (waiting.length >= n ? Promise.resolve() : new Promise((resolve) => watchers.push({ n, resolve }))),
    release: () => {
      for (const res of waiting.splice(0)) answer(res);
    },
    close: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

// ---------------------------------------------------------------------------
// The proxy as the image runs it

let dir: string;
let buildDir: string;
let upstream: HeldUpstream;
let proxy: ChildProcess | undefined;
let apiUrl: string;
let stderr = '';

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-memory-'));
  buildDir = await buildBundle('memory-build-');
  upstream = await startHeldUpstream();
  const chain = (name: string, steps: string[], policy: Record<string, unknown>): string =>
    JSON.stringify({
      apiVersion: 'llmfallback.io/v1alpha1',
      kind: 'FallbackChain',
      metadata: { name },
      spec: {
        providers: [{ name: 'held', api: 'openai', baseURL: upstream.url }],
        steps: steps.map((model) => ({ provider: 'held', model, retries: 0 })),
        policy: { backoff: { baseMs: 1, maxMs: 5 }, deadlineMs: 120_000, ...policy },
      },
    });
  // Each request prepared for two steps in turn; and each raced on two steps at once.
  await writeFile(
    path.join(dir, 'chain.yaml'),
    [chain('big', ['fails', 'answers'], {}), chain('hedged', ['answers', 'answers-too'], { hedge: { afterMs: 1, maxInFlight: 1 } })].join('\n---\n'),
  );
  const env = childEnv({ keepNodeOptions: false });
  // The image's node flags: its NODE_OPTIONS and its entrypoint's (test/bench/image-flags.test.ts).
  proxy = spawn(NODE, [...IMAGE_FLAGS, path.join(buildDir, 'llm-fallback.mjs'), 'serve', '--config', dir, '--port', '0', '--admin-port', '0'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proxy.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for await (const line of createInterface({ input: proxy.stdout as NodeJS.ReadableStream })) {
    const api = (JSON.parse(line) as { api?: string }).api;
    if (api) {
      apiUrl = api;
      break;
    }
  }
  proxy.stdout?.resume();
});

after(async () => {
  upstream?.release();
  if (proxy && proxy.exitCode === null && proxy.signalCode === null) {
    proxy.kill('SIGKILL');
    await once(proxy, 'exit');
  }
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});

/** Peak and current RSS of the proxy process, in bytes (the kernel's VmHWM and VmRSS). */
async function memory(): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${proxy?.pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

// ---------------------------------------------------------------------------
// Bodies

/** A request whose body is about `bytes` long, nearly all of it one base64 image (the shape of image-bearing traffic). */
function imageRequest(bytes: number, anthropic: boolean, chain = 'big'): Request {
  const envelope = anthropic
    ? {
        model: chain,
        max_tokens: 16,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: '' } },
            ],
          },
        ],
      }
    : {
        model: chain,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,' } },
            ],
          },
        ],
      };
  const overhead = Buffer.byteLength(JSON.stringify(envelope));
  const image = 'iVBORw0KGgo'.repeat(Math.ceil((bytes - overhead) / 11)).slice(0, bytes - overhead);
  const content = envelope.messages[0]?.content[1] as unknown as Record<string, Record<string, string>>;
  if (anthropic) (content['source'] as Record<string, string>)['data'] = image;
  else (content['image_url'] as Record<string, string>)['url'] += image;
  return { path: anthropic ? '/v1/messages' : '/v1/chat/completions', body: JSON.stringify(envelope), chain };
}

interface Request {
  path: string;
  body: string;
  chain: string;
}

/** What the budget counts for a body on its chain: its parsed size, one body per attempt in flight, and an Anthropic caller's translation. */
function weightOf(request: Request): number {
  const bytes = Buffer.from(request.body);
  const shape = jsonShape(bytes);
  assert.equal(shape.kind, 'ok');
  const hedge = request.chain === 'hedged' ? { hedgeAfterMs: 1, hedgeMaxInFlight: 1 } : { hedgeAfterMs: 0 };
  const copies = copiesInFlight({ ...hedge, translated: request.path === '/v1/messages' });
  return shape.kind === 'ok' ? parsedBytes(shape, bytes.length) + copies * bytes.length : Infinity;
}

/** Requests that fill the budget: OpenAI bodies just under the limit, then Anthropic ones (translated: one copy more) with what is left. */
function fillBudget(chain: string): Request[] {
  const { bodyLimitBytes, bodyBudgetBytes } = SERVE_DEFAULTS;
  const requests: Request[] = [];
  let left = bodyBudgetBytes;
  for (let i = 0; left > 256 * 1024; i++) {
    const anthropic = i >= 2;
    const copies = weightOf(imageRequest(1024 * 1024, anthropic, chain)) / (1024 * 1024);
    let request = imageRequest(Math.min(bodyLimitBytes - 1024, Math.floor(left / copies) - 16 * 1024), anthropic, chain);
    while (weightOf(request) > left) request = imageRequest(Buffer.byteLength(request.body) - 4096, anthropic, chain);
    left -= weightOf(request);
    requests.push(request);
  }
  return requests;
}

function post(request: Omit<Request, 'chain'>): Promise<Response> {
  return fetch(`${apiUrl}${request.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: request.body });
}

describe('finding 5: memory under the worst load the defaults allow', { timeout: 240_000 }, () => {
  test('the defaults agree: chart sidecar limit = injector default = SERVE_DEFAULTS, and the budget holds a body at the limit three times', async () => {
    const chartMiB = await chartMemoryLimitMiB();
    assert.equal(chartMiB, SERVE_DEFAULTS.sidecarMemoryLimitMiB);
    assert.equal(mebibytes(DEFAULT_SIDECAR.resources.limits?.['memory'] ?? ''), SERVE_DEFAULTS.sidecarMemoryLimitMiB);
    assert.ok(SERVE_DEFAULTS.bodyBudgetBytes >= 3 * SERVE_DEFAULTS.bodyLimitBytes);
    assert.ok(
      // IMAGE_FLAGS are the Dockerfile's node flags (test/bench/image-flags.test.ts).
      IMAGE_FLAGS.some((flag) => /^--max-old-space-size=\d+$/.test(flag)),
      'the image caps the heap',
    );
  });

  test('peak RSS of a real proxy process stays under the chart memory limit', async () => {
    const limitBytes = (await chartMemoryLimitMiB()) * MiB;
    const { bodyLimitBytes, bodyBudgetBytes } = SERVE_DEFAULTS;
    const idle = await memory();

    // 1. Fill the budget on the chain that tries two steps in turn, and hold every request in flight.
    const accepted = fillBudget('big');
    assert.ok(accepted.length >= 2, `the budget holds ${accepted.length} bodies`);
    const answers = accepted.map(post);
    await upstream.whenHeld(accepted.length);

    // 2. While those are in flight, every further large body is refused, unread, in the caller's shape.
    const refused = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => post(imageRequest(bodyLimitBytes - 1024, i % 2 === 1))));
    for (const res of refused) {
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '2');
      const text = await res.text();
      assert.match(text, /body_budget_exhausted|too many large request bodies/);
    }
    const whileHeld = await memory();
    upstream.release();
    for (const res of await Promise.all(answers)) {
      assert.equal(res.status, 200, await res.clone().text());
      await res.text();
    }

    // Again on the hedged chain: every request raced on two steps at once, both attempts held.
    const hedged = fillBudget('hedged');
    const hedgedAnswers = hedged.map(post);
    await upstream.whenHeld(2 * hedged.length);
    upstream.release();
    for (const res of await Promise.all(hedgedAnswers)) {
      assert.equal(res.status, 200, await res.clone().text());
      await res.text();
    }

    // 3. Tiny objects: a body whose parsed form could never fit is refused before parsing; one that fits is served.
    const tiny = (count: number): string => `{"model":"big","messages":[{"role":"user","content":"hi"}],"metadata":[${'{},'.repeat(count - 1)}{}]}`;
    const never = await post({ path: '/v1/chat/completions', body: tiny(Math.floor((bodyLimitBytes - 100) / 3)) });
    upstream.release();
    assert.equal(never.status, 413);
    assert.match(await never.text(), /body_too_complex/);
    let fits = tiny(Math.floor(bodyBudgetBytes / 100));
    while (weightOf({ path: '/v1/chat/completions', body: fits, chain: 'big' }) > bodyBudgetBytes * 0.9) fits = tiny(Math.floor((fits.length / 3) * 0.9));
    const servedAnswer = post({ path: '/v1/chat/completions', body: fits });
    await upstream.whenHeld(1);
    upstream.release();
    const served = await servedAnswer;
    assert.equal(served.status, 200, await served.clone().text());
    await served.text();

    const end = await memory();
    const mb = (b: number): string => (b / MiB).toFixed(0);
    const summary = `idle ${mb(idle.now)} MiB, ${accepted.length} bodies held ${mb(whileHeld.now)} MiB (then ${hedged.length} hedged), peak ${mb(end.peak)} MiB, limit ${mb(limitBytes)} MiB`;
    // Printed so a run shows the margin, not just a pass.
    console.log(`# memory: ${summary}`);
    assert.equal(proxy?.exitCode, null, `the proxy is still running (stderr: ${stderr.slice(-500)})`);
    assert.ok(end.peak < limitBytes, `peak RSS under the chart's memory limit: ${summary}`);
  });
});
