// An upstream that closes an idle connection without announcing when (uvicorn, so vLLM, after
// 5 s; gunicorn after 2) can close it just as the sidecar's pool hands it to a request: the
// request meets the close before any answer. It is sent again on another connection, not
// failed (which would cost a fallback and count against the upstream's circuit). Here the
// upstream closes its first connection when a second request arrives on it, a second after
// the first; test/integration/scenarios.test.ts's connection-reset is the other side: a reset
// of a connection in use a moment ago is a failure like any other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { AddressInfo, Socket } from 'node:net';
import { startProxy, chainYaml, type ProxyHarness } from '../support/proxy-harness.ts';

const ANSWER = JSON.stringify({
  id: 'chatcmpl-closed',
  object: 'chat.completion',
  created: 1,
  model: 'closing',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

let upstream: Server;
/** Requests received per connection, in the order the connections came. */
const requestsPerConnection: number[] = [];
const connections = new Map<Socket, number>();
let proxy: ProxyHarness;

before(async () => {
  upstream = createServer((req, res) => {
    const index = connections.get(req.socket) ?? -1;
    requestsPerConnection[index] = (requestsPerConnection[index] ?? 0) + 1;
    req.resume();
    req.on('end', () => {
      // The first connection's second request: closed under it, unanswered.
      if (index === 0 && requestsPerConnection[index] === 2) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER);
    });
  });
  upstream.on('connection', (socket: Socket) => connections.set(socket, connections.size));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const { port } = upstream.address() as AddressInfo;
  proxy = await startProxy({
    config: `${chainYaml({ name: 'closing', baseURL: `http://127.0.0.1:${port}/v1`, steps: [{ model: 'closing', retries: 0 }] })}\n`,
  });
});

after(async () => {
  await proxy?.close();
  upstream?.closeAllConnections();
  upstream?.close();
});

test('a request whose pooled upstream connection, idle a while, is closed under it goes out again on another, and the caller never knows', async () => {
  for (let i = 0; i < 2; i++) {
    // Idleness is the point, so a wait stands in for an event: only a connection idle at least
    // a second is taken for one closed for idleness (a reset of one in use just now is a failure).
    if (i === 1) await delay(1_100);
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'closing', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }> };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.choices?.[0]?.message?.content, 'Hello');
    // One attempt each, a success: not a failed attempt (and a retry) on the chain's books.
    assert.equal(res.headers.get('x-llm-fallback-attempts'), 'mock/closing=ok');
  }
  // The second request: once on the reused connection (closed), then on a new one.
  assert.deepEqual(requestsPerConnection, [2, 1]);
});
