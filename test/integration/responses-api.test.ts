// The OpenAI Responses API through the proxy, with the official `openai` SDK as the caller
// (`client.responses.create` and `.stream()`, streaming and not, with tools), over
// OpenAI-chat, Anthropic and Responses-API upstreams; and `api: openai-responses` as an
// upstream for Chat and Anthropic callers. The Responses upstream is the strict mock
// (test/support/responses-mock.ts): a field the real API would refuse fails the test there,
// and every stream the proxy writes is checked against the real API's event order.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startProviderMocks, type ProviderMocks } from '../support/provider-mocks.ts';
import { checkResponsesStream, parseResponsesSse, RESPONSES_MOCK_USAGE, startResponsesMock, type ResponsesMock } from '../support/responses-mock.ts';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

type Upstream = 'openai' | 'anthropic' | 'responses';
const UPSTREAMS: Upstream[] = ['openai', 'anthropic', 'responses'];

let mocks: ProviderMocks;
let responsesMock: ResponsesMock;
let proxy: ProxyHarness;
let client: OpenAI;
const chains: Record<string, Array<{ upstream: Upstream; fault: string }>> = {};

function chain(name: string, steps: Array<{ upstream: Upstream; fault: string }>): string {
  chains[name] = steps;
  return name;
}
const model = (name: string, step: number): string => `fault:${chains[name]?.[step]?.fault ?? 'missing'}#${name}-${step}`;

for (const upstream of UPSTREAMS) {
  chain(`text-${upstream}`, [{ upstream, fault: 'ok' }]);
  chain(`tool-${upstream}`, [{ upstream, fault: 'tool' }]);
}
chain('fallback-to-responses', [
  { upstream: 'openai', fault: '503' },
  { upstream: 'responses', fault: 'ok' },
]);
chain('responses-then-anthropic', [
  { upstream: 'responses', fault: '500' },
  { upstream: 'anthropic', fault: 'ok' },
]);
chain('responses-breaks', [{ upstream: 'responses', fault: 'error-after-5' }]);
chain('chat-breaks', [{ upstream: 'openai', fault: 'cut-after-3' }]);
chain('resumed', [
  { upstream: 'openai', fault: 'cut-after-3' },
  { upstream: 'responses', fault: 'ok' },
]);
chain('responses-429', [{ upstream: 'responses', fault: '429' }]);

function chainDocument(name: string, steps: Array<{ upstream: Upstream; fault: string }>): string {
  const used = [...new Set(steps.map((s) => s.upstream))];
  const provider = (u: Upstream): object => ({
    name: u,
    api: u === 'responses' ? 'openai-responses' : u,
    baseURL: u === 'responses' ? responsesMock.url : u === 'anthropic' ? mocks.anthropicURL : mocks.openaiURL,
    apiKey: { env: `${u.toUpperCase()}_TEST_KEY` },
  });
  return JSON.stringify({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: used.map(provider),
      steps: steps.map((s, i) => ({ provider: s.upstream, model: model(name, i), retries: 0 })),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000 },
    },
  });
}

const storeOf = (response: object): unknown => (response as { store?: unknown }).store;

const weatherTool: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

before(async () => {
  mocks = await startProviderMocks();
  responsesMock = await startResponsesMock();
  proxy = await startProxy({
    config: Object.entries(chains)
      .map(([name, steps]) => chainDocument(name, steps))
      .join('\n---\n'),
    env: { OPENAI_TEST_KEY: 'sk-openai-provider-key', ANTHROPIC_TEST_KEY: 'sk-ant-provider-key', RESPONSES_TEST_KEY: 'sk-responses-provider-key' },
  });
  client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await proxy.close();
  await responsesMock.close();
  await mocks.close();
});

/** The raw SSE of a streamed POST /v1/responses, checked against the real API's event order. */
async function rawStream(body: object): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${proxy.baseURL}/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = parseResponsesSse(await res.text());
  checkResponsesStream(events);
  return events;
}

