// Checks the fault upstream itself, so proxy tests can trust what each `fault:` model does.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream } from './fault-upstream.ts';
import type { FaultUpstream } from './fault-upstream.ts';

let up: FaultUpstream;

before(async () => {
  up = await startFaultUpstream();
});

after(async () => {
  await up.close();
});

// ---------------------------------------------------------------------------
// Helpers

type Json = Record<string, unknown>;

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${up.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal ?? null,
  });
}

function chat(model: string, extra: Json = {}, init: RequestInit = {}): Promise<Response> {
  return post('/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }], ...extra }, init);
}

async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}

/** SSE payloads (the text after `data: `), split on the blank line between events. */
function ssePayloads(text: string): string[] {
  return text
    .split('\n\n')
    .filter((event) => event.trim() !== '')
    .map((event) => event.replace(/^data: /, ''));
}

function parsePayloads(payloads: string[]): Json[] {
  return payloads.filter((p) => p !== '[DONE]').map((p) => JSON.parse(p) as Json);
}

function firstChoice(chunk: Json): Json {
  const choices = chunk['choices'] as Json[];
  return choices[0] ?? {};
}

/** Concatenated delta content of chat chunks. */
function streamedContent(chunks: Json[]): string {
  return chunks.map((c) => (firstChoice(c)['delta'] as Json | undefined)?.['content'] ?? '').join('');
}

/** Reads a body until it ends or breaks; returns what arrived and the error, if any. */
async function readUntilError(res: Response): Promise<{ text: string; error: unknown }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

