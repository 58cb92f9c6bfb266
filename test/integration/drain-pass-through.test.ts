// A request passed through to --default-upstream is in flight like a chain request: a drain
// (SIGTERM) waits for its answer instead of cutting its connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

let upstream: Server;
let proxy: ProxyHarness;
let held: ((res: ServerResponse) => void) | undefined;
const arrived: ServerResponse[] = [];

before(async () => {
  // Holds each request's answer until the test lets it go.
  upstream = createServer((req, res) => {
    req.resume();
    arrived.push(res);
    held?.(res);
  }).listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  proxy = await startProxy({
    config: chainYaml({ name: 'c', baseURL: 'http://127.0.0.1:9/v1', steps: [{ model: 'm' }] }),
    extraArgs: ['--default-upstream', url, '--drain-timeout-ms', '10000'],
  });
});

after(async () => {
  upstream?.closeAllConnections();
  upstream?.close();
});

test('a drain waits for a pass-through request in flight, which gets its answer', async () => {
  const atUpstream = new Promise<ServerResponse>((resolve) => (held = resolve));
  const answer = fetch(`${proxy.apiUrl}/v1/models`).then(async (res) => ({ status: res.status, body: await res.text() }));
  const res = await atUpstream;
  // The drain runs up to its wait before close() returns: without the request counted in
  // flight it has already closed every connection, this one included.
  const drain = proxy.close();
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}');
  assert.deepEqual(await answer, { status: 200, body: '{"object":"list","data":[]}' });
  await drain;
  assert.equal(arrived.length, 1);
});