describe('POST /v1/responses with the official SDK', { timeout: 30_000 }, () => {
  for (const upstream of UPSTREAMS) {
    test(`create, not streamed, over an ${upstream} upstream`, async () => {
      const name = `text-${upstream}`;
      const response = await client.responses.create({ model: name, instructions: 'Be brief.', input: 'hi', max_output_tokens: 100, store: true });
      assert.equal(response.object, 'response');
      assert.equal(response.status, 'completed');
      assert.equal(response.output_text, `Hello from ${model(name, 0)}`);
      assert.match(response.id, /^resp_/);
      // `store` is in the API reference's response object, not (yet) in the SDK's type.
      assert.equal(storeOf(response), false, 'the sidecar keeps no responses, whatever the caller asked');
      assert.equal(response.instructions, 'Be brief.');
      assert.equal(response.max_output_tokens, 100);
      assert.ok(response.usage && response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
      assert.equal(response.usage.total_tokens, response.usage.input_tokens + response.usage.output_tokens);
    });

    test(`.stream() over an ${upstream} upstream: typed events in order, the final response whole`, async () => {
      const name = `text-${upstream}`;
      const stream = client.responses.stream({ model: name, input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }] });
      const types: string[] = [];
      let text = '';
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'response.output_text.delta') text += event.delta;
      }
      const final = await stream.finalResponse();
      assert.equal(text, `Hello from ${model(name, 0)}`);
      assert.equal(final.output_text, text);
      assert.equal(final.status, 'completed');
      assert.ok(final.usage && final.usage.output_tokens > 0);
      assert.deepEqual(
        [types[0], types[1], types[2], types[3]],
        ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'],
      );
      assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
      await rawStream({ model: name, input: 'hi' });
    });

    test(`a function tool round trip over an ${upstream} upstream, streamed and not`, async () => {
      const name = `tool-${upstream}`;
      const first = await client.responses.create({ model: name, input: 'Weather in Paris?', tools: [weatherTool] });
      const call = first.output.find((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === 'function_call');
      assert.ok(call, `a function_call item in ${JSON.stringify(first.output)}`);
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
      const input: OpenAI.Responses.ResponseInput = [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
      ];
      const second = await client.responses.create({ model: name, input, tools: [weatherTool] });
      assert.equal(second.output_text, 'Tool said: sunny');

      const stream = client.responses.stream({ model: name, input: 'Weather in Paris?', tools: [weatherTool] });
      let args = '';
      for await (const event of stream) if (event.type === 'response.function_call_arguments.delta') args += event.delta;
      const final = await stream.finalResponse();
      const streamed = final.output.find((item) => item.type === 'function_call');
      assert.equal(streamed?.type === 'function_call' ? streamed.arguments : undefined, args);
      assert.deepEqual(JSON.parse(args), { city: 'Paris' });
      await rawStream({ model: name, input: 'Weather in Paris?', tools: [weatherTool] });
    });
  }

  test('a Responses caller on a Responses upstream is passed through: store false upstream, usage as the upstream said', async () => {
    const name = 'text-responses';
    const before = responsesMock.requestsFor(model(name, 0)).length;
    const response = await client.responses.create({ model: name, input: 'hi', store: true, metadata: { app: 'x' } });
    const sent = responsesMock.requestsFor(model(name, 0)).slice(before)[0];
    assert.equal(sent?.body['store'], false);
    assert.deepEqual(sent?.body['metadata'], { app: 'x' });
    assert.equal(storeOf(response), false);
    assert.deepEqual(response.usage, RESPONSES_MOCK_USAGE);
  });

  test('a 503 from an OpenAI-chat step falls back to a Responses step', async () => {
    const { data, response } = await client.responses.create({ model: 'fallback-to-responses', input: 'hi' }).withResponse();
    assert.equal(data.output_text, `Hello from ${model('fallback-to-responses', 1)}`);
    assert.match(response.headers.get('x-llm-fallback-attempts') ?? '', /=serverError, .*=ok$/);
  });

  test('a 500 from a Responses step falls back to Anthropic, streamed', async () => {
    const stream = client.responses.stream({ model: 'responses-then-anthropic', input: 'hi' });
    const final = await stream.finalResponse();
    assert.equal(final.output_text, `Hello from ${model('responses-then-anthropic', 1)}`);
  });

  test('an upstream error reaches the caller as the Responses API error (an APIError of the SDK)', async () => {
    await assert.rejects(client.responses.create({ model: 'responses-429', input: 'hi' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 429);
      assert.equal(error.code, 'rate_limit_exceeded');
      return true;
    });
  });

  test('a stream that breaks and cannot be carried on ends with response.failed', async () => {
    for (const name of ['responses-breaks', 'chat-breaks']) {
      const res = await fetch(`${proxy.baseURL}/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: name, input: 'hi', stream: true }),
      });
      const events = parseResponsesSse(await res.text());
      checkResponsesStream(events);
      const last = events[events.length - 1] as { type: string; response: { status: string; error: { code: string } } };
      assert.equal(last.type, 'response.failed', name);
      assert.equal(last.response.status, 'failed');
      assert.match(last.response.error.code, /^upstream_/);
    }
  });

  test('a stream cut mid-answer is not resumed (a Responses body carries no messages to continue): response.failed, not a truncated answer', async () => {
    const events = await rawStream({ model: 'resumed', input: 'hi' });
    const last = events.at(-1) as { type: string; response: { error: { code: string }; output: Array<{ content: Array<{ text: string }> }> } };
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response.error.code, 'upstream_stream_cut');
    assert.equal(last.response.output[0]?.content[0]?.text, 'Hello from', 'the failed response holds what was delivered');
  });

  test('previous_response_id is a clear 400 in the Responses error shape; so is GET /v1/responses/{id}', async () => {
    await assert.rejects(client.responses.create({ model: 'text-openai', input: 'and then?', previous_response_id: 'resp_123' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.code, 'stateful_request_not_supported');
      assert.equal(error.param, 'previous_response_id');
      assert.match(error.message, /stateless sidecar/);
      return true;
    });
    await assert.rejects(client.responses.retrieve('resp_123'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.code, 'stateful_request_not_supported');
      return true;
    });
    const res = await fetch(`${proxy.baseURL}/responses/resp_123`, { method: 'DELETE' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('a built-in tool can go to a Responses upstream only: a chain without one says so, as a 400', async () => {
    const res = await fetch(`${proxy.baseURL}/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-openai', input: 'hi', tools: [{ type: 'web_search' }] }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; llm_fallback: { attempts: Array<{ reason?: string }> } } };
    assert.equal(body.error.code, 'request_not_servable');
    assert.match(JSON.stringify(body.error.llm_fallback.attempts), /built-in web_search tool, which Responses-API upstreams only can run/);
  });
});

