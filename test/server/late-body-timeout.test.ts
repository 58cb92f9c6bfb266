// A caller's body that arrived within the body time-out is read, not refused with a 408, when
// the event loop was frozen meanwhile (src/server/request-body.ts, src/core/late-timers.ts):
// libuv runs due timers before it reads the sockets, so without the guard the time-out won
// over a body already waiting in the socket. The freeze is a synchronous stretch of the
// caller's code (caller and server share this process), longer than the time-out, right after
// the caller wrote the rest of its body: in the same turn of the loop as the server armed the
// time-out, so that no timer of the test's can fall due before the rest is written.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { BodyBudget } from '../../src/server/body-budget.ts';
import { readJsonBody, type BodyRead } from '../../src/server/request-body.ts';
import { freeze } from '../support/freeze.ts';

const TIME_OUT_MS = 100;
const FREEZE_MS = 3 * TIME_OUT_MS;

let server: Server;
let port: number;
const reads: BodyRead[] = [];
const budget = new BodyBudget(0);
/** Called once the server reads a request's body, its time-out armed. */
let armed: (() => void) | undefined;

before(async () => {
  server = createServer((req, res) => {
    void readJsonBody(req, { limit: 1024 * 1024, share: budget.share(), timeoutMs: TIME_OUT_MS }).then((read) => {
      reads.push(read);
      res.writeHead(read.kind === 'rejected' ? read.status : 200, { connection: 'close' }).end();
    });
    armed?.();
    armed = undefined;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server.close();
});

function statusOf(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.once('end', () => resolve(text.slice(0, 12)));
    socket.once('error', reject);
  });
}

async function sendLate(head: string, body: Buffer): Promise<string> {
  const cut = 10;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const status = statusOf(socket);
  // The rest is written, and the process frozen past the time-out, in the check phase of the
  // turn in which the server armed it. (A freeze in a timer callback would not do: libuv reads
  // the clock once per turn, so the next timers of the same turn would not be due.)
  armed = () =>
    setImmediate(() => {
      socket.write(body.subarray(cut));
      freeze(FREEZE_MS);
    });
  socket.write(Buffer.concat([Buffer.from(`${head}Content-Length: ${body.length}\r\n\r\n`), body.subarray(0, cut)]));
  return status;
}

const json = { model: 'm', messages: [{ role: 'user', content: 'in time' }] };
const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n';

test('a body that arrived in time is read after a freeze past the body time-out', { timeout: 10_000 }, async () => {
  assert.equal(await sendLate(head, Buffer.from(JSON.stringify(json))), 'HTTP/1.1 200');
  const read = reads.at(-1);
  assert.equal(read?.kind, 'ok', JSON.stringify(read));
  assert.deepEqual(read.kind === 'ok' ? read.value : undefined, json);
});

test('a compressed body that arrived in time is read although it is inflated after the time-out fell due', { timeout: 10_000 }, async () => {
  assert.equal(await sendLate(`${head}Content-Encoding: gzip\r\n`, gzipSync(JSON.stringify(json))), 'HTTP/1.1 200');
  const read = reads.at(-1);
  assert.equal(read?.kind, 'ok', JSON.stringify(read));
  assert.deepEqual(read.kind === 'ok' ? read.value : undefined, json);
});

test('a body that did not arrive in time is still refused with a 408', { timeout: 10_000 }, async () => {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const status = statusOf(socket);
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"model":`);
  assert.equal(await status, 'HTTP/1.1 408');
  const read = reads.at(-1);
  assert.equal(read?.kind === 'rejected' ? read.code : read?.kind, 'body_timeout');
  socket.destroy();
});
