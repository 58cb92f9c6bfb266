// Issue 12, findings 7, 8 and 9, through the real proxy with the official SDKs:
// - a deeply nested body is the caller's error (400 in the caller's shape), never a 5xx and
//   never counted against an upstream;
// - a step model with non-Latin-1 characters (`qwen-中文-chat`) answers 200, its name
//   percent-encoded in the x-llm-fallback-* headers, for JSON answers, streams and failures;
// - when every step failed and the last upstream answered `200 {"error": …}`, the caller gets
//   an error status (502), so the SDKs raise.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness } from '../support/proxy-harness.ts';

const CJK_MODEL = 'qwen-中文-chat';

let up: FaultUpstream;
let proxy: ProxyHarness;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  up = await startFaultUpstream();
  const chains = [
    chainYaml({ name: 'plain', baseURL: up.url, steps: [{ model: 'fault:ok#plain' }], circuitBreaker: { failureThreshold: 1 } }),
    chainYaml({ name: 'cjk', baseURL: up.url, steps: [{ model: CJK_MODEL }] }),
    chainYaml({ name: 'cjk-fallback', baseURL: up.url, steps: [{ model: 'fault:503#中文' }, { model: CJK_MODEL }] }),
    chainYaml({ name: 'cjk-failing', baseURL: up.url, steps: [{ model: 'fault:503#中文-失败' }] }),
    chainYaml({ name: 'error-in-200', baseURL: up.url, steps: [{ model: 'fault:500#e200' }, { model: 'fault:error-event#e200' }] }),
    JSON.stringify({
      apiVersion: 'llmfallback.io/v1alpha1',
      kind: 'FallbackChain',
      metadata: { name: 'anthropic-only' },
      spec: { providers: [{ name: 'claude', api: 'anthropic', baseURL: up.url }], steps: [{ provider: 'claude', model: 'claude-x' }] },
    }),
  ];
  proxy = await startProxy({ config: chains.join('\n---\n') });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0, timeout: 15_000 });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await up?.close();
  await proxy?.close();
});

const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }];

/** `depth` nested arrays around a 0, built without recursion. */
function nested(depth: number): string {
  return `${'['.repeat(depth)}0${']'.repeat(depth)}`;
}

async function metricsText(): Promise<string> {
  return (await fetch(`${proxy.adminUrl}/metrics`)).text();
}

describe("finding 7: deeply nested JSON is the caller's error", { timeout: 30_000 }, () => {
  test("10 000 levels in a chat request: 400 json_too_deep in OpenAI's shape, no upstream call, no failure counted", async () => {
    up.reset();
    const body = `{"model":"plain","messages":[{"role":"user","content":"hi"}],"metadata":${nested(10_000)}}`;
    const res = await fetch(`${proxy.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 400);
    const error = ((await res.json()) as { error: Record<string, unknown> }).error;
    assert.equal(error['code'], 'json_too_deep');
    assert.equal(error['type'], 'invalid_request_error');
    assert.match(String(error['message']), /more than 128 levels/);
    assert.equal(up.requests.length, 0, 'no upstream was called');
    const metrics = await metricsText();
    assert.doesNotMatch(metrics, /llm_fallback_attempts_total\{[^}]*chain="plain"/, 'no attempt was recorded');
    assert.match(metrics, /llm_fallback_rejected_requests_total\{code="json_too_deep"\} 1/);
    // The breaker (threshold 1) did not count it: the next request is served.
    const ok = await openai.chat.completions.create({ model: 'plain', messages });
    assert.equal(ok.choices[0]?.message.content, 'Hello from fault:ok#plain');
    // Nesting up to the limit (126 levels of metadata inside the body's own object: 127 in all) is served.
    const deepest = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"model":"plain","messages":[{"role":"user","content":"hi"}],"metadata":${nested(126)}}`,
    });
    assert.equal(deepest.status, 200);
  });

  test("on /v1/messages: 400 invalid_request_error in Anthropic's shape (the SDKs cannot even serialise such a body)", async () => {
    up.reset();
    const body = `{"model":"plain","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"metadata":${nested(10_000)}}`;
    const res = await fetch(`${proxy.apiUrl}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 400);
    const reply = (await res.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(reply.type, 'error');
    assert.equal(reply.error.type, 'invalid_request_error');
    assert.match(reply.error.message, /more than 128 levels/);
    assert.equal(up.requests.length, 0);
  });
});

describe("finding 7: a request no step can carry is the caller's error too", { timeout: 30_000 }, () => {
  test('embeddings asked of a chain of Anthropic-format steps: 400 request_not_servable, counted as a client error, not 503', async () => {
    up.reset();
    const res = await fetch(`${proxy.baseURL}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'anthropic-only', input: 'hi' }),
    });
    assert.equal(res.status, 400);
    const error = ((await res.json()) as { error: { code: string; llm_fallback: { attempts: Array<{ reason: string }> } } }).error;
    assert.equal(error.code, 'request_not_servable');
    assert.match(error.llm_fallback.attempts[0]?.reason ?? '', /served by OpenAI-format upstreams only/);
    assert.equal(up.requests.length, 0);
    assert.match(await metricsText(), /llm_fallback_requests_total\{chain="anthropic-only",outcome="client_error"\} 1/);
  });
});

