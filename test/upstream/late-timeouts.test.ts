// An answer that arrived within its time-out is not lost to the time-out when the event loop
// was frozen meanwhile (src/core/late-timers.ts): libuv runs due timers before it reads the
// sockets, so without the guard the attempt's total time-out and a stream's idle time-out won
// over answers already waiting to be read. The freeze here is a synchronous stretch of the
// upstream's handler (upstream and proxy share this process), longer than the time-out, right
// after the upstream wrote its answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';
import { freeze } from '../support/freeze.ts';

const TIME_OUT_MS = 100;
const FREEZE_MS = 3 * TIME_OUT_MS;

const answer = (model: string): string =>
  JSON.stringify({
    id: 'chatcmpl-late',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'in time' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  });

const chunk = (model: string, delta: Record<string, unknown>, finish: string | null): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-late', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model: string; stream?: boolean };
  if (!body.stream) {
    // The whole answer is written, then the process freezes past the attempt's total time-out.
    res.writeHead(200, { 'content-type': 'application/json' }).end(answer(body.model));
    freeze(FREEZE_MS);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (body.model === 'first') {
    // The head and the whole stream are written, then the process freezes past the first-byte time-out.
    res.end(`${chunk(body.model, { role: 'assistant', content: 'in time' }, null)}${chunk(body.model, {}, 'stop')}data: [DONE]\n\n`);
    freeze(FREEZE_MS);
    return;
  }
  res.write(chunk(body.model, { role: 'assistant', content: 'in' }, null));
  // The rest comes well within the idle time-out, and the process then freezes past it. (In
  // an immediate: libuv reads the clock once per turn, so a freeze inside a timer callback
  // would not make the next timers of the same turn due.)
  setTimeout(() => {
    setImmediate(() => {
      res.end(`${chunk(body.model, { content: ' time' }, null)}${chunk(body.model, {}, 'stop')}data: [DONE]\n\n`);
      freeze(FREEZE_MS);
    });
  }, TIME_OUT_MS / 5);
}

let upstream: Server;
let proxy: ProxyHarness;

before(async () => {
  upstream = createServer((req, res) => void handle(req, res)).listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const baseURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  proxy = await startProxy({
    config: [
      chainYaml({ name: 'late-json', baseURL, steps: [{ model: 'm', timeouts: { totalMs: TIME_OUT_MS } }] }),
      chainYaml({ name: 'late-stream', baseURL, steps: [{ model: 'm', timeouts: { idleMs: TIME_OUT_MS } }] }),
      chainYaml({ name: 'late-first', baseURL, steps: [{ model: 'first', timeouts: { firstByteMs: TIME_OUT_MS } }] }),
    ].join('\n---\n'),
  });
});

after(async () => {
  await proxy?.close();
  upstream?.closeAllConnections();
  upstream?.close();
});

async function post(chain: string, stream: boolean): Promise<{ status: number; text: string; requestId: string }> {
  const requestId = `late-${chain}`;
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ model: chain, messages: [{ role: 'user', content: 'hi' }], ...(stream ? { stream: true } : {}) }),
  });
  return { status: res.status, text: await res.text(), requestId };
}

test('an answer written before a freeze longer than the total time-out is delivered, not timed out', async () => {
  const { status, text, requestId } = await post('late-json', false);
  assert.equal(status, 200, text);
  assert.equal((JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content, 'in time');
  const log = await proxy.requestLog(requestId);
  assert.deepEqual(
    (log['attempts'] as Array<{ outcome: string }>).map((a) => a.outcome),
    ['ok'],
  );
});

for (const [chain, limit] of [
  ['late-first', 'first-byte'],
  ['late-stream', 'idle'],
] as const) {
  test(`a stream's events written before a freeze longer than the ${limit} time-out are delivered, not cut`, async () => {
    await streamDelivered(chain);
  });
}

async function streamDelivered(chain: string): Promise<void> {
  const { status, text, requestId } = await post(chain, true);
  assert.equal(status, 200);
  const contents = text
    .split('\n')
    .filter((line) => line.startsWith('data: {'))
    .map((line) => (JSON.parse(line.slice(6)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '')
    .join('');
  assert.equal(contents, 'in time', text);
  assert.match(text, /data: \[DONE\]/);
  const log = await proxy.requestLog(requestId);
  assert.equal(log['outcome'], 'success');
}
