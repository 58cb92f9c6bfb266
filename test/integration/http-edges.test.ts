// The edges of the HTTP surface, through the real proxy with fetch: malformed requests
// get OpenAI-shaped errors before any upstream is called, /v1/models is passed through
// only when a default upstream is configured, request ids round-trip, the admin port
// reports health and config without ever showing a key, every designed metric exists,
// and a caller that hangs up mid-stream closes the upstream connection too.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, gzipSync } from 'node:zlib';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness, type LogLine } from '../support/proxy-harness.ts';
import { failureReply } from '../../src/server/failure-reply.ts';
import type { UpstreamFailure } from '../../src/engine/outcome.ts';
import { Redactor } from '../../src/core/redact.ts';

const KEY_VAR = 'EDGE_TEST_API_KEY';
const SECRET = 'sk-edge-9f8e7d6c5b4a3210-secret';
const BODY_LIMIT = 1024;

let up: FaultUpstream;
let other: FaultUpstream;
let proxy: ProxyHarness;
let passThrough: ProxyHarness;

before(async () => {
  up = await startFaultUpstream();
  other = await startFaultUpstream();
  const chains = [
    chainYaml({ name: 'edge', baseURL: up.url, apiKey: KEY_VAR, steps: [{ model: 'fault:ok#edge' }] }),
    chainYaml({ name: 'echo', baseURL: up.url, apiKey: KEY_VAR, steps: [{ model: 'fault:echo-key#edge' }] }),
    chainYaml({
      name: 'costly',
      baseURL: up.url,
      apiKey: KEY_VAR,
      steps: [
        { model: 'fault:500#costly', price: { inputPerMTok: 1, outputPerMTok: 2 } },
        { model: 'fault:ok#costly-fb', price: { inputPerMTok: 1, outputPerMTok: 2 } },
      ],
    }),
    chainYaml({ name: 'stalls', baseURL: up.url, apiKey: KEY_VAR, steps: [{ model: 'fault:stall-after-2#abort' }] }),
    chainYaml({ name: 'quotes-key', baseURL: up.url, apiKey: KEY_VAR, steps: [{ model: 'fault:401-echo-key#edge' }] }),
  ];
  proxy = await startProxy({ config: chains.join('\n---\n'), env: { [KEY_VAR]: SECRET }, extraArgs: ['--body-limit', String(BODY_LIMIT)] });
  passThrough = await startProxy({
    config: chainYaml({ name: 'edge', baseURL: up.url, steps: [{ model: 'fault:ok#edge-pass' }] }),
    extraArgs: ['--default-upstream', other.url],
  });
});

// Optional chaining: if before() failed halfway, still close what did start (or the runner never exits).
after(async () => {
  // Upstreams first: a request a failed test left hanging then ends at once, so the drain does not wait for it.
  await up?.close();
  await other?.close();
  await proxy?.close();
  await passThrough?.close();
});

// ---------------------------------------------------------------------------
// Helpers

type Json = Record<string, unknown>;

function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${proxy.baseURL}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: signal ?? null });
}

function chatBody(model: string, extra: Json = {}): string {
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
}

/** Asserts the OpenAI error shape and returns the `error` object. */
function openAIErrorOf(body: unknown): Json {
  assert.equal(typeof body, 'object');
  const error = (body as Json)['error'] as Json;
  assert.equal(typeof error['message'], 'string');
  assert.equal(typeof error['type'], 'string');
  assert.ok('param' in error && 'code' in error, 'error has param and code');
  return error;
}

async function metricsText(p: ProxyHarness): Promise<string> {
  return (await fetch(`${p.adminUrl}/metrics`)).text();
}

// ---------------------------------------------------------------------------

