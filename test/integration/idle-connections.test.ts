// Who closes an idle keep-alive connection first, on both sides of the sidecar. A request
// written into a connection its server is closing at that moment is lost to a reset, so the
// client side should always close first: the caller's HTTP client before the sidecar (the API
// port keeps idle connections 65 s and says so in `Keep-Alive`), and the sidecar before an
// upstream (its pool honours the upstream's `Keep-Alive: timeout=N`, which Node's agent reads
// only when it has a timeout of its own).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness } from '../support/proxy-harness.ts';

/** Announced as `Keep-Alive: timeout=2`: a pool that honours it closes after 1 s, the upstream after 3 (Node closes a second after what it announces). */
const UPSTREAM_KEEP_ALIVE_MS = 2_000;

/** The request timeout of `short`: an idle connection must outlive it. */
const REQUEST_TIMEOUT_MS = 300;

let up: FaultUpstream;
let proxy: ProxyHarness;
/** The same chain with a short --request-timeout-ms. */
let short: ProxyHarness;

before(async () => {
  up = await startFaultUpstream({ keepAliveTimeoutMs: UPSTREAM_KEEP_ALIVE_MS });
  const config = `${chainYaml({ name: 'idle', baseURL: up.url, steps: [{ model: 'fault:ok#idle' }] })}\n`;
  proxy = await startProxy({ config });
  short = await startProxy({ config, extraArgs: ['--request-timeout-ms', String(REQUEST_TIMEOUT_MS)] });
});

after(async () => {
  await up?.close();
  await proxy?.close();
  await short?.close();
});

function chat(agent: Agent): Promise<IncomingMessage & { text: string }> {
  const body = JSON.stringify({ model: 'idle', messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const req = request(`${proxy.baseURL}/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(Object.assign(res, { text })));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test("the API port keeps an idle caller connection 65 s and announces it, so the caller's client closes first", async () => {
  const agent = new Agent({ keepAlive: true });
  try {
    const res = await chat(agent);
    assert.equal(res.statusCode, 200, res.text);
    assert.equal(res.headers.connection, 'keep-alive');
    assert.equal(res.headers['keep-alive'], 'timeout=65');
  } finally {
    agent.destroy();
  }
});

test("the upstream pool closes an idle connection before the upstream's announced keep-alive timeout", async () => {
  const agent = new Agent({ keepAlive: false });
  const res = await chat(agent);
  assert.equal(res.statusCode, 200, res.text);
  // One connection for both tests' requests: the pool keeps connections alive at all.
  assert.equal(up.connectionsAccepted(), 1);
  // Without the hint honoured the pool keeps the connection until the upstream destroys it at 2 s.
  assert.equal(await up.waitForConnectionClose(), 'client');
});

// Held before the 65 s keep-alive too; it guards the announcement: a request timeout that
// closed idle connections would make `Keep-Alive: timeout=65` a lie.
test('an idle caller connection outlives the request timeout (which covers receiving a request, not the wait between two)', async () => {
  const body = JSON.stringify({ model: 'idle', messages: [{ role: 'user', content: 'hi' }] });
  const raw = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const socket = connect(Number(new URL(short.apiUrl).port), '127.0.0.1');
  await once(socket, 'connect');
  let closed = false;
  socket.once('close', () => (closed = true));
  const answer = (): Promise<string> => new Promise((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8'))));
  try {
    const first = answer();
    socket.write(raw);
    assert.match(await first, /^HTTP\/1\.1 200 /);
    // Nothing happens while a connection idles, so there is no event to wait for: a wait has
    // to stand in for one, several times the request timeout and its check interval (Node
    // closes an idle connection a second after the keep-alive timeout it announces).
    await delay(2_000);
    assert.equal(closed, false, 'the idle connection was closed before its announced keep-alive timeout');
    const second = answer();
    socket.write(raw);
    assert.match(await second, /^HTTP\/1\.1 200 /);
  } finally {
    socket.destroy();
  }
});