describe('api: openai-responses as an upstream', { timeout: 30_000 }, () => {
  test('a Chat Completions caller, streamed and not, with tools', async () => {
    const completion = await client.chat.completions.create({
      model: 'text-responses',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
      max_tokens: 50,
      stop: ['\n'],
    });
    assert.equal(completion.choices[0]?.message.content, `Hello from ${model('text-responses', 0)}`);
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.usage?.prompt_tokens, RESPONSES_MOCK_USAGE.input_tokens);
    const sent = responsesMock.requestsFor(model('text-responses', 0)).at(-1)?.body;
    assert.equal(sent?.['max_output_tokens'], 50);
    assert.equal(sent?.['store'], false);

    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ];
    const called = await client.chat.completions.create({ model: 'tool-responses', messages: [{ role: 'user', content: 'Weather?' }], tools });
    const call = called.choices[0]?.message.tool_calls?.[0];
    assert.equal(called.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(call && call.type === 'function');
    const answered = await client.chat.completions.create({
      model: 'tool-responses',
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: 'rainy' },
      ],
      tools,
      stream: true,
    });
    let text = '';
    for await (const chunk of answered) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Tool said: rainy');
  });

  test('an Anthropic caller, streamed', async () => {
    const anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0 });
    const stream = anthropic.messages.stream({ model: 'text-responses', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    const message = await stream.finalMessage();
    assert.deepEqual(
      message.content.map((b) => (b.type === 'text' ? b.text : b.type)),
      [`Hello from ${model('text-responses', 0)}`],
    );
    assert.equal(message.stop_reason, 'end_turn');
  });
});