describe('requests the proxy refuses before any upstream call', () => {
  const cases: Array<{
    name: string;
    path: string;
    body: string | Uint8Array;
    headers?: Record<string, string>;
    status: number;
    code: string;
    param?: string;
    message?: RegExp;
  }> = [
    // A body that is not JSON at all.
    { name: 'not JSON', path: '/chat/completions', body: '{"model": "edge",', status: 400, code: 'invalid_json' },
    // Valid JSON, but not an object.
    { name: 'JSON array', path: '/chat/completions', body: '[{"model":"edge"}]', status: 400, code: 'invalid_body' },
    // No model: nothing to route on; the param is named.
    { name: 'missing model', path: '/chat/completions', body: JSON.stringify({ messages: [] }), status: 400, code: 'missing_model', param: 'model' },
    // A model no chain serves: 404 like OpenAI's, listing the chains that exist.
    {
      name: 'unknown model',
      path: '/chat/completions',
      body: chatBody('gpt-nope'),
      status: 404,
      code: 'model_not_found',
      param: 'model',
      message: /`gpt-nope`.*Known chains: costly, echo, edge, quotes-key, stalls/,
    },
    // Larger than --body-limit.
    {
      name: 'body too large',
      path: '/chat/completions',
      body: chatBody('edge', { pad: 'x'.repeat(BODY_LIMIT * 2) }),
      status: 413,
      code: 'body_too_large',
      message: /1024 bytes/,
    },
    // stream must be a boolean.
    { name: 'stream not boolean', path: '/chat/completions', body: chatBody('edge', { stream: 'yes' }), status: 400, code: 'invalid_stream', param: 'stream' },
    // Embeddings cannot stream.
    {
      name: 'streamed embeddings',
      path: '/embeddings',
      body: JSON.stringify({ model: 'edge', input: 'hi', stream: true }),
      status: 400,
      code: 'invalid_stream',
      param: 'stream',
    },
    // No body at all reads as {}: the missing model is what gets named.
    { name: 'empty body', path: '/chat/completions', body: '', status: 400, code: 'missing_model', param: 'model' },
    // The limit counts the inflated bytes: a small gzip that inflates past it is refused.
    {
      name: 'gzip bomb',
      path: '/chat/completions',
      body: gzipSync(chatBody('edge', { pad: 'x'.repeat(BODY_LIMIT * 8) })),
      headers: { 'content-encoding': 'gzip' },
      status: 413,
      code: 'body_too_large',
      message: /1024 bytes/,
    },
    // A compression the proxy cannot undo.
    {
      name: 'unknown content-encoding',
      path: '/chat/completions',
      body: chatBody('edge'),
      headers: { 'content-encoding': 'compress' },
      status: 415,
      code: 'unsupported_encoding',
      message: /"compress"/,
    },
    // gzip named, but the bytes are not gzip.
    {
      name: 'corrupt gzip',
      path: '/chat/completions',
      body: chatBody('edge'),
      headers: { 'content-encoding': 'gzip' },
      status: 400,
      code: 'invalid_body',
      message: /decompressed/,
    },
    // JSON is UTF-8: another declared charset is refused rather than misread.
    {
      name: 'latin-1 charset',
      path: '/chat/completions',
      body: chatBody('edge'),
      headers: { 'content-type': 'application/json; charset=iso-8859-1' },
      status: 415,
      code: 'unsupported_encoding',
      message: /ISO-8859-1/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = up.requests.length;
      const res = await post(c.path, c.body, c.headers);
      assert.equal(res.status, c.status);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const error = openAIErrorOf(await res.json());
      assert.equal(error['code'], c.code);
      if (c.param) assert.equal(error['param'], c.param);
      if (c.message) assert.match(String(error['message']), c.message);
      assert.equal(up.requests.length, before, 'no upstream was called');
    });
  }
});

describe('how a chain request may be sent', () => {
  const cases: Array<{ name: string; path: string; body: string | Uint8Array; headers?: Record<string, string> }> = [
    // gzip-compressed body (some SDK middlewares compress requests).
    { name: 'gzip body', path: '/chat/completions', body: gzipSync(chatBody('edge')), headers: { 'content-encoding': 'gzip' } },
    // deflate-compressed body.
    { name: 'deflate body', path: '/chat/completions', body: deflateSync(chatBody('edge')), headers: { 'content-encoding': 'deflate' } },
    // A query string does not change the route.
    { name: 'query string', path: '/chat/completions?api-version=1', body: chatBody('edge') },
    // A trailing slash is the same route (served through Express, same handler).
    { name: 'trailing slash', path: '/chat/completions/', body: chatBody('edge') },
    // A charset parameter is fine. (Other content types are refused: test/integration/local-access.test.ts.)
    {
      name: 'application/json with a charset',
      path: '/chat/completions',
      body: chatBody('edge'),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = up.requests.length;
      const res = await post(c.path, c.body, c.headers);
      assert.equal(res.status, 200, await res.clone().text());
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await res.json()) as Json;
      assert.ok(Array.isArray(body['choices']), 'a chat completion came back');
      assert.equal(up.requests.length, before + 1, 'one upstream call');
    });
  }
});

