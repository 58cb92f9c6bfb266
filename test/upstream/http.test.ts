// The one upstream HTTP client writes its request headers as a flat list: what an upstream
// receives must be exactly one Host (the URL's, or the provider's own), one Content-Length (the
// body's), the trace context of a traced attempt, and an abort must close the request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