/** Reads until `count` complete SSE events arrived, leaving the stream open. */
async function readEvents(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<string[]> {
  const decoder = new TextDecoder();
  let text = '';
  while (ssePayloads(text.slice(0, text.lastIndexOf('\n\n') + 2)).length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return ssePayloads(text);
}

// ---------------------------------------------------------------------------

describe('ok', () => {
  test('non-stream chat completion has the OpenAI shape and echoes the model', async () => {
    const res = await chat('fault:ok#plain');
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body['object'], 'chat.completion');
    assert.equal(body['model'], 'fault:ok#plain');
    assert.match(String(body['id']), /^chatcmpl-/);
    assert.deepEqual(firstChoice(body), {
      index: 0,
      message: { role: 'assistant', content: 'Hello from fault:ok#plain' },
      finish_reason: 'stop',
    });
    assert.deepEqual(body['usage'], { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
  });

  test('a model without the fault: prefix behaves as ok and is recorded', async () => {
    const res = await chat('gpt-4o-mini', {}, { headers: { authorization: 'Bearer sk-x' } });
    assert.equal(res.status, 200);
    assert.equal(firstChoice(await json(res))['finish_reason'], 'stop');
    const [recorded] = up.requestsFor('gpt-4o-mini');
    assert.equal(recorded?.path, '/v1/chat/completions');
    assert.equal(recorded?.method, 'POST');
    assert.equal(recorded?.headers['authorization'], 'Bearer sk-x');
    assert.deepEqual((recorded?.body as Json)['messages'], [{ role: 'user', content: 'hi' }]);
  });

  test('stream: role chunk, three content chunks, stop chunk, [DONE]; no usage keys', async () => {
    const res = await chat('fault:ok#stream', { stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const payloads = ssePayloads(await res.text());
    assert.equal(payloads.at(-1), '[DONE]');
    const chunks = parsePayloads(payloads);
    assert.equal(chunks.length, 5);
    assert.deepEqual(firstChoice(chunks[0]!), { index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null });
    assert.equal(streamedContent(chunks), 'Hello from fault:ok#stream');
    assert.deepEqual(firstChoice(chunks[4]!), { index: 0, delta: {}, finish_reason: 'stop' });
    for (const chunk of chunks) {
      assert.equal(chunk['object'], 'chat.completion.chunk');
      assert.equal('usage' in chunk, false);
    }
  });

  test('stream with include_usage: usage null on every chunk, then a choices:[] usage chunk', async () => {
    const res = await chat('fault:ok#usage', { stream: true, stream_options: { include_usage: true } });
    const chunks = parsePayloads(ssePayloads(await res.text()));
    assert.equal(chunks.length, 6);
    const last = chunks.at(-1)!;
    assert.deepEqual(last['choices'], []);
    assert.deepEqual(last['usage'], { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk['usage'], null);
  });

  test('text completions: non-stream choices[].text and stream text chunks', async () => {
    const plain = await json(await post('/completions', { model: 'fault:ok#text', prompt: 'hi' }));
    assert.equal(plain['object'], 'text_completion');
    assert.equal(firstChoice(plain)['text'], 'Hello from fault:ok#text');
    const res = await post('/completions', { model: 'fault:ok#text', prompt: 'hi', stream: true });
    const payloads = ssePayloads(await res.text());
    assert.equal(payloads.at(-1), '[DONE]');
    const chunks = parsePayloads(payloads);
    assert.equal(chunks.map((c) => firstChoice(c)['text']).join(''), 'Hello from fault:ok#text');
    assert.equal(firstChoice(chunks.at(-1)!)['finish_reason'], 'stop');
  });

  test('embeddings return a list of vectors with usage', async () => {
    const body = await json(await post('/embeddings', { model: 'fault:ok#emb', input: 'one two three' }));
    assert.deepEqual(body, {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
      model: 'fault:ok#emb',
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
  });

  test('GET /v1/models lists models', async () => {
    const res = await fetch(`${up.url}/models`);
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body['object'], 'list');
    assert.ok((body['data'] as Json[]).length > 0);
  });

  test('echo-key answers with the authorization header it received', async () => {
    const res = await chat('fault:echo-key', {}, { headers: { authorization: 'Bearer sk-provider' } });
    const message = firstChoice(await json(res))['message'] as Json;
    assert.equal(message['content'], 'Bearer sk-provider');
  });
});

describe('routing and parse errors', () => {
  test('unknown path is 404 in OpenAI error shape', async () => {
    const res = await post('/nope', { model: 'fault:ok' });
    assert.equal(res.status, 404);
    assert.equal(((await json(res))['error'] as Json)['type'], 'invalid_request_error');
  });

  test('invalid JSON body is 400 in OpenAI error shape', async () => {
    const res = await post('/chat/completions', '{oops');
    assert.equal(res.status, 400);
    assert.equal(((await json(res))['error'] as Json)['code'], 'invalid_json');
  });

  test('an unknown fault behaviour is a loud 400, not a silent ok', async () => {
    const res = await chat('fault:no-such-thing');
    assert.equal(res.status, 400);
    assert.equal(((await json(res))['error'] as Json)['code'], 'unknown_fault');
  });
});

interface ErrorRow {
  model: string;
  status: number;
  /** Expected `error` fields (subset), or the whole body when `whole` is set. */
  error?: Json;
  whole?: Json;
  headers?: Record<string, string | null>;
}

const errorRows: ErrorRow[] = [
  // Plain 429: OpenAI rate-limit body and no Retry-After of any kind.
  {
    model: 'fault:429',
    status: 429,
    error: { type: 'requests', code: 'rate_limit_exceeded', param: null },
    headers: { 'retry-after': null, 'retry-after-ms': null },
  },
  // Retry-After in seconds.
  { model: 'fault:429-retry-after-7', status: 429, error: { code: 'rate_limit_exceeded' }, headers: { 'retry-after': '7' } },
  // OpenAI's millisecond variant.
  { model: 'fault:429-retry-after-ms-1500', status: 429, headers: { 'retry-after-ms': '1500', 'retry-after': null } },
  // 5xx are server_error.
  { model: 'fault:500', status: 500, error: { type: 'server_error' } },
  { model: 'fault:502', status: 502, error: { type: 'server_error' } },
  { model: 'fault:503', status: 503, error: { type: 'server_error' } },
  { model: 'fault:504', status: 504, error: { type: 'server_error' } },
  // 529 uses Anthropic's overloaded body.
  { model: 'fault:529', status: 529, whole: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } },
  // Auth and permission failures.
  { model: 'fault:401', status: 401, error: { type: 'invalid_request_error', code: 'invalid_api_key' } },
  { model: 'fault:403', status: 403, error: { type: 'permission_denied' } },
  // Other client errors.
  { model: 'fault:404', status: 404, error: { type: 'invalid_request_error' } },
  { model: 'fault:422', status: 422, error: { type: 'invalid_request_error' } },
  { model: 'fault:400', status: 400, error: { code: 'invalid_request' } },
  // Context window overflow: a 400 a fallback chain may want to treat specially.
  { model: 'fault:context-length', status: 400, error: { type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } },
  // Safety rejection.
  {
    model: 'fault:content-policy',
    status: 400,
    error: { message: 'Your request was rejected as a result of our safety system.', param: null, code: 'content_policy_violation' },
  },
];

describe('error statuses', () => {
  for (const row of errorRows) {
    for (const stream of [false, true]) {
      test(`${row.model} ${stream ? 'stream' : 'non-stream'} → ${row.status}`, async () => {
        const res = await chat(row.model, { stream });
        assert.equal(res.status, row.status);
        const body = await json(res);
        if (row.whole) assert.deepEqual(body, row.whole);
        for (const [key, value] of Object.entries(row.error ?? {})) assert.deepEqual((body['error'] as Json)[key], value, key);
        for (const [name, value] of Object.entries(row.headers ?? {})) assert.equal(res.headers.get(name), value, name);
      });
    }
  }

  test('429-retry-after-date-60 sends an HTTP date about 60s ahead', async () => {
    const res = await chat('fault:429-retry-after-date-60');
    assert.equal(res.status, 429);
    const header = res.headers.get('retry-after') ?? '';
    assert.doesNotMatch(header, /^\d+$/);
    const ahead = Date.parse(header) - Date.now();
    assert.ok(ahead > 55_000 && ahead <= 60_000, `retry-after ${header} is ${ahead}ms ahead`);
  });
});

describe('-then-ok sequences', () => {
  test('500-then-ok fails once, then succeeds', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await chat('fault:500-then-ok#seq')).status);
    assert.deepEqual(statuses, [500, 200, 200]);
  });

  test('503x2-then-ok fails twice; a different tag has its own counter', async () => {
    const a = [];
    for (let i = 0; i < 3; i++) a.push((await chat('fault:503x2-then-ok#a', { stream: true })).status);
    assert.deepEqual(a, [503, 503, 200]);
    assert.equal((await chat('fault:503x2-then-ok#b')).status, 503);
  });

  test('429-retry-after-1-then-ok keeps the Retry-After on the failing attempt', async () => {
    const first = await chat('fault:429-retry-after-1-then-ok#ra');
    assert.equal(first.status, 429);
    assert.equal(first.headers.get('retry-after'), '1');
    assert.equal((await chat('fault:429-retry-after-1-then-ok#ra')).status, 200);
  });

  test('reset() clears requests, counters and closedEarly', async () => {
    await chat('fault:500-then-ok#reset');
    assert.equal(up.requestsFor('fault:500-then-ok#reset').length, 1);
    up.reset();
    assert.equal(up.requests.length, 0);
    assert.equal(up.closedEarly.length, 0);
    assert.equal((await chat('fault:500-then-ok#reset')).status, 500);
  });
});

describe('connection faults', () => {
  test('reset destroys the socket: fetch rejects', async () => {
    await assert.rejects(chat('fault:reset'), TypeError);
    await assert.rejects(chat('fault:reset', { stream: true }), TypeError);
    assert.equal(up.requestsFor('fault:reset').length, 2);
    assert.equal(up.closedEarly.includes('fault:reset'), false); // the server closed it, not the client
  });

  test('reset-then-ok: first attempt is a dropped connection, then ok', async () => {
    await assert.rejects(chat('fault:reset-then-ok#r'), TypeError);
    assert.equal((await chat('fault:reset-then-ok#r')).status, 200);
  });

  test('silent never answers; aborting the client shows up in closedEarly', async () => {
    const model = 'fault:silent#abort';
    const controller = new AbortController();
    const pending = chat(model, { stream: true }, { signal: controller.signal });
    await up.waitForRequest(model);
    controller.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    await up.waitForClosedEarly(model);
    assert.deepEqual(
      up.closedEarly.filter((m) => m === model),
      [model],
    );
  });

  test('stall-after-2 sends two events then goes quiet until the client gives up', async () => {
    const model = 'fault:stall-after-2#s';
    const controller = new AbortController();
    const res = await chat(model, { stream: true }, { signal: controller.signal });
    const reader = res.body!.getReader();
    const payloads = await readEvents(reader, 2);
    assert.equal(payloads.length, 2);
    assert.equal(streamedContent(parsePayloads(payloads)), 'Hello');
    controller.abort();
    await up.waitForClosedEarly(model);
  });

  test('stall-after non-stream sends headers and no body', async () => {
    const model = 'fault:stall-after-0#ns';
    const controller = new AbortController();
    const res = await chat(model, {}, { signal: controller.signal });
    assert.equal(res.status, 200);
    controller.abort();
    await up.waitForClosedEarly(model);
  });

  test('slow-first-token-50 delays the content, not the headers', async () => {
    const started = performance.now();
    const res = await chat('fault:slow-first-token-50', { stream: true });
    const headersAt = performance.now() - started;
    const chunks = parsePayloads(ssePayloads(await res.text()));
    const doneAt = performance.now() - started;
    assert.equal(streamedContent(chunks), 'Hello from fault:slow-first-token-50');
    assert.ok(doneAt >= 45, `stream finished after ${doneAt}ms`);
    assert.ok(headersAt < doneAt, 'headers arrived before the content');

    const plainStart = performance.now();
    assert.equal((await chat('fault:slow-first-token-50')).status, 200);
    assert.ok(performance.now() - plainStart >= 45);
  });

  test('aborting a slow request clears its timer (a leaked 10-minute timer would keep the process alive)', async () => {
    const model = 'fault:slow-first-token-600000#abort';
    const controller = new AbortController();
    const res = await chat(model, { stream: true }, { signal: controller.signal }); // headers arrive at once
    controller.abort();
    await assert.rejects(res.text());
    await up.waitForClosedEarly(model);
  });
});

describe('close()', () => {
  test('ends in-flight silent and slow requests and leaves no open sockets', async () => {
    const own = await startFaultUpstream();
    const slow = await fetch(`${own.url}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'fault:slow-first-token-600000', stream: true }),
    });
    const silent = fetch(`${own.url}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'fault:silent' }) });
    const silentFails = assert.rejects(silent); // attached now: close() makes it reject at once
    const slowFails = assert.rejects(slow.text());
    await own.waitForRequest('fault:silent');
    await own.close();
    await Promise.all([silentFails, slowFails]);
    assert.equal(own.openConnections(), 0);
    assert.deepEqual(own.closedEarly, []); // server-side shutdown is not the client closing early
  });
});