describe('GET /v1/models', () => {
  test("without a default upstream: the chains, in OpenAI's list shape (issue 14; models.test.ts has the SDKs)", async () => {
    const res = await fetch(`${proxy.baseURL}/models`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Json;
    assert.equal(body['object'], 'list');
    assert.ok((body['data'] as Json[]).some((m) => m['id'] === 'edge'));
  });

  test('with --default-upstream: passed through, returning the upstream list', async () => {
    const res = await fetch(`${passThrough.baseURL}/models`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Json;
    assert.equal(body['object'], 'list');
    const ids = (body['data'] as Json[]).map((m) => m['id']);
    assert.ok(ids.includes('fault:ok'), JSON.stringify(ids));
    const seen = other.requests.filter((r) => r.path === '/v1/models');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.method, 'GET');
    assert.equal(up.requests.filter((r) => r.path === '/v1/models').length, 0, "the chains' upstream is not the default");
  });
});

describe('request ids', () => {
  test('a caller-provided x-request-id is echoed and logged', async () => {
    const res = await post('/chat/completions', chatBody('edge'), { 'x-request-id': 'abc-123' });
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(res.headers.get('x-request-id'), 'abc-123');
    const line = await proxy.requestLog('abc-123');
    assert.equal(line['chain'], 'edge');
    assert.equal(line['outcome'], 'success');
  });

  test('an insane x-request-id is replaced by a generated one', async () => {
    const res = await post('/chat/completions', chatBody('edge'), { 'x-request-id': 'has spaces and {braces}' });
    await res.text();
    const id = res.headers.get('x-request-id') ?? '';
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal((await proxy.requestLog(id))['chain'], 'edge');
  });

  test('replies made before any chain runs carry the request id too (unknown model, no model, not JSON, body over the limit)', async () => {
    const cases: Array<[string, string | Uint8Array, number]> = [
      ['unknown', JSON.stringify({ model: 'no-such-chain', messages: [] }), 404],
      ['nomodel', JSON.stringify({ messages: [] }), 400],
      ['notjson', '{"model":', 400],
      ['huge', JSON.stringify({ model: 'edge', messages: [{ role: 'user', content: 'x'.repeat(11 * 1024 * 1024) }] }), 413],
    ];
    for (const [id, body, status] of cases) {
      const res = await post('/chat/completions', body, { 'x-request-id': `early-${id}` });
      await res.text();
      assert.equal(res.status, status, id);
      assert.equal(res.headers.get('x-request-id'), `early-${id}`, id);
    }
  });
});

describe('admin port and secrets', () => {
  test('/healthz and /readyz', async () => {
    const health = await fetch(`${proxy.adminUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${proxy.adminUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true, configVersion: 1, chains: 5 });
  });

  test('the key is used upstream but never appears in /config or any log line', async () => {
    // The upstream really received the key; echo-key puts it in its answer, which reaches the
    // caller redacted (a caller never sees a provider key, even in a successful answer).
    const echoed = await post('/chat/completions', chatBody('echo'));
    assert.equal(echoed.status, 200);
    assert.equal(up.requestsFor('fault:echo-key#edge').at(-1)?.headers['authorization'], `Bearer ${SECRET}`);
    const echoedText = await echoed.text();
    assert.ok(!echoedText.includes(SECRET), 'the answer shows the key');
    assert.match(echoedText, /Bearer \[REDACTED\]/);
    // A failing attempt and a fallback are logged too.
    const fellBack = await post('/chat/completions', chatBody('costly'));
    assert.equal(fellBack.status, 200);
    await fellBack.text();

    const configRes = await fetch(`${proxy.adminUrl}/config`);
    assert.equal(configRes.status, 200);
    const configText = await configRes.text();
    assert.ok(!configText.includes(SECRET), '/config shows the key');
    const config = JSON.parse(configText) as Json;
    for (const chain of config['chains'] as Json[]) {
      for (const step of chain['steps'] as Json[]) {
        assert.deepEqual(step['apiKey'], { source: `env:${KEY_VAR}`, present: true, problem: null, problemCode: null });
      }
    }
    // An upstream 401 that quotes the key: the caller's error and the attempt reason in the
    // log line both carry the upstream's message, redacted.
    const quoted = await post('/chat/completions', chatBody('quotes-key'));
    assert.equal(quoted.status, 401);
    const quotedText = await quoted.text();
    assert.ok(!quotedText.includes(SECRET), 'the 401 returned to the caller shows the key');
    assert.match(quotedText, /Incorrect API key provided: Bearer \[REDACTED\]/);
    await proxy.waitForLog((l) => l.msg === 'request' && l['chain'] === 'echo');
    await proxy.waitForLog((l) => l.msg === 'request' && l['chain'] === 'costly');
    const quotedLog = await proxy.waitForLog((l) => l.msg === 'request' && l['chain'] === 'quotes-key');
    assert.match(JSON.stringify(quotedLog['attempts']), /Incorrect API key provided: Bearer \[REDACTED\]/);
    const leaking = proxy.logs.filter((l: LogLine) => JSON.stringify(l).includes(SECRET));
    assert.deepEqual(leaking, []);
  });
});

describe('failure replies redact keys', () => {
  const secret = 'sk-live-0123456789abcdefREAL';
  const cases: Array<{ name: string; body: string; contentType: string; gone: string[] }> = [
    // The classic: a 401 whose JSON message repeats the key.
    {
      name: 'JSON 401 body echoing the key',
      body: JSON.stringify({
        error: { message: `Incorrect API key provided: ${secret}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
      }),
      contentType: 'application/json',
      gone: [secret],
    },
    // A non-JSON error page is returned as it came, but still redacted.
    { name: 'plain-text body echoing the key', body: `401 Unauthorized: key ${secret} rejected`, contentType: 'text/plain', gone: [secret] },
    // A bearer token the proxy does not know (e.g. a gateway's) is redacted by its shape.
    {
      name: 'unknown bearer token',
      body: JSON.stringify({ error: { message: 'bad header Authorization: Bearer gw-abcdefghijklmnop', type: 'auth', param: null, code: null } }),
      contentType: 'application/json',
      gone: ['gw-abcdefghijklmnop'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const failure: UpstreamFailure = {
        class: 'authFailed',
        status: 401,
        message: `HTTP 401: ${c.body}`,
        response: { status: 401, contentType: c.contentType, body: c.body },
      };
      const reply = failureReply(
        {
          chain: 'keys',
          end: 'exhausted',
          last: failure,
          lastAnswered: failure,
          attempts: [
            { step: 0, provider: 'p', model: 'm', attempt: 1, outcome: 'authFailed', status: 401, ms: 3, costUSD: 0, reason: `${failure.message}; next step` },
          ],
        },
        new Redactor([secret]),
      );
      assert.equal(reply.status, 401);
      for (const s of c.gone) assert.ok(!reply.body.includes(s), `${c.name}: ${reply.body}`);
      assert.ok(reply.body.includes('[REDACTED]'));
      if (c.contentType === 'application/json') {
        const error = openAIErrorOf(JSON.parse(reply.body));
        const attempts = (error['llm_fallback'] as Json)['attempts'] as Json[];
        assert.match(String(attempts[0]?.['reason']), /\[REDACTED\]/);
      }
    });
  }
});

