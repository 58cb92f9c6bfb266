// When a stream's first bytes leave for the caller (issue 16: stream time to first byte).
// An upstream that sends a whole answer in one piece is the common case on a fast network
// and the benchmark's: the first event must still go out at once, in one write with the
// status line and headers, not after every other event of that piece has been handled and
// not on its own behind a separate write of the headers. The writes are observed where they
// leave the process: the caller's socket, found through Node's public diagnostics channel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import OpenAI from 'openai';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const EVENTS = 40;
const TOKENS = Array.from({ length: EVENTS }, (_, i) => ` tok${i}`);

function sse(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** A whole OpenAI stream (role, EVENTS content events, finish, [DONE]) as one string. */
function wholeStream(): string {
  const chunk = (delta: Record<string, string>, finish: string | null) => ({
    id: 'chatcmpl-whole',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'whole',
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  return [
    sse(chunk({ role: 'assistant', content: '' }, null)),
    ...TOKENS.map((t) => sse(chunk({ content: t }, null))),
    sse(chunk({}, 'stop')),
    'data: [DONE]\n\n',
  ].join('');
}

let upstream: Server;
let proxy: ProxyHarness;
let proxyPort: number;
/** What each response of the proxy's chat route handed to its socket, one entry per write to the kernel. */
const writes = new Map<string, string[]>();

/** Records every write a socket hands to the kernel (_write: one buffer; _writev: what a cork gathered). */
function recordWrites(socket: Socket, into: string[]): void {
  const write = socket._write.bind(socket);
  const writev = socket._writev?.bind(socket);
  socket._write = (chunk: Buffer | string, encoding, callback) => {
    into.push(String(chunk));
    write(chunk, encoding, callback);
  };
  if (writev) {
    socket._writev = (chunks, callback) => {
      into.push(chunks.map((c) => String(c.chunk)).join(''));
      writev(chunks, callback);
    };
  }
}

const onRequestStart = (message: unknown): void => {
  const { request, socket } = message as { request: IncomingMessage; socket: Socket };
  if (socket.localPort !== proxyPort || request.url !== '/v1/chat/completions') return;
  const id = request.headers['x-request-id'];
  if (typeof id !== 'string' || writes.has(id)) return;
  const list: string[] = [];
  writes.set(id, list);
  recordWrites(socket, list);
};

before(async () => {
  const body = wholeStream();
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  proxy = await startProxy({ config: chainYaml({ name: 'whole', baseURL, steps: [{ model: 'whole' }] }) });
  proxyPort = Number(new URL(proxy.apiUrl).port);
  subscribe('http.server.request.start', onRequestStart);
});

after(async () => {
  unsubscribe('http.server.request.start', onRequestStart);
  await proxy?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

describe('the first bytes of a stream whose upstream sent the whole answer at once', () => {
  test('go out in one write with the status and headers, before the rest of the answer is handled; the answer is whole', async () => {
    // A fresh connection per request: the socket's writes are this response's alone.
    const client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0, fetchOptions: { keepalive: false } });
    const requestId = 'first-bytes-1';
    const stream = await client.chat.completions.create(
      { model: 'whole', messages: [{ role: 'user', content: 'hi' }], stream: true },
      { headers: { 'x-request-id': requestId, connection: 'close' } },
    );
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, TOKENS.join(''));

    const sent = writes.get(requestId);
    assert.ok(sent && sent.length > 0, 'the response was written through the recorded socket');
    const first = sent[0] as string;
    assert.match(first, /^HTTP\/1\.1 200 /, 'the first write begins with the status line');
    assert.match(first, /\r\n\r\n[0-9a-f]+\r\ndata: \{/, 'the headers and the first event leave in the same write');
    assert.ok(!first.includes('[DONE]'), 'the first event did not wait for the end of the answer');
    assert.ok(!first.includes(TOKENS[EVENTS - 1] as string), 'the first event did not wait for the last one to be handled');
    // Nothing was lost or repeated between the writes.
    const all = sent.join('');
    assert.equal(all.split('data: [DONE]').length, 2);
    for (const token of TOKENS) assert.equal(all.split(`"content":"${token}"`).length, 2, `${token} sent exactly once`);
  });
});
