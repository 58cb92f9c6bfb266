// Each codec through its interface — what the server and the request plan call — on the
// translators' golden pairs (test/fixtures/formats/): a caller codec decodes into the golden
// canonical request, an upstream codec sends the golden upstream body to its URL with its key
// header, and a caller and an upstream of the same format pass the body through.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import type { ApiFormat, Target } from '../../src/core/types.ts';
import type { CallerRequest } from '../../src/wire/codec.ts';
import { UnservableRequest } from '../../src/wire/errors.ts';
import { anthropic } from '../../src/wire/anthropic/index.ts';
import { gemini } from '../../src/wire/gemini/index.ts';
import { openAIChat } from '../../src/wire/openai-chat/index.ts';
import { FIXTURES } from '../formats/golden.ts';

type Json = Record<string, unknown>;
const BASE = 'http://127.0.0.1:9/v1';
const KEY = 'k-codec-test';

function pairs(direction: string): Array<{ name: string; input: Json; output: { value: Json; dropped: string[] } }> {
  const dir = `${FIXTURES}${direction}/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.in.json'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.in.json'.length);
      return {
        name,
        input: JSON.parse(readFileSync(`${dir}${f}`, 'utf8')) as Json,
        output: JSON.parse(readFileSync(`${dir}${name}.out.json`, 'utf8')) as { value: Json; dropped: string[] },
      };
    });
}

function target(api: ApiFormat, model: string): Target {
  return {
    index: 0,
    provider: { name: 'p', api, baseURL: BASE, apiKey: KEY, keySource: 'test', headers: {} },
    model,
    retries: 0,
    timeouts: { firstByteMs: 1000, idleMs: 1000, totalMs: 1000 },
    target: `p|${BASE}|${model}`,
  };
}

function openAICall(body: Json): CallerRequest {
  return openAIChat.caller.decode('chat', body, {});
}

describe('OpenAI caller codec -> Anthropic upstream codec', () => {
  for (const pair of pairs('chat-to-anthropic-request')) {
    test(pair.name, () => {
      const call = openAICall(pair.input);
      const prepared = anthropic.upstream.prepare(call, target('anthropic', String(pair.input['model'])));
      assert.deepEqual(JSON.parse(prepared.body), call.stream ? { ...pair.output.value, stream: true } : pair.output.value);
      assert.deepEqual(prepared.dropped, pair.output.dropped);
      assert.equal(prepared.passthrough, false);
      assert.equal(prepared.url, `${BASE}/messages`);
      assert.equal(prepared.headers['x-api-key'], KEY);
      assert.equal(prepared.headers['authorization'], undefined);
    });
  }
});

describe('OpenAI caller codec -> Gemini upstream codec', () => {
  for (const pair of pairs('chat-to-gemini-request')) {
    test(pair.name, () => {
      const call = openAICall(pair.input);
      const model = /\/models\/([^:]+):/.exec(String(pair.output.value['path']))?.[1] ?? '';
      const prepared = gemini.upstream.prepare(call, target('gemini', model));
      assert.equal(prepared.url, `${BASE}${String(pair.output.value['path'])}`);
      assert.deepEqual(JSON.parse(prepared.body), pair.output.value['body']);
      assert.deepEqual(prepared.dropped, pair.output.dropped);
      assert.equal(prepared.headers['x-goog-api-key'], KEY);
    });
  }
});

describe('Anthropic caller codec: decode', () => {
  for (const pair of pairs('anthropic-to-chat-request')) {
    test(pair.name, () => {
      const call = anthropic.caller.decode('messages', pair.input, { 'anthropic-beta': 'tools-2024' });
      assert.ok(!(call.canonical instanceof UnservableRequest));
      assert.deepEqual(call.canonical, pair.output);
      assert.equal(call.format, 'anthropic');
      assert.deepEqual(call.passHeaders, { 'anthropic-beta': 'tools-2024' });
      assert.equal(call.facts.requestedMaxOutput, pair.input['max_tokens']);
      assert.equal(call.facts.stream, pair.input['stream'] === true);
      assert.equal(call.facts.tools, Array.isArray(pair.input['tools']) && pair.input['tools'].length > 0);
    });
  }
});

describe('same format: passthrough', () => {
  test('Anthropic caller -> Anthropic upstream: the body as sent, model substituted, anthropic-beta passed on', () => {
    const body = {
      model: 'chain',
      max_tokens: 50,
      messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }],
    };
    const call = anthropic.caller.decode('messages', body, { 'anthropic-beta': 'b1' });
    assert.ok(call.canonical instanceof UnservableRequest, 'a document block only an Anthropic upstream can carry');
    const prepared = anthropic.upstream.prepare(call, target('anthropic', 'claude-x'));
    assert.deepEqual(JSON.parse(prepared.body), { ...body, model: 'claude-x' });
    assert.equal(prepared.passthrough, true);
    assert.equal(prepared.headers['anthropic-beta'], 'b1');
    assert.throws(() => openAIChat.upstream.prepare(call, target('openai', 'gpt')), UnservableRequest);
  });

  test('OpenAI caller -> OpenAI upstream: the body as sent, a stream always asks for usage', () => {
    const body = { model: 'chain', stream: true, messages: [{ role: 'user', content: 'hi' }] };
    const prepared = openAIChat.upstream.prepare(openAICall(body), target('openai', 'gpt-x'));
    assert.deepEqual(JSON.parse(prepared.body), { ...body, model: 'gpt-x', stream_options: { include_usage: true } });
    assert.equal(prepared.passthrough, true);
    assert.equal(prepared.url, `${BASE}/chat/completions`);
    assert.equal(prepared.headers['authorization'], `Bearer ${KEY}`);
  });

  test('embeddings and completions are OpenAI-format only', () => {
    for (const operation of ['embeddings', 'completions']) {
      const call = openAIChat.caller.decode(operation, { model: 'chain', input: 'x', prompt: 'x' }, {});
      assert.equal(openAIChat.upstream.prepare(call, target('openai', 'm')).url, `${BASE}/${operation}`);
      assert.throws(() => anthropic.upstream.prepare(call, target('anthropic', 'm')), UnservableRequest);
    }
    assert.equal(openAIChat.caller.decode('embeddings', { model: 'c', input: 'x' }, {}).facts.producesOutput, false);
    assert.equal(openAIChat.caller.check('embeddings', { model: 'c', input: 'x', stream: true })?.status, 400);
  });
});

describe('caller codecs write errors in their shape', () => {
  const error = { error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limited' } };
  test('OpenAI: {error}', () => {
    assert.deepEqual(openAIChat.caller.upstreamError(429, error), { error: error.error });
    assert.deepEqual(openAIChat.caller.ownError(429, error), { error: error.error });
  });
  test("Anthropic: {type: 'error', error: {type, message}}", () => {
    const written = anthropic.caller.ownError(429, error);
    assert.equal(written['type'], 'error');
    assert.equal((written['error'] as Json)['type'], 'rate_limit_error');
    assert.equal((written['error'] as Json)['message'], 'slow down');
  });
});
