// Issue 12, findings 5 and 6, on the real proxy with small limits: the request-body budget
// (503 + Retry-After in the caller's shape beyond it, for declared and chunked bodies, given
// back when a request ends), the body timeout (408 in the caller's shape, connection closed)
// and the connection limits of both ports (silent connections closed, stalled headers cut,
// connections beyond the cap refused). Raw sockets where the point is what a client that
// misbehaves on the wire gets.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually } from '../support/eventually.ts';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness } from '../support/proxy-harness.ts';
import { MIN_IDLE_TO_EVICT_MS } from '../../src/server/connection-cap.ts';

const BODY_LIMIT = 1024;
const BUDGET = 8 * BODY_LIMIT;
const TIMEOUT_MS = 600;

let up: FaultUpstream;
/** Small body limit and budget, short request timeout. */
let proxy: ProxyHarness;
/** Default limits. */
let defaults: ProxyHarness;
/**
 * Default timeouts, few connections on each port; no other test's connections (the API port
 * keeps an idle one 65 s, and it would count against the cap).
 */
let capped: ProxyHarness;

before(async () => {
  up = await startFaultUpstream();
  const chains = [
    chainYaml({ name: 'ok', baseURL: up.url, steps: [{ model: 'fault:ok#limits' }] }),
    chainYaml({ name: 'hold', baseURL: up.url, steps: [{ model: 'fault:silent#hold', timeouts: { totalMs: 20_000 } }] }),
    chainYaml({
      name: 'hedged',
      baseURL: up.url,
      steps: [{ model: 'fault:ok#h1' }, { model: 'fault:ok#h2' }],
      policy: { hedge: { afterMs: 1000, maxInFlight: 4 } },
    }),
    chainYaml({ name: 'slow-stream', baseURL: up.url, steps: [{ model: 'fault:slow-first-token-900#slow', timeouts: { firstByteMs: 5_000 } }] }),
  ];
  proxy = await startProxy({
    config: chains.join('\n---\n'),
    extraArgs: ['--body-limit', String(BODY_LIMIT), '--body-budget', String(BUDGET), '--request-timeout-ms', String(TIMEOUT_MS)],
  });
  // Default body limit and budget (10 MiB, 48 MiB).
  defaults = await startProxy({ config: [chains[0], chains[2]].join('\n---\n') });
  capped = await startProxy({ config: `${chains[0]}\n`, extraArgs: ['--max-connections', '3', '--admin-max-connections', '3'] });
});

after(async () => {
  await up?.close();
  await proxy?.close();
  await defaults?.close();
  await capped?.close();
});

// ---------------------------------------------------------------------------
// Helpers

/** A chat body of about `bytes` bytes for `model`. */
function chatBody(model: string, bytes: number): string {
  const base = JSON.stringify({ model, messages: [{ role: 'user', content: '' }] });
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'x'.repeat(Math.max(0, bytes - base.length)) }] });
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