describe('broken streams', () => {
  test('cut-after-2 stream: role chunk and first content chunk, then the connection dies', async () => {
    const res = await chat('fault:cut-after-2', { stream: true });
    assert.equal(res.status, 200);
    const { text, error } = await readUntilError(res);
    assert.ok(error, 'body read fails');
    const payloads = ssePayloads(text);
    assert.equal(payloads.length, 2);
    assert.equal(payloads.includes('[DONE]'), false);
    assert.equal(streamedContent(parsePayloads(payloads)), 'Hello');
  });

  test('cut-after non-stream: half a JSON body, then the connection dies', async () => {
    const res = await chat('fault:cut-after-1');
    assert.equal(res.status, 200);
    const { text, error } = await readUntilError(res);
    assert.ok(error, 'body read fails');
    assert.ok(text.startsWith('{"id":"chatcmpl-'));
    assert.throws(() => JSON.parse(text));
  });

  test('malformed stream: one bad event in the middle, the rest intact and [DONE]', async () => {
    const payloads = ssePayloads(await (await chat('fault:malformed', { stream: true })).text());
    assert.equal(payloads.at(-1), '[DONE]');
    const bad = payloads.filter((p) => p !== '[DONE]' && !isJson(p));
    assert.deepEqual(bad, ['{not json']);
    const badIndex = payloads.indexOf('{not json');
    assert.ok(badIndex > 0 && badIndex < payloads.length - 2, 'in the middle');
    const good = parsePayloads(payloads.filter((p) => p !== '{not json'));
    assert.equal(streamedContent(good), 'Hello from fault:malformed');
  });

  test('malformed non-stream: 200 with invalid JSON', async () => {
    const res = await chat('fault:malformed');
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(text, '{"choices": [');
  });

  test('no-done: a complete stream that ends cleanly without [DONE]', async () => {
    const payloads = ssePayloads(await (await chat('fault:no-done', { stream: true })).text());
    assert.notEqual(payloads.at(-1), '[DONE]');
    assert.equal(firstChoice(parsePayloads(payloads).at(-1)!)['finish_reason'], 'stop');
  });

  test('error-event: a 200 stream carrying one error event', async () => {
    const res = await chat('fault:error-event', { stream: true });
    assert.equal(res.status, 200);
    const chunks = parsePayloads(ssePayloads(await res.text()));
    assert.deepEqual(chunks, [{ error: { message: 'upstream exploded', type: 'server_error', code: null } }]);
  });

  test('empty-stream: 200 headers and no events', async () => {
    const res = await chat('fault:empty-stream', { stream: true });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });

  test('content-filter-finish: non-stream finish_reason, stream finishes in the first chunk', async () => {
    const plain = await json(await chat('fault:content-filter-finish'));
    assert.equal(firstChoice(plain)['finish_reason'], 'content_filter');
    const payloads = ssePayloads(await (await chat('fault:content-filter-finish', { stream: true })).text());
    assert.equal(payloads.at(-1), '[DONE]');
    const chunks = parsePayloads(payloads);
    assert.equal(chunks.length, 1);
    assert.deepEqual(firstChoice(chunks[0]!), { index: 0, delta: { role: 'assistant', content: '' }, finish_reason: 'content_filter' });
  });
});

describe('bookkeeping', () => {
  test('waitForRequest resolves for an already-recorded request and for the nth one', async () => {
    await chat('fault:ok#wait');
    const first = await up.waitForRequest('fault:ok#wait');
    assert.equal(first.model, 'fault:ok#wait');
    const second = up.waitForRequest('fault:ok#wait', 2);
    await chat('fault:ok#wait');
    assert.notEqual(await second, first);
  });

  test('openConnections counts a connection held by a silent request', async () => {
    const model = 'fault:silent#count';
    const controller = new AbortController();
    const pending = chat(model, {}, { signal: controller.signal });
    await up.waitForRequest(model);
    assert.ok(up.openConnections() >= 1);
    controller.abort();
    await assert.rejects(pending);
    await up.waitForClosedEarly(model);
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
