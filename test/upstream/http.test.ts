// The one upstream HTTP client writes its request headers as a flat list: what an upstream
// receives must be exactly one Host (the URL's, or the provider's own), one Content-Length (the
// body's), the trace context of a traced attempt, and an abort must close the request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { sendUpstream } from '../../src/upstream/http.ts';
import { withTraceHeaders } from '../../src/observability/outgoing-trace.ts';

let server: http.Server;
let port = 0;
const seen: Array<{ raw: string[]; body: string }> = [];
let hold: (() => void) | undefined;
let held: (() => void) | undefined;

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ raw: req.rawHeaders, body });
      if (req.url === '/early-hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"after":"hints"}');
        return;
      }
      if (req.url === '/hold') {
        hold = () => res.end('{}');
        held?.();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  hold?.();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function values(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}

test('one Host (the URL’s host and port), one Content-Length (the body’s), the provider’s headers as given', async () => {
  const body = '{"model":"m","note":"naïve"}';
  const response = await sendUpstream({
    url: `http://127.0.0.1:${port}/v1/chat/completions?x=1`,
    headers: { 'content-type': 'application/json', Authorization: 'Bearer k', 'Content-Length': '1' },
    body,
    signal: new AbortController().signal,
  });
  assert.equal(await response.body.text(1024), '{"ok":true}');
  const last = seen.at(-1);
  assert.ok(last);
  assert.deepEqual(values(last.raw, 'host'), [`127.0.0.1:${port}`]);
  assert.deepEqual(values(last.raw, 'content-length'), [String(Buffer.byteLength(body))]);
  assert.deepEqual(values(last.raw, 'authorization'), ['Bearer k']);
  assert.equal(last.body, body);
});

test("a provider's own Host header is sent instead of the URL's (one Host either way)", async () => {
  const response = await sendUpstream({
    url: `http://127.0.0.1:${port}/v1/x`,
    headers: { Host: 'api.example.test' },
    body: '{}',
    signal: new AbortController().signal,
  });
  await response.body.text(1024);
  assert.deepEqual(values(seen.at(-1)?.raw ?? [], 'host'), ['api.example.test']);
});

test("a traced attempt's trace context replaces a provider header of the same name", async () => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const response = await withTraceHeaders({ traceparent }, () =>
    sendUpstream({ url: `http://127.0.0.1:${port}/v1/x`, headers: { traceparent: 'stale' }, body: '{}', signal: new AbortController().signal }),
  );
  await response.body.text(1024);
  assert.deepEqual(values(seen.at(-1)?.raw ?? [], 'traceparent'), [traceparent]);
});

test('an abort closes the request: before the answer it rejects, and an aborted signal sends nothing', async () => {
  const controller = new AbortController();
  const arrived = new Promise<void>((resolve) => (held = resolve));
  const pending = sendUpstream({ url: `http://127.0.0.1:${port}/hold`, headers: {}, body: '{}', signal: controller.signal });
  await arrived;
  controller.abort();
  await assert.rejects(pending, (error: Error & { code?: string }) => error.name === 'AbortError' && error.code === 'ABORT_ERR');
  const count = seen.length;
  const gone = new AbortController();
  gone.abort();
  await assert.rejects(sendUpstream({ url: `http://127.0.0.1:${port}/v1/x`, headers: {}, body: '{}', signal: gone.signal }), { name: 'AbortError' });
  assert.equal(seen.length, count, 'nothing was sent');
});

test('a 1xx informational response (103 Early Hints) is not the answer: the 200 after it is', async () => {
  const response = await sendUpstream({ url: `http://127.0.0.1:${port}/early-hints`, headers: {}, body: '{}', signal: new AbortController().signal });
  assert.equal(response.statusCode, 200);
  assert.equal(await response.body.text(1024), '{"after":"hints"}');
});

test("a provider's connection headers are not sent (the client's own), and do not fail the request", async () => {
  const response = await sendUpstream({
    url: `http://127.0.0.1:${port}/v1/x`,
    headers: { Connection: 'close', 'Keep-Alive': 'timeout=5', Expect: '100-continue', Upgrade: 'h2c', 'Transfer-Encoding': 'chunked', 'x-kept': 'yes' },
    body: '{}',
    signal: new AbortController().signal,
  });
  assert.equal(await response.body.text(1024), '{"ok":true}');
  const raw = seen.at(-1)?.raw ?? [];
  for (const name of ['keep-alive', 'expect', 'upgrade', 'transfer-encoding']) assert.deepEqual(values(raw, name), [], name);
  assert.deepEqual(values(raw, 'x-kept'), ['yes']);
});

test("a request sent again after an idle-closed connection carries its own trace context, not the connection's first request's", async () => {
  const traces: string[] = [];
  const connections = new Map<Socket, number>();
  let requests = 0;
  const closing = http.createServer((req, res) => {
    if (!connections.has(req.socket)) connections.set(req.socket, connections.size);
    requests++;
    traces.push(`${connections.get(req.socket)} ${String(req.headers['traceparent'])}`);
    req.resume();
    // The second request, on the first connection after it idled: closed as it arrives.
    req.on('end', () => (requests === 2 ? req.socket.destroy() : res.end('{}')));
  });
  await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(closing.address() as AddressInfo).port}/v1/x`;
  const first = '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-aaaaaaaaaaaaaaaa-01';
  const second = '00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-bbbbbbbbbbbbbbbb-01';
  try {
    const a = await withTraceHeaders({ traceparent: first }, () => sendUpstream({ url, headers: {}, body: '{}', signal: new AbortController().signal }));
    await a.body.text(100);
    // Only a connection idle a second is taken for one closed for idleness.
    await delay(1_100);
    const b = await withTraceHeaders({ traceparent: second }, () => sendUpstream({ url, headers: {}, body: '{}', signal: new AbortController().signal }));
    assert.equal(await b.body.text(100), '{}');
    assert.deepEqual(traces, [`0 ${first}`, `0 ${second}`, `1 ${second}`]);
  } finally {
    closing.closeAllConnections();
    closing.close();
  }
});
