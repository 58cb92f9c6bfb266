// An upstream that closes an idle connection without announcing when (uvicorn, so vLLM, after
// 5 s; gunicorn after 2) can close it just as the sidecar's pool hands it to a request: the
// request meets the close before any answer. It is sent again, once, on a connection of its
// own, not failed (which would cost a fallback and count against the upstream's circuit).
// What must never be sent again is a request the upstream took up: one it held a while before
// the connection broke (working on it, then crashing), or one it had begun to answer. Each
// upstream below breaks the first connection's second request, a second after the first;
// test/integration/scenarios.test.ts's connection-reset is the other side: a reset of a
// connection in use a moment ago is a failure like any other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
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

/** What the upstream does with the request that arrives on its first connection after it idled. */
type Breakage = (req: IncomingMessage) => void;

const BREAKAGES = {
  // Closed as it arrives: the idle-close race itself.
  closedOnArrival: (req) => req.socket.destroy(),
  // Held 600 ms, as if a model were working on it, then the connection breaks: taken up.
  heldThenReset: (req) => void delay(600).then(() => req.socket.resetAndDestroy()),
  // Part of a status line and headers, then a reset: an answer had begun.
  partlyAnswered: (req) => {
    req.socket.write('HTTP/1.1 200 OK\r\nContent-Type: appl');
    setImmediate(() => req.socket.resetAndDestroy());
  },
  // Every request after the first two is reset as soon as it is read: a broken upstream.
  alwaysReset: (req) => req.socket.resetAndDestroy(),
} satisfies Record<string, Breakage>;

type Case = keyof typeof BREAKAGES;

interface Upstream {
  server: Server;
  /** Requests received per connection, in the order the connections came. */
  requestsPerConnection: number[];
}

const upstreams = new Map<Case, Upstream>();
let proxy: ProxyHarness;

function startUpstream(name: Case): Upstream {
  const requestsPerConnection: number[] = [];
  const connections = new Map<Socket, number>();
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const index = connections.get(req.socket) ?? -1;
    const count = (requestsPerConnection[index] = (requestsPerConnection[index] ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      const broken = name === 'alwaysReset' ? requests > 2 : index === 0 && count === 2;
      if (broken) BREAKAGES[name](req);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER);
    });
  });
  server.on('connection', (socket: Socket) => connections.set(socket, connections.size));
  server.listen(0, '127.0.0.1');
  return { server, requestsPerConnection };
}

before(async () => {
  for (const name of Object.keys(BREAKAGES) as Case[]) upstreams.set(name, startUpstream(name));
  await Promise.all([...upstreams.values()].filter((u) => !u.server.listening).map((u) => once(u.server, 'listening')));
  const chains = [...upstreams].map(([name, u]) =>
    chainYaml({ name: chainName(name), baseURL: `http://127.0.0.1:${(u.server.address() as AddressInfo).port}/v1`, steps: [{ model: 'closing', retries: 0 }] }),
  );
  proxy = await startProxy({ config: `${chains.join('\n---\n')}\n` });
});

after(async () => {
  await proxy?.close();
  for (const u of upstreams.values()) {
    u.server.closeAllConnections();
    u.server.close();
  }
});

/** A chain's name (Kubernetes names are lower-case): closedOnArrival → closed-on-arrival. */
const chainName = (name: Case): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface Answer {
  status: number;
  attempts: string | null;
  content?: string;
}

async function ask(name: Case): Promise<Answer> {
  const res = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: chainName(name), messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }> };
  return { status: res.status, attempts: res.headers.get('x-llm-fallback-attempts'), content: body.choices?.[0]?.message?.content };
}

/**
 * Asks chain `name` `pooled` times at once (leaving that many connections in the pool), then once
 * more after they have idled a second; the first answer and the last.
 */
async function twice(name: Case, pooled = 1): Promise<[Answer, Answer]> {
  const [first] = await Promise.all(Array.from({ length: pooled }, () => ask(name)));
  // Idleness is the point, so a wait stands in for an event: only a connection idle at least
  // a second is taken for one closed for idleness (a reset of one in use just now is a failure).
  await delay(1_100);
  return [first as Answer, await ask(name)];
}

test('a request whose pooled upstream connection, idle a while, is closed under it goes out again on a new one, and the caller never knows', async () => {
  const [first, second] = await twice('closedOnArrival');
  assert.deepEqual(first, { status: 200, attempts: 'mock/closing=ok', content: 'Hello' });
  // One attempt, a success: not a failed attempt (and a retry) on the chain's books.
  assert.deepEqual(second, { status: 200, attempts: 'mock/closing=ok', content: 'Hello' });
  // The second request: once on the reused connection (closed), then on a new one.
  assert.deepEqual(upstreams.get('closedOnArrival')?.requestsPerConnection, [2, 1]);
});

test('a request the upstream held before its connection broke is not sent again: it may have been worked on, and billed', async () => {
  const [, second] = await twice('heldThenReset');
  assert.equal(second.attempts, 'mock/closing=connection');
  assert.deepEqual(upstreams.get('heldThenReset')?.requestsPerConnection, [2]);
});

test('a request whose answer had begun when the connection broke is not sent again', async () => {
  const [, second] = await twice('partlyAnswered');
  assert.notEqual(second.status, 200);
  assert.deepEqual(upstreams.get('partlyAnswered')?.requestsPerConnection, [2]);
});

test('an upstream that resets every request it reads gets the request twice at most, then the chain decides', async () => {
  // Two idle connections in the pool, each as ready to be tried as the other.
  const [, second] = await twice('alwaysReset', 2);
  assert.equal(second.attempts, 'mock/closing=connection');
  const perConnection = upstreams.get('alwaysReset')?.requestsPerConnection ?? [];
  // Two warm-up requests, then the request itself twice: on a pooled connection, then on one of its own.
  assert.equal(
    perConnection.reduce((sum, n) => sum + n, 0),
    4,
    JSON.stringify(perConnection),
  );
  assert.equal(perConnection.length, 3, 'the resend on a new connection');
});
