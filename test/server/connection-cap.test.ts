// The connection cap (src/server/connection-cap.ts) on a plain Node server, with raw sockets:
// which connection gives way to a newcomer at the cap, and when none does. The clock is the
// cap's own (injected), so idleness is a number here, not a wait.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { capConnections, MIN_IDLE_TO_EVICT_MS } from '../../src/server/connection-cap.ts';

interface Harness {
  server: Server;
  port: number;
  clock: { ms: number };
  counts: { dropped: number; evicted: number };
  /** Answers to /slow requests, held until released. */
  slow: ServerResponse[];
  /** Answers every /slow request held. */
  release(): void;
  /** Resolves when the server has received `n` /slow requests in all. */
  slowArrived(n: number): Promise<void>;
}

let harness: Harness | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  if (harness) {
    harness.release();
    harness.server.closeAllConnections();
    harness.server.close();
    harness = undefined;
  }
});

async function start(max: number): Promise<Harness> {
  const slow: ServerResponse[] = [];
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/slow') {
      slow.push(res);
      for (const w of waiting.filter((w) => slow.length >= w.n)) w.resolve();
      return;
    }
    res.end('fast');
  });
  const clock = { ms: 0 };
  const counts = { dropped: 0, evicted: 0 };
  capConnections(server, max, { onDrop: () => counts.dropped++, onEvict: () => counts.evicted++ }, () => clock.ms);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const slowArrived = (n: number): Promise<void> => (slow.length >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve })));
  const release = (): void => slow.splice(0).forEach((res) => res.end('slow'));
  harness = { server, port: (server.address() as AddressInfo).port, clock, counts, slow, release, slowArrived };
  return harness;
}

/** A connection and everything it receives; `closed` resolves with all of it once the server closes it. */
function open(port: number): { socket: Socket; received: () => string; closed: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => text);
  return { socket, received: () => text, closed };
}

/** Resolves once `received()` holds `count` complete answers. */
async function answers(conn: { socket: Socket; received: () => string }, count: number): Promise<void> {
  while ((conn.received().match(/HTTP\/1\.1 200/g) ?? []).length < count || !/(fast|slow)$/.test(conn.received())) await once(conn.socket, 'data');
}

const GET = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

/** A new connection asks for /fast: 'refused' when it is closed unanswered, 'served' when it is answered. */
async function newcomer(port: number): Promise<'refused' | 'served'> {
  const conn = open(port);
  conn.socket.write(GET('/fast'));
  return Promise.race([conn.closed.then((text) => (text === '' ? ('refused' as const) : ('served' as const))), answers(conn, 1).then(() => 'served' as const)]);
}

test('a newcomer at the cap takes the place of the connection idle longest, once it has idled long enough', async () => {
  const h = await start(2);
  const a = open(h.port);
  const b = open(h.port);
  a.socket.write(GET('/fast'));
  await answers(a, 1);
  h.clock.ms = MIN_IDLE_TO_EVICT_MS / 2;
  b.socket.write(GET('/fast'));
  await answers(b, 1);

  // Both idle, but not for long: a client may be writing its next request into either right now.
  h.clock.ms = MIN_IDLE_TO_EVICT_MS - 1;
  assert.equal(await newcomer(h.port), 'refused', 'refused while no connection has idled long enough');
  assert.deepEqual(h.counts, { dropped: 1, evicted: 0 });

  // a has now idled long enough (b not yet): a gives way.
  h.clock.ms = MIN_IDLE_TO_EVICT_MS;
  assert.equal(await newcomer(h.port), 'served');
  await a.closed;
  b.socket.write(GET('/fast'));
  await answers(b, 2);
  assert.deepEqual(h.counts, { dropped: 1, evicted: 1 });
});

test('a connection with a pipelined request still unanswered is busy, not idle, when the answer ahead of it is written', async () => {
  const h = await start(1);
  const a = open(h.port);
  // Two requests in one write: Node hands the second out before the first answer is written.
  a.socket.write(GET('/fast') + GET('/slow'));
  await h.slowArrived(1);
  await answers(a, 1);
  h.clock.ms = 10 * MIN_IDLE_TO_EVICT_MS;
  assert.equal(await newcomer(h.port), 'refused', 'refused: the only connection is serving a request');
  assert.deepEqual(h.counts, { dropped: 1, evicted: 0 });
  // The request that would have been lost is answered on its connection.
  h.release();
  await answers(a, 2);
  assert.match(a.received(), /fast[\s\S]*slow$/);

  // Answered in full, it is idle and gives way in its turn.
  h.clock.ms = 20 * MIN_IDLE_TO_EVICT_MS;
  assert.equal(await newcomer(h.port), 'served');
  await a.closed;
  assert.deepEqual(h.counts, { dropped: 1, evicted: 1 });
});

test('a connection that has not finished its first request is never taken for idle', async () => {
  const h = await start(1);
  const a = open(h.port);
  a.socket.write(GET('/slow'));
  await h.slowArrived(1);
  h.clock.ms = 10 * MIN_IDLE_TO_EVICT_MS;
  assert.equal(await newcomer(h.port), 'refused');
  h.release();
  await answers(a, 1);
  assert.deepEqual(h.counts, { dropped: 1, evicted: 0 });
});

test('a connection that has sent no request yet is never taken for idle', async () => {
  const h = await start(1);
  const a = open(h.port);
  await once(h.server, 'connection');
  h.clock.ms = 10 * MIN_IDLE_TO_EVICT_MS;
  assert.equal(await newcomer(h.port), 'refused');
  a.socket.write(GET('/fast'));
  await answers(a, 1);
  assert.deepEqual(h.counts, { dropped: 1, evicted: 0 });
});

test('the one to give way is the connection idle longest, whatever the order the connections opened in', async () => {
  const h = await start(3);
  const [a, b, c] = [open(h.port), open(h.port), open(h.port)];
  // c, opened last, goes idle first; then a, then b.
  c.socket.write(GET('/fast'));
  await answers(c, 1);
  h.clock.ms = MIN_IDLE_TO_EVICT_MS / 2;
  a.socket.write(GET('/fast'));
  await answers(a, 1);
  h.clock.ms = (MIN_IDLE_TO_EVICT_MS * 3) / 4;
  b.socket.write(GET('/fast'));
  await answers(b, 1);

  h.clock.ms = MIN_IDLE_TO_EVICT_MS;
  assert.equal(await newcomer(h.port), 'served');
  await c.closed;
  // The newcomer holds its slot (it asked once, idle since then); a has now idled long enough, b not yet.
  h.clock.ms = (MIN_IDLE_TO_EVICT_MS * 3) / 2;
  assert.equal(await newcomer(h.port), 'served');
  await a.closed;
  b.socket.write(GET('/fast'));
  await answers(b, 2);
  assert.deepEqual(h.counts, { dropped: 0, evicted: 2 });
});
