// The official OpenAI SDK (v7) pointed at the proxy: what an application actually
// sees. Success, fallback, streams (including the mid-stream failures that MUST raise
// rather than return a truncated answer), embeddings, legacy completions, and the
// SDK's typed errors.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFaultUpstream, type FaultUpstream } from '../support/fault-upstream.ts';
import { startProxy, chainYaml, type ProxyHarness } from '../support/proxy-harness.ts';

let up: FaultUpstream;
let proxy: ProxyHarness;
let client: OpenAI;

// One chain per test: name -> step models (`fault:<behaviour>#<chain>-<i>`).
const CHAINS: Record<string, Array<{ fault: string; timeouts?: { idleMs?: number } }>> = {
  'sdk-ok': [{ fault: 'ok' }],
  'sdk-fallback': [{ fault: '503' }, { fault: 'ok' }],
  'sdk-stream': [{ fault: 'ok' }],
  // No step after the broken one: nothing can carry the answer on (resumes: stream-resume.test.ts).
  'sdk-cut': [{ fault: 'cut-after-2' }],
  'sdk-stall': [{ fault: 'stall-after-2', timeouts: { idleMs: 200 } }],
  'sdk-embed': [{ fault: 'ok' }],
  'sdk-legacy': [{ fault: 'ok' }],
  'sdk-unprocessable': [{ fault: '422' }, { fault: 'ok' }],
};

const model = (chain: string, step: number): string => `fault:${CHAINS[chain]?.[step]?.fault ?? 'missing'}#${chain}-${step}`;
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }];

before(async () => {
  up = await startFaultUpstream();
  const config = Object.entries(CHAINS)
    .map(([name, steps]) =>
      chainYaml({
        name,
        baseURL: up.url,
        steps: steps.map((s, i) => ({ model: model(name, i), ...(s.timeouts ? { timeouts: s.timeouts } : {}) })),
      }),
    )
    .join('\n---\n');
  proxy = await startProxy({ config });
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await proxy.close();
  await up.close();
});

/** Reads a stream to its end, keeping the content that arrived before any error. */
async function drain(stream: AsyncIterable<OpenAI.Chat.ChatCompletionChunk>, into: { content: string }): Promise<void> {
  for await (const chunk of stream) into.content += chunk.choices[0]?.delta?.content ?? '';
}

describe('the OpenAI SDK through the proxy', { timeout: 20_000 }, () => {
  test('a non-stream chat completion returns the first step answer', async () => {
    const completion = await client.chat.completions.create({ model: 'sdk-ok', messages });
    assert.equal(completion.choices[0]?.message.content, `Hello from ${model('sdk-ok', 0)}`);
    assert.equal(completion.model, model('sdk-ok', 0));
  });

  test('a 503 on the first step is answered by the second, and the headers say so', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'sdk-fallback', messages }).withResponse();
    assert.equal(data.choices[0]?.message.content, `Hello from ${model('sdk-fallback', 1)}`);
    assert.equal(response.headers.get('x-llm-fallback-chain'), 'sdk-fallback');
    assert.equal(response.headers.get('x-llm-fallback-provider'), 'mock');
    assert.equal(response.headers.get('x-llm-fallback-model'), model('sdk-fallback', 1));
    assert.equal(response.headers.get('x-llm-fallback-attempts'), `mock/${model('sdk-fallback', 0)}=serverError, mock/${model('sdk-fallback', 1)}=ok`);
    assert.equal(up.requestsFor(model('sdk-fallback', 0)).length, 1);
  });

  test('a stream is iterated to the end with the whole content', async () => {
    const stream = await client.chat.completions.create({ model: 'sdk-stream', messages, stream: true });
    const got = { content: '' };
    await drain(stream, got);
    assert.equal(got.content, `Hello from ${model('sdk-stream', 0)}`);
  });

  // A stream broken after the first byte that no step can carry on: the SDK must raise, never return a truncated answer.
  const midStream = [
    // The upstream connection is cut after two events.
    { chain: 'sdk-cut', code: 'upstream_stream_cut' },
    // The upstream falls silent after two events for longer than idleMs.
    { chain: 'sdk-stall', code: 'upstream_stalled' },
  ];
  for (const { chain, code } of midStream) {
    test(`a stream that breaks mid-way (${code}) raises APIError after the first content`, async () => {
      const stream = await client.chat.completions.create({ model: chain, messages, stream: true });
      const got = { content: '' };
      await assert.rejects(drain(stream, got), (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
        assert.equal(error.code, code);
        return true;
      });
      assert.equal(got.content, 'Hello', 'the content before the break arrived');
    });
  }

  test('embeddings pass through a chain', async () => {
    const result = await client.embeddings.create({ model: 'sdk-embed', input: 'hello world' });
    assert.equal(result.data.length, 1);
    assert.deepEqual(result.data[0]?.embedding, [0.1, 0.2, 0.3]);
    assert.equal(up.requestsFor(model('sdk-embed', 0))[0]?.path, '/v1/embeddings');
  });

  test('legacy completions pass through a chain', async () => {
    const completion = await client.completions.create({ model: 'sdk-legacy', prompt: 'Say hello' });
    assert.equal(completion.choices[0]?.text, `Hello from ${model('sdk-legacy', 0)}`);
    assert.equal(up.requestsFor(model('sdk-legacy', 0))[0]?.path, '/v1/completions');
  });

  test('an unknown model raises NotFoundError listing the known chains', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-chain', messages }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError, `expected NotFoundError, got ${String(error)}`);
      assert.equal(error.status, 404);
      assert.match(error.message, /Known chains: .*sdk-ok/);
      return true;
    });
  });

  test("an upstream 422 (the caller's fault) raises UnprocessableEntityError, with no fallback", async () => {
    await assert.rejects(client.chat.completions.create({ model: 'sdk-unprocessable', messages }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.UnprocessableEntityError, `expected UnprocessableEntityError, got ${String(error)}`);
      assert.equal(error.status, 422);
      assert.equal(error.code, 'unprocessable_entity');
      return true;
    });
    assert.equal(up.requestsFor(model('sdk-unprocessable', 1)).length, 0);
  });
});