describe('/metrics', () => {
  test('exposes every metric of the design after a request that fell back and cost something', async () => {
    const res = await post('/chat/completions', chatBody('costly'), { 'x-request-id': 'metrics-1' });
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(res.headers.get('x-llm-fallback-attempts'), 'mock/fault:500#costly=serverError, mock/fault:ok#costly-fb=ok');
    await proxy.requestLog('metrics-1');

    const text = await metricsText(proxy);
    const names = [
      'llm_fallback_requests_total',
      'llm_fallback_attempts_total',
      'llm_fallback_fallbacks_total',
      'llm_fallback_circuit_state',
      'llm_fallback_request_duration_seconds',
      'llm_fallback_time_to_first_byte_seconds',
      'llm_fallback_tokens_total',
      'llm_fallback_cost_usd_total',
      'llm_fallback_config_reloads_total',
    ];
    for (const name of names) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} declared`);
      assert.match(text, new RegExp(`^${name}(_bucket|_sum|_count)?\\{`, 'm'), `${name} has a sample`);
    }
    const value = (sample: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
      return line === undefined ? Number.NaN : Number(line.slice(sample.length + 1));
    };
    assert.ok(value('llm_fallback_fallbacks_total{chain="costly"}') >= 1);
    assert.ok(value('llm_fallback_cost_usd_total{chain="costly",provider="mock",model="fault:ok#costly-fb"}') > 0);
    assert.ok(value('llm_fallback_tokens_total{direction="input"}') > 0);
    assert.equal(value('llm_fallback_config_reloads_total{result="applied"}'), 1);
    assert.equal(value('llm_fallback_circuit_state{provider="mock",model="fault:500#costly"}'), 0);
  });
});

describe('caller disconnect', () => {
  test('aborting a stream mid-way closes the upstream connection and logs outcome aborted', async () => {
    const model = 'fault:stall-after-2#abort';
    const controller = new AbortController();
    const res = await post('/chat/completions', chatBody('stalls', { stream: true }), { 'x-request-id': 'abort-me' }, controller.signal);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    assert.match(new TextDecoder().decode(first.value), /^data: \{/);

    controller.abort();
    await reader.read().catch(() => undefined);

    await up.waitForClosedEarly(model);
    const line = await proxy.requestLog('abort-me');
    assert.equal(line['outcome'], 'aborted');
    assert.equal(line['stream'], true);
    const ended = proxy.logs.find((l) => l.msg === 'request' && l['requestId'] === 'abort-me');
    assert.equal(ended?.['streamEnd'], undefined, 'an abort is not reported as a broken stream');
  });
});