describe('finding 8: a step model with non-Latin-1 characters', { timeout: 30_000 }, () => {
  test(`${CJK_MODEL} answers 200 through the OpenAI SDK, its name percent-encoded in the headers`, async () => {
    const { data, response } = await openai.chat.completions.create({ model: 'cjk', messages }).withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.choices[0]?.message.content, `Hello from ${CJK_MODEL}`);
    assert.equal(response.headers.get('x-llm-fallback-model'), 'qwen-%E4%B8%AD%E6%96%87-chat');
    assert.equal(decodeURIComponent(response.headers.get('x-llm-fallback-model') ?? ''), CJK_MODEL);
    assert.equal(response.headers.get('x-llm-fallback-attempts'), 'mock/qwen-%E4%B8%AD%E6%96%87-chat=ok');
  });

  test('as a stream, and after a fallback from another non-Latin-1 model', async () => {
    const { data: stream, response } = await openai.chat.completions.create({ model: 'cjk-fallback', messages, stream: true }).withResponse();
    let content = '';
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(content, `Hello from ${CJK_MODEL}`);
    assert.equal(response.headers.get('x-llm-fallback-attempts'), 'mock/fault:503#%E4%B8%AD%E6%96%87=serverError, mock/qwen-%E4%B8%AD%E6%96%87-chat=ok');
  });

  test('through the Anthropic SDK', async () => {
    const { data, response } = await anthropic.messages.create({ model: 'cjk', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.content[0]?.type === 'text' ? data.content[0].text : undefined, `Hello from ${CJK_MODEL}`);
    assert.equal(decodeURIComponent(response.headers.get('x-llm-fallback-model') ?? ''), CJK_MODEL);
  });

  test("a chain whose every step fails still answers with the upstream's error, headers encoded", async () => {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'cjk-failing', messages }),
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('x-llm-fallback-attempts'), 'mock/fault:503#%E4%B8%AD%E6%96%87-%E5%A4%B1%E8%B4%A5=serverError');
    const body = (await res.json()) as { error: { llm_fallback: { attempts: Array<{ model: string }> } } };
    assert.equal(body.error.llm_fallback.attempts[0]?.model, 'fault:503#中文-失败', 'the body keeps the name as it is');
  });

  test('headerSafe: printable ASCII unchanged; other characters, %, comma and = percent-encoded, reversibly', async () => {
    const { headerSafe } = await import('../../src/server/headers.ts');
    for (const name of ['gpt-4o-mini', 'meta-llama/Llama-3.1-70B-Instruct', 'qwen-中文-chat', 'a,b=c%d', 'x\r\ny', 'é😀']) {
      const safe = headerSafe(name);
      assert.match(safe, /^[\x20-\x7e]*$/);
      assert.doesNotMatch(safe, /[,=]/);
      assert.equal(decodeURIComponent(safe), name);
    }
    assert.equal(headerSafe('gpt-4o-mini'), 'gpt-4o-mini');
  });
});

describe('finding 9: an error is never a 2xx', { timeout: 30_000 }, () => {
  test('every step failed and the last answered 200 {"error": …}: the caller gets 502 with that body, and the SDKs raise', async () => {
    const res = await fetch(`${proxy.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'error-in-200', messages }),
    });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: { message: string; llm_fallback: { attempts: unknown[] } } };
    assert.equal(body.error.message, 'upstream exploded');
    assert.equal(body.error.llm_fallback.attempts.length, 2);
    await assert.rejects(
      openai.chat.completions.create({ model: 'error-in-200', messages }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 502,
    );
    // The same for an Anthropic caller.
    await assert.rejects(
      anthropic.messages.create({ model: 'error-in-200', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      (error: unknown) => error instanceof Anthropic.APIError && error.status === 502,
    );
  });
});