async function openSocket(url: string): Promise<Socket> {
  const socket = connect(portOf(url), '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

/** Everything the server sends until it closes the connection. */
async function untilClosed(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  socket.on('error', () => undefined);
  if (!socket.destroyed) await once(socket, 'close');
  return text;
}

function bodyOf(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as unknown;
}

// ---------------------------------------------------------------------------

describe('finding 5: the request-body budget', { timeout: 30_000 }, () => {
  test("bodies beyond the budget get 503 + Retry-After in the caller's shape, and the share comes back when a request ends", async () => {
    // Three bodies of 1000 bytes held in flight by a silent upstream (each ~1230 parsed plus
    // 1000 for the body sent upstream) fill most of the 8192-byte budget.
    const holders = [new AbortController(), new AbortController(), new AbortController()];
    const held = holders.map((c) =>
      fetch(`${proxy.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('hold', 1000),
        signal: c.signal,
      }).catch(() => undefined),
    );
    await up.waitForRequest('fault:silent#hold', 3);

    const openai = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody('ok', 1000),
    });
    assert.equal(openai.status, 503);
    assert.equal(openai.headers.get('retry-after'), '2');
    const error = ((await openai.json()) as { error: Record<string, unknown> }).error;
    assert.equal(error['code'], 'body_budget_exhausted');
    assert.equal(error['type'], 'server_error');

    const anthropic = await fetch(`${proxy.apiUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ok', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(900) }] }),
    });
    assert.equal(anthropic.status, 503);
    assert.equal(anthropic.headers.get('retry-after'), '2');
    const reply = (await anthropic.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(reply.type, 'error');
    assert.match(reply.error.message, /too many large request bodies/);

    // A chunked body (no length declared) takes its share as it arrives: refused the same way.
    const chunked = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const req = httpRequest(`${proxy.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      });
      req.on('error', reject);
      req.end(chatBody('ok', 1000));
    });
    assert.deepEqual(chunked, { status: 503, retryAfter: '2' });

    // A small request still fits beside them (the budget counts bytes, not requests).
    assert.equal(
      (await fetch(`${proxy.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody('ok', 10) })).status,
      200,
    );

    // The held requests end (the caller goes away): their share is given back.
    for (const c of holders) c.abort();
    await Promise.all(held);
    await up.waitForClosedEarly('fault:silent#hold');
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, /llm_fallback_rejected_requests_total\{code="body_budget_exhausted"\} 3/);
    const served = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody('ok', 1000),
    });
    assert.equal(served.status, 200);
  });

  test('a body whose parsed form could never fit is a 413, unparsed', async () => {
    // 300 empty objects in 900 bytes: ~72 bytes each once parsed, more than the whole budget.
    const body = `{"model":"ok","messages":[{"role":"user","content":"hi"}],"metadata":[${'{},'.repeat(299)}{}]}`;
    const res = await fetch(`${proxy.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'body_too_complex');
  });

  test('copies count: a 9 MB body a plain chain serves is a 413 on a chain that would race five attempts with it (default limits)', async () => {
    const body = (model: string): string => chatBody(model, 9_000_000);
    assert.equal(
      (await fetch(`${defaults.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body('ok') })).status,
      200,
    );
    const hedged = await fetch(`${defaults.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body('hedged'),
    });
    assert.equal(hedged.status, 413);
    const error = ((await hedged.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'body_too_complex');
    assert.match(error.message, /chain "hedged".*5 copies in flight/);
  });

  test('a body limit the budget cannot hold three times is refused at start-up', async () => {
    const { parseServeOptions } = await import('../../src/config/options.ts');
    assert.throws(
      () => parseServeOptions(['--body-limit', '1000', '--body-budget', '2999'], {}),
      /--body-budget \(2999\) must be at least three times --body-limit \(1000\)/,
    );
    assert.equal(parseServeOptions(['--body-limit', '1000', '--body-budget', '0'], {}).bodyBudgetBytes, 0);
    assert.equal(
      parseServeOptions(['--body-limit', String(64 * 1024 * 1024)], {}).bodyBudgetBytes,
      256 * 1024 * 1024,
      'a raised limit raises the default budget',
    );
  });
});

describe('finding 6: timeouts and connection caps on both ports', { timeout: 30_000 }, () => {
  test("a body that stalls after the headers gets a 408 in the caller's shape and the connection is closed", async () => {
    for (const [path, shape] of [
      ['/v1/chat/completions', 'openai'],
      ['/v1/messages', 'anthropic'],
    ] as const) {
      const socket = await openSocket(proxy.apiUrl);
      const closed = untilClosed(socket);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"model":"ok",`);
      const raw = await closed;
      assert.match(raw, /^HTTP\/1\.1 408 /, `${path}: ${raw.slice(0, 200)}`);
      assert.match(raw, /connection: close/i);
      const body = bodyOf(raw) as Record<string, Record<string, string>>;
      if (shape === 'openai') assert.equal(body['error']?.['code'], 'body_timeout');
      else assert.equal(body['error']?.['type'], 'invalid_request_error');
    }
  });

  test('a stream that lasts longer than the request timeout is not cut: the timeout covers receiving the request only', async () => {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /data: \[DONE\]/);
  });

  test('a connection that never sends a byte is closed, on the API port and on the admin port', async () => {
    for (const url of [proxy.apiUrl, proxy.adminUrl]) {
      const socket = await openSocket(url);
      assert.equal(await untilClosed(socket), '');
    }
  });

  test('the admin port cuts a request whose headers never end', async () => {
    const socket = await openSocket(proxy.adminUrl);
    const closed = untilClosed(socket);
    socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const raw = await closed;
    assert.ok(raw === '' || /^HTTP\/1\.1 408 /.test(raw), raw.slice(0, 100));
  });

  test('connections beyond the cap are closed at once on both ports; the others keep working', async () => {
    for (const url of [capped.apiUrl, capped.adminUrl]) {
      const kept = [await openSocket(url), await openSocket(url), await openSocket(url)];
      const extra = await openSocket(url);
      // Refused: closed without an answer, even to a complete request.
      extra.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.equal(await untilClosed(extra), '');
      // A kept connection is served.
      const first = kept[0] as Socket;
      const answered = new Promise<string>((resolve) => first.once('data', (chunk: Buffer) => resolve(chunk.toString())));
      first.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.match(await answered, /^HTTP\/1\.1 (200|404) /);
      for (const socket of kept) socket.destroy();
      await Promise.all(kept.filter((s) => !s.closed).map((s) => once(s, 'close')));
    }
    // The server learns of the closes a moment later, with no event a client can wait on.
    const metrics = await eventually('the admin port to take connections again', async () => (await fetch(`${capped.adminUrl}/metrics`)).text());
    assert.match(metrics, /llm_fallback_rejected_requests_total\{code="max_connections_api"\} 1/);
    // At least the one refused above (fetches refused while waiting count too).
    assert.match(metrics, /llm_fallback_rejected_requests_total\{code="max_connections_admin"\} [1-9]/);
  });

  test('at the cap a new connection takes the place of the one idle longest between two requests, on both ports; evictions are counted', async () => {
    /** Sends a request on `socket` and resolves with the first bytes of its answer ('' when it is closed instead). */
    const ask = (socket: Socket): Promise<string> => {
      const answered = new Promise<string>((resolve) => {
        socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        socket.once('close', () => resolve(''));
      });
      socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      return answered;
    };
    for (const url of [capped.apiUrl, capped.adminUrl]) {
      const [first, second, third] = [await openSocket(url), await openSocket(url), await openSocket(url)] as [Socket, Socket, Socket];
      // Each answered in turn and kept alive: the first is idle longest.
      for (const socket of [first, second, third]) assert.match(await ask(socket), /^HTTP\/1\.1 (200|404) /);
      // Idleness is the point, so a wait stands in for an event: only a connection idle at least
      // MIN_IDLE_TO_EVICT_MS gives way (test/server/connection-cap.test.ts covers the rest).
      await delay(MIN_IDLE_TO_EVICT_MS + 100);
      const newcomer = await openSocket(url);
      assert.match(await ask(newcomer), /^HTTP\/1\.1 (200|404) /);
      await untilClosed(first);
      assert.match(await ask(second), /^HTTP\/1\.1 (200|404) /, 'the others are kept');
      for (const socket of [second, third, newcomer]) socket.destroy();
      await Promise.all([second, third, newcomer].filter((s) => !s.closed).map((s) => once(s, 'close')));
    }
    const metrics = await (await fetch(`${capped.adminUrl}/metrics`)).text();
    assert.match(metrics, /llm_fallback_connections_evicted_total\{port="api"\} 1/);
    // At least the one above (this fetch may take the place of a connection the server has not yet seen closed).
    assert.match(metrics, /llm_fallback_connections_evicted_total\{port="admin"\} [1-9]/);
  });
});
