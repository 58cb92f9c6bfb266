// Wire formats end to end: the official Anthropic and OpenAI SDKs against the proxy, whose
// chains cross mock Anthropic, Gemini and OpenAI-compatible upstreams that speak each
// provider's documented shapes (test/support/provider-mocks.ts). What an app sees: answers,
// streams event by event, tool call round trips, fallback across formats, usage and cost
// after translation, errors in the caller's own shape, and streams that break mid-way.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startProviderMocks, type MockProvider, type MockRequest, type ProviderMocks } from '../support/provider-mocks.ts';
import { startProxy, type LogLine, type ProxyHarness } from '../support/proxy-harness.ts';

type Caller = 'openai' | 'anthropic';
interface StepSpec {
  provider: MockProvider | 'dead';
  fault: string;
  retries?: number;
}

// USD per million tokens, per provider (cached input at its own rate).
const PRICES: Record<MockProvider, { inputPerMTok: number; outputPerMTok: number; cachedInputPerMTok: number }> = {
  anthropic: { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3 },
  gemini: { inputPerMTok: 0.3, outputPerMTok: 2.5, cachedInputPerMTok: 0.075 },
  openai: { inputPerMTok: 0.5, outputPerMTok: 1.5, cachedInputPerMTok: 0.25 },
};

// The mocks' usage (MOCK_USAGE) in the proxy's normalised terms: input includes cached tokens.
// Anthropic: 12 input + 3 cache reads; Gemini: thoughts (2) count as output; OpenAI as reported.
const TOKENS: Record<MockProvider, { input: number; output: number; cachedInput: number }> = {
  anthropic: { input: 15, output: 7, cachedInput: 3 },
  gemini: { input: 20, output: 10, cachedInput: 4 },
  openai: { input: 30, output: 6, cachedInput: 10 },
};

// Cost of one answer: (uncached input × input rate + cached × cached rate + output × output rate) / 1e6.
const COST: Record<MockProvider, { header: string; usd: number }> = {
  anthropic: { header: '0.0001419', usd: 0.0001419 }, // (12×3 + 3×0.3 + 7×15) / 1e6
  gemini: { header: '0.0000301', usd: 0.0000301 }, // (16×0.3 + 4×0.075 + 10×2.5) / 1e6
  openai: { header: '0.0000215', usd: 0.0000215 }, // (20×0.5 + 10×0.25 + 6×1.5) / 1e6
};

const KEYS = { anthropic: 'sk-ant-provider-key', gemini: 'gemini-provider-key', openai: 'sk-openai-provider-key', dead: 'unused' };

let mocks: ProviderMocks;
let proxy: ProxyHarness;
let anthropic: Anthropic;
let openai: OpenAI;
let deadURL: string;
const chains: Record<string, StepSpec[]> = {};

/** Registers a chain (built in before()) and returns its name. */
function chain(name: string, steps: StepSpec[]): string {
  assert.equal(chains[name], undefined, `chain ${name} defined twice`);
  chains[name] = steps;
  return name;
}

/** The model a chain's step sends upstream: `fault:<fault>#<chain>-<i>`. */
const model = (name: string, step: number): string => `fault:${chains[name]?.[step]?.fault ?? 'missing'}#${name}-${step}`;
const providerOf = (name: string, step: number): string => chains[name]?.[step]?.provider ?? 'missing';
const attemptsHeader = (name: string, verdicts: string[]): string => verdicts.map((v, i) => `${providerOf(name, i)}/${model(name, i)}=${v}`).join(', ');

function chainDocument(name: string, steps: StepSpec[]): string {
  const used = [...new Set(steps.map((s) => s.provider))];
  const baseURL = (p: MockProvider | 'dead'): string =>
    p === 'dead' ? deadURL : p === 'anthropic' ? mocks.anthropicURL : p === 'gemini' ? mocks.geminiURL : mocks.openaiURL;
  const api = (p: MockProvider | 'dead'): string => (p === 'dead' ? 'anthropic' : p);
  return JSON.stringify({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: used.map((p) => ({ name: p, api: api(p), baseURL: baseURL(p), apiKey: { env: `${p.toUpperCase()}_TEST_KEY` } })),
      steps: steps.map((s, i) => ({
        provider: s.provider,
        model: model(name, i),
        retries: s.retries ?? 0,
        ...(s.provider === 'dead' ? {} : { price: PRICES[s.provider] }),
      })),
      // Refusals are opted in (contentFiltered in fallbackOn), so they can be seen falling back across formats.
      policy: {
        backoff: { baseMs: 1, maxMs: 20 },
        deadlineMs: 10000,
        fallbackOn: ['rateLimited', 'serverError', 'timeout', 'connection', 'contentFiltered', 'authFailed', 'contextLength'],
      },
    },
  });
}

const user = (content: string): { role: 'user'; content: string } => ({ role: 'user', content });
const newId = (): string => `fmt-${randomUUID()}`;
const withId = (id: string): { headers: Record<string, string> } => ({ headers: { 'x-request-id': id } });

function upstreamRequests(name: string, step: number): MockRequest[] {
  return mocks.requestsFor(model(name, step));
}

function onlyRequest(name: string, step: number): MockRequest {
  const got = upstreamRequests(name, step);
  assert.equal(got.length, 1, `one request to ${model(name, step)}`);
  return got[0] as MockRequest;
}

/** The Anthropic usage an Anthropic caller sees: input excludes cache reads. */
function anthropicUsageOf(p: MockProvider): { input_tokens: number; output_tokens: number; cache_read_input_tokens: number } {
  return { input_tokens: TOKENS[p].input - TOKENS[p].cachedInput, output_tokens: TOKENS[p].output, cache_read_input_tokens: TOKENS[p].cachedInput };
}

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  trailers: NodeJS.Dict<string>;
}

/** A POST with node:http, to see what the SDKs hide: raw SSE bytes and HTTP trailers. */
function rawPost(path: string, body: string | object, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${proxy.apiUrl}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

async function requestLog(id: string): Promise<LogLine> {
  return proxy.requestLog(id);
}

// ---------------------------------------------------------------------------
// Chains. Every test has its own, so the mocks' request records never mix.

// Plain text, every caller through every upstream format, JSON and stream.
const PLAIN: Array<{ caller: Caller; upstream: MockProvider; stream: boolean; name: string; note: string }> = [];
for (const caller of ['openai', 'anthropic'] as const) {
  for (const upstream of ['openai', 'anthropic', 'gemini'] as const) {
    for (const stream of [false, true]) {
      const name = chain(`plain-${caller}-${upstream}-${stream ? 'stream' : 'json'}`, [{ provider: upstream, fault: 'ok' }]);
      const note = caller === upstream ? 'same format: passed through' : `translated ${caller} -> canonical -> ${upstream} and back`;
      PLAIN.push({ caller, upstream, stream, name, note });
    }
  }
}

before(async () => {
  mocks = await startProviderMocks();
  // A port nothing listens on: connections are refused.
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  deadURL = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 9}/v1`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const config = Object.entries(chains)
    .map(([name, steps]) => chainDocument(name, steps))
    .join('\n---\n');
  proxy = await startProxy({
    config,
    env: { ANTHROPIC_TEST_KEY: KEYS.anthropic, GEMINI_TEST_KEY: KEYS.gemini, OPENAI_TEST_KEY: KEYS.openai, DEAD_TEST_KEY: KEYS.dead },
    extraArgs: ['--body-limit', '65536'],
  });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-anthropic-key', maxRetries: 0, timeout: 15_000 });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-openai-key', maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await proxy.close();
  await mocks.close();
});

/** What each upstream must have received: its own format, the provider's key, never the caller's. */
function assertUpstreamShape(upstream: MockProvider, req: MockRequest, stream: boolean): void {
  const headers = JSON.stringify(req.headers);
  assert.ok(!headers.includes('caller-'), 'the caller key never goes upstream');
  if (upstream === 'anthropic') {
    assert.equal(req.url, '/v1/messages');
    assert.equal(req.headers['x-api-key'], KEYS.anthropic);
    assert.equal(req.headers['anthropic-version'], '2023-06-01');
    assert.equal(typeof req.body['max_tokens'], 'number');
    assert.equal(req.body['stream'] === true, stream);
  } else if (upstream === 'gemini') {
    const path = `/v1beta/models/${encodeURIComponent(req.model)}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`;
    assert.equal(req.url, path);
    assert.equal(req.headers['x-goog-api-key'], KEYS.gemini);
    assert.ok(Array.isArray(req.body['contents']));
  } else {
    assert.equal(req.url, '/openai/v1/chat/completions');
    assert.equal(req.headers['authorization'], `Bearer ${KEYS.openai}`);
    assert.ok(Array.isArray(req.body['messages']));
    if (stream) assert.deepEqual(req.body['stream_options'], { include_usage: true });
  }
}

describe('plain text: every caller through every upstream format', { timeout: 30_000 }, () => {
  for (const row of PLAIN) {
    test(`${row.caller} caller -> ${row.upstream} upstream, ${row.stream ? 'stream' : 'JSON'} (${row.note})`, async () => {
      const id = newId();
      const want = `Hello from ${model(row.name, 0)}`;
      if (row.caller === 'anthropic' && !row.stream) {
        const { data, response } = await anthropic.messages
          .create({ model: row.name, max_tokens: 256, system: 'Be brief.', messages: [user('hi')] }, withId(id))
          .withResponse();
        assert.equal(data.type, 'message');
        assert.equal(data.role, 'assistant');
        assert.deepEqual(data.content, [{ type: 'text', text: want }]);
        assert.equal(data.stop_reason, 'end_turn');
        assert.deepEqual(
          { input_tokens: data.usage.input_tokens, output_tokens: data.usage.output_tokens, cache_read_input_tokens: data.usage.cache_read_input_tokens },
          anthropicUsageOf(row.upstream),
        );
        assert.equal(response.headers.get('x-llm-fallback-provider'), row.upstream);
        assert.equal(response.headers.get('x-llm-fallback-model'), model(row.name, 0));
        assert.equal(response.headers.get('x-llm-fallback-cost-usd'), COST[row.upstream].header);
      } else if (row.caller === 'anthropic') {
        const stream = anthropic.messages.stream({ model: row.name, max_tokens: 256, system: 'Be brief.', messages: [user('hi')] }, withId(id));
        const types: string[] = [];
        let text = '';
        for await (const event of stream) {
          types.push(event.type);
          if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
        }
        const final = await stream.finalMessage();
        // Well-formed Anthropic events in order, whatever the upstream spoke (pings are the SDK's to skip).
        assert.deepEqual(types, [
          'message_start',
          'content_block_start',
          'content_block_delta',
          'content_block_delta',
          'content_block_delta',
          'content_block_stop',
          'message_delta',
          'message_stop',
        ]);
        assert.equal(text, want);
        assert.equal(final.stop_reason, 'end_turn');
        assert.deepEqual(
          { input_tokens: final.usage.input_tokens, output_tokens: final.usage.output_tokens, cache_read_input_tokens: final.usage.cache_read_input_tokens },
          anthropicUsageOf(row.upstream),
        );
      } else if (!row.stream) {
        const { data, response } = await openai.chat.completions
          .create({ model: row.name, messages: [{ role: 'system', content: 'Be brief.' }, user('hi')] }, withId(id))
          .withResponse();
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices[0]?.message.content, want);
        assert.equal(data.choices[0]?.finish_reason, 'stop');
        assert.deepEqual(
          { input: data.usage?.prompt_tokens, output: data.usage?.completion_tokens, cachedInput: data.usage?.prompt_tokens_details?.cached_tokens },
          TOKENS[row.upstream],
        );
        assert.equal(response.headers.get('x-llm-fallback-provider'), row.upstream);
        assert.equal(response.headers.get('x-llm-fallback-cost-usd'), COST[row.upstream].header);
      } else {
        const stream = await openai.chat.completions.create(
          { model: row.name, messages: [{ role: 'system', content: 'Be brief.' }, user('hi')], stream: true, stream_options: { include_usage: true } },
          withId(id),
        );
        const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
        for await (const chunk of stream) chunks.push(chunk);
        // Well-formed OpenAI chunks: role first, the text in order, one finish, then the usage chunk.
        assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && typeof c.id === 'string' && typeof c.model === 'string'));
        assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
        assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), want);
        assert.deepEqual(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean), ['stop']);
        const last = chunks[chunks.length - 1];
        assert.deepEqual(last?.choices, []);
        assert.deepEqual(
          { input: last?.usage?.prompt_tokens, output: last?.usage?.completion_tokens, cachedInput: last?.usage?.prompt_tokens_details?.cached_tokens },
          TOKENS[row.upstream],
        );
      }
      const log = await requestLog(id);
      assert.equal(log['outcome'], 'success');
      assert.equal(log['endpoint'], row.caller === 'anthropic' ? 'messages' : 'chat');
      assert.deepEqual(log['tokens'], TOKENS[row.upstream]);
      assert.equal(log['costUSD'], COST[row.upstream].usd);
      assertUpstreamShape(row.upstream, onlyRequest(row.name, 0), row.stream);
    });
  }
});

describe('usage and cost of translated streams', { timeout: 20_000 }, () => {
  const rows = [
    // An Anthropic caller's stream answered by Gemini: the trailer prices Gemini's usage.
    { caller: 'anthropic' as const, upstream: 'gemini' as const, name: chain('trailer-anthropic-gemini', [{ provider: 'gemini', fault: 'ok' }]) },
    // An OpenAI caller's stream answered by Anthropic, without include_usage: usage is still known and priced, and stripped.
    { caller: 'openai' as const, upstream: 'anthropic' as const, name: chain('trailer-openai-anthropic', [{ provider: 'anthropic', fault: 'ok' }]) },
  ];
  for (const row of rows) {
    test(`${row.caller} caller, ${row.upstream} upstream: the cost trailer and the log line price the translated usage`, async () => {
      const id = newId();
      const path = row.caller === 'anthropic' ? '/v1/messages' : '/v1/chat/completions';
      const body =
        row.caller === 'anthropic'
          ? { model: row.name, max_tokens: 100, stream: true, messages: [user('hi')] }
          : { model: row.name, stream: true, messages: [user('hi')] };
      const reply = await rawPost(path, body, { 'x-request-id': id });
      assert.equal(reply.status, 200);
      assert.equal(reply.trailers['x-llm-fallback-cost-usd'], COST[row.upstream].header);
      if (row.caller === 'openai') {
        assert.ok(!reply.text.includes('"usage"'), 'usage stripped: the caller did not ask for it');
        assert.ok(reply.text.endsWith('data: [DONE]\n\n'));
      } else {
        assert.match(reply.text, /^event: message_start\ndata: \{/);
        assert.ok(reply.text.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n'));
      }
      const log = await requestLog(id);
      assert.deepEqual(log['tokens'], TOKENS[row.upstream]);
      assert.equal(log['costUSD'], COST[row.upstream].usd);
    });
  }
});

describe('tool call round trips across formats', { timeout: 30_000 }, () => {
  const rows: Array<{ caller: Caller; upstream: MockProvider; stream: boolean; name: string; note: string }> = [
    // OpenAI tools -> Anthropic tools (input_schema), tool_use -> tool_calls, tool message -> tool_result.
    { caller: 'openai', upstream: 'anthropic', stream: false, name: chain('tool-openai-anthropic', [{ provider: 'anthropic', fault: 'tool' }]), note: 'JSON' },
    // The same as a stream: input_json_delta pieces become tool_calls argument deltas.
    {
      caller: 'openai',
      upstream: 'anthropic',
      stream: true,
      name: chain('tool-openai-anthropic-stream', [{ provider: 'anthropic', fault: 'tool' }]),
      note: 'stream',
    },
    // OpenAI tools -> Gemini functionDeclarations, functionCall -> tool_calls, tool message -> functionResponse by name.
    { caller: 'openai', upstream: 'gemini', stream: false, name: chain('tool-openai-gemini', [{ provider: 'gemini', fault: 'tool' }]), note: 'JSON' },
    // Anthropic tools -> OpenAI tools, tool_calls -> tool_use, tool_result -> tool message.
    { caller: 'anthropic', upstream: 'openai', stream: false, name: chain('tool-anthropic-openai', [{ provider: 'openai', fault: 'tool' }]), note: 'JSON' },
    // The same as a stream: tool_calls deltas become a tool_use block with input_json_delta.
    {
      caller: 'anthropic',
      upstream: 'openai',
      stream: true,
      name: chain('tool-anthropic-openai-stream', [{ provider: 'openai', fault: 'tool' }]),
      note: 'stream',
    },
    // Anthropic tools -> canonical -> Gemini, and functionCall back to tool_use.
    { caller: 'anthropic', upstream: 'gemini', stream: false, name: chain('tool-anthropic-gemini', [{ provider: 'gemini', fault: 'tool' }]), note: 'JSON' },
    // Anthropic to Anthropic: passed through untouched both ways.
    {
      caller: 'anthropic',
      upstream: 'anthropic',
      stream: true,
      name: chain('tool-anthropic-anthropic-stream', [{ provider: 'anthropic', fault: 'tool' }]),
      note: 'stream, passthrough',
    },
  ];
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

  for (const row of rows) {
    test(`${row.caller} caller -> ${row.upstream} upstream (${row.note}): tool definition -> call -> result -> final answer`, async () => {
      let call: { id: string; name: string; input: unknown };
      let final: string;
      if (row.caller === 'openai') {
        const tools: OpenAI.Chat.ChatCompletionTool[] = [
          { type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: schema } },
        ];
        const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [user('Weather in Paris?')];
        let assistant: OpenAI.Chat.ChatCompletionMessage;
        if (row.stream) {
          const stream = await openai.chat.completions.create({ model: row.name, messages, tools, stream: true });
          const toolChunks: OpenAI.Chat.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
          let finish: string | null | undefined;
          for await (const chunk of stream) {
            toolChunks.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
            finish = chunk.choices[0]?.finish_reason ?? finish;
          }
          assert.equal(finish, 'tool_calls');
          assert.ok(toolChunks.length >= 2, 'the arguments arrive as deltas, not buffered');
          const first = toolChunks[0];
          assistant = {
            role: 'assistant',
            content: null,
            refusal: null,
            tool_calls: [
              {
                id: first?.id ?? '',
                type: 'function',
                function: { name: first?.function?.name ?? '', arguments: toolChunks.map((c) => c.function?.arguments ?? '').join('') },
              },
            ],
          };
        } else {
          const answer = await openai.chat.completions.create({ model: row.name, messages, tools });
          assert.equal(answer.choices[0]?.finish_reason, 'tool_calls');
          assistant = answer.choices[0]?.message;
        }
        const toolCall = assistant.tool_calls?.[0];
        assert.ok(toolCall && toolCall.type === 'function');
        call = { id: toolCall.id, name: toolCall.function.name, input: JSON.parse(toolCall.function.arguments) };
        const second = await openai.chat.completions.create({
          model: row.name,
          tools,
          messages: [...messages, assistant, { role: 'tool', tool_call_id: toolCall.id, content: 'Sunny, 21°C' }],
        });
        final = second.choices[0]?.message.content ?? '';
      } else {
        const tools: Anthropic.Tool[] = [
          {
            name: 'get_weather',
            description: 'Weather of a city',
            input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        ];
        const messages: Anthropic.MessageParam[] = [user('Weather in Paris?')];
        const message = row.stream
          ? await anthropic.messages
              .stream({ model: row.name, max_tokens: 256, messages, tools }, { headers: { 'anthropic-beta': 'fine-grained-tool-streaming-2025-05-14' } })
              .finalMessage()
          : await anthropic.messages.create({ model: row.name, max_tokens: 256, messages, tools });
        assert.equal(message.stop_reason, 'tool_use');
        const toolUse = message.content.find((b) => b.type === 'tool_use');
        assert.ok(toolUse && toolUse.type === 'tool_use');
        call = { id: toolUse.id, name: toolUse.name, input: toolUse.input };
        const second = await anthropic.messages.create({
          model: row.name,
          max_tokens: 256,
          tools,
          messages: [
            ...messages,
            { role: 'assistant', content: message.content },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: 'Sunny, 21°C' }] },
          ],
        });
        assert.equal(second.stop_reason, 'end_turn');
        final = second.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      }
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(call.input, { city: 'Paris' });
      assert.ok(call.id !== '', 'the call has an id to answer');
      assert.equal(final, 'Tool said: Sunny, 21°C');

      // The upstream saw the tool definition and then the result, each in its own format.
      const [first, second] = upstreamRequests(row.name, 0);
      assert.ok(first && second, 'two upstream requests');
      if (row.upstream === 'anthropic') {
        assert.deepEqual(first.body['tools'], [{ name: 'get_weather', description: 'Weather of a city', input_schema: schema }]);
        const last = (second.body['messages'] as Array<{ content: unknown }>).at(-1);
        assert.deepEqual(last?.content, [{ type: 'tool_result', tool_use_id: call.id, content: 'Sunny, 21°C' }]);
        if (row.caller === 'anthropic')
          assert.equal(first.headers['anthropic-beta'], 'fine-grained-tool-streaming-2025-05-14', 'anthropic-beta is passed to Anthropic upstreams');
      } else if (row.upstream === 'gemini') {
        assert.deepEqual(first.body['tools'], [
          { functionDeclarations: [{ name: 'get_weather', description: 'Weather of a city', parametersJsonSchema: schema }] },
        ]);
        const contents = second.body['contents'] as Array<{ role: string; parts: unknown[] }>;
        assert.deepEqual(contents.at(-2)?.parts, [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }]);
        assert.deepEqual(contents.at(-1), { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { output: 'Sunny, 21°C' } } }] });
      } else {
        assert.deepEqual(first.body['tools'], [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: schema } }]);
        const tail = (second.body['messages'] as unknown[]).slice(-2);
        assert.deepEqual(tail, [
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
          },
          { role: 'tool', tool_call_id: call.id, content: 'Sunny, 21°C' },
        ]);
      }
    });
  }
});

describe('fallback across formats', { timeout: 30_000 }, () => {
  // `billed`: a filtered answer was produced, so its tokens are billed even though it failed.
  const rows: Array<{ caller: Caller; stream: boolean; name: string; verdicts: string[]; winner: MockProvider; billed?: MockProvider; note: string }> = [
    // Anthropic overloaded (529 overloaded_error) is serverError: an Anthropic caller gets the OpenAI-compatible answer in Anthropic's format.
    {
      caller: 'anthropic',
      stream: false,
      name: chain('fb-anthropic-529-openai-json', [
        { provider: 'anthropic', fault: '529' },
        { provider: 'openai', fault: 'ok' },
      ]),
      verdicts: ['serverError', 'ok'],
      winner: 'openai',
      note: 'Anthropic 529 -> OpenAI-compatible',
    },
    // The same for an OpenAI caller's stream.
    {
      caller: 'openai',
      stream: true,
      name: chain('fb-anthropic-529-openai-stream', [
        { provider: 'anthropic', fault: '529' },
        { provider: 'openai', fault: 'ok' },
      ]),
      verdicts: ['serverError', 'ok'],
      winner: 'openai',
      note: 'Anthropic 529 -> OpenAI-compatible',
    },
    // An overloaded_error event after message_start is still before the first byte: fallback.
    {
      caller: 'anthropic',
      stream: true,
      name: chain('fb-anthropic-event-gemini', [
        { provider: 'anthropic', fault: 'error-event' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      verdicts: ['serverError', 'ok'],
      winner: 'gemini',
      note: 'Anthropic overloaded_error event -> Gemini',
    },
    // OpenAI-compatible 500 -> Gemini, for an OpenAI caller.
    {
      caller: 'openai',
      stream: false,
      name: chain('fb-openai-500-gemini-json', [
        { provider: 'openai', fault: '500' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      verdicts: ['serverError', 'ok'],
      winner: 'gemini',
      note: 'OpenAI-compatible 500 -> Gemini',
    },
    // OpenAI-compatible 429 (rateLimited) -> Gemini, for an Anthropic caller's stream.
    {
      caller: 'anthropic',
      stream: true,
      name: chain('fb-openai-429-gemini-stream', [
        { provider: 'openai', fault: '429' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      verdicts: ['rateLimited', 'ok'],
      winner: 'gemini',
      note: 'OpenAI-compatible 429 -> Gemini',
    },
    // Gemini RESOURCE_EXHAUSTED (429) is rateLimited.
    {
      caller: 'anthropic',
      stream: false,
      name: chain('fb-gemini-429-anthropic', [
        { provider: 'gemini', fault: '429' },
        { provider: 'anthropic', fault: 'ok' },
      ]),
      verdicts: ['rateLimited', 'ok'],
      winner: 'anthropic',
      note: 'Gemini 429 -> Anthropic',
    },
    // A RESOURCE_EXHAUSTED error as Gemini's first stream event is rateLimited too.
    {
      caller: 'openai',
      stream: true,
      name: chain('fb-gemini-event-openai', [
        { provider: 'gemini', fault: 'error-event' },
        { provider: 'openai', fault: 'ok' },
      ]),
      verdicts: ['rateLimited', 'ok'],
      winner: 'openai',
      note: 'Gemini error event -> OpenAI-compatible',
    },
    // Gemini finishReason SAFETY is contentFiltered.
    {
      caller: 'openai',
      stream: false,
      name: chain('fb-gemini-safety-anthropic', [
        { provider: 'gemini', fault: 'filtered' },
        { provider: 'anthropic', fault: 'ok' },
      ]),
      verdicts: ['contentFiltered', 'ok'],
      winner: 'anthropic',
      billed: 'gemini',
      note: 'Gemini SAFETY -> Anthropic',
    },
    // Anthropic stop_reason refusal (stream) is contentFiltered.
    {
      caller: 'anthropic',
      stream: true,
      name: chain('fb-anthropic-refusal-openai', [
        { provider: 'anthropic', fault: 'filtered' },
        { provider: 'openai', fault: 'ok' },
      ]),
      verdicts: ['contentFiltered', 'ok'],
      winner: 'openai',
      billed: 'anthropic',
      note: 'Anthropic refusal -> OpenAI-compatible',
    },
    // Anthropic "prompt is too long" 400 is contextLength.
    {
      caller: 'openai',
      stream: false,
      name: chain('fb-anthropic-context-gemini', [
        { provider: 'anthropic', fault: 'context-length' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      verdicts: ['contextLength', 'ok'],
      winner: 'gemini',
      note: 'Anthropic context length -> Gemini',
    },
    // Gemini "input token count exceeds" 400 is contextLength.
    {
      caller: 'anthropic',
      stream: false,
      name: chain('fb-gemini-context-openai', [
        { provider: 'gemini', fault: 'context-length' },
        { provider: 'openai', fault: 'ok' },
      ]),
      verdicts: ['contextLength', 'ok'],
      winner: 'openai',
      note: 'Gemini context length -> OpenAI-compatible',
    },
  ];
  for (const row of rows) {
    test(`${row.note} (${row.caller} caller, ${row.stream ? 'stream' : 'JSON'}): ${row.verdicts.join(', ')}`, async () => {
      const id = newId();
      const want = `Hello from ${model(row.name, 1)}`;
      let headers: Headers;
      if (row.caller === 'anthropic') {
        if (row.stream) {
          const stream = anthropic.messages.stream({ model: row.name, max_tokens: 100, messages: [user('hi')] }, withId(id));
          const final = await stream.finalMessage();
          assert.deepEqual(final.content, [{ type: 'text', text: want }]);
          headers = (await stream.withResponse()).response.headers;
        } else {
          const { data, response } = await anthropic.messages.create({ model: row.name, max_tokens: 100, messages: [user('hi')] }, withId(id)).withResponse();
          assert.deepEqual(data.content, [{ type: 'text', text: want }]);
          headers = response.headers;
        }
      } else if (row.stream) {
        const { data, response } = await openai.chat.completions.create({ model: row.name, messages: [user('hi')], stream: true }, withId(id)).withResponse();
        let text = '';
        for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
        assert.equal(text, want);
        headers = response.headers;
      } else {
        const { data, response } = await openai.chat.completions.create({ model: row.name, messages: [user('hi')] }, withId(id)).withResponse();
        assert.equal(data.choices[0]?.message.content, want);
        headers = response.headers;
      }
      assert.equal(headers.get('x-llm-fallback-attempts'), attemptsHeader(row.name, row.verdicts));
      assert.equal(headers.get('x-llm-fallback-provider'), row.winner);
      const log = await requestLog(id);
      assert.deepEqual(
        (log['attempts'] as Array<{ outcome: string }>).map((a) => a.outcome),
        row.verdicts,
      );
      // The winner's usage, plus a filtered answer's (billed); an error costs nothing.
      const tokens = { ...TOKENS[row.winner] };
      if (row.billed) for (const key of ['input', 'output', 'cachedInput'] as const) tokens[key] += TOKENS[row.billed][key];
      assert.deepEqual(log['tokens'], tokens);
      assert.equal(log['costUSD'], Math.round((COST[row.winner].usd + (row.billed ? COST[row.billed].usd : 0)) * 1e10) / 1e10);
      assert.equal(upstreamRequests(row.name, 0).length, 1);
    });
  }
});

describe('malformed upstream answers are classified failures, not crashes', { timeout: 30_000 }, () => {
  const rows: Array<{ caller: Caller; name: string; note: string }> = [
    // An Anthropic 200 whose body is cut JSON.
    {
      caller: 'openai',
      name: chain('bad-anthropic-json', [
        { provider: 'anthropic', fault: 'malformed' },
        { provider: 'openai', fault: 'ok' },
      ]),
      note: 'Anthropic: body not JSON',
    },
    // An Anthropic 200 that is JSON but has no content array.
    {
      caller: 'anthropic',
      name: chain('bad-anthropic-shape', [
        { provider: 'anthropic', fault: 'not-an-answer' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      note: 'Anthropic: JSON without content (Anthropic caller, passthrough)',
    },
    // A Gemini 200 whose body is cut JSON.
    {
      caller: 'anthropic',
      name: chain('bad-gemini-json', [
        { provider: 'gemini', fault: 'malformed' },
        { provider: 'anthropic', fault: 'ok' },
      ]),
      note: 'Gemini: body not JSON',
    },
    // A Gemini 200 without candidates or a block reason.
    {
      caller: 'openai',
      name: chain('bad-gemini-shape', [
        { provider: 'gemini', fault: 'not-an-answer' },
        { provider: 'anthropic', fault: 'ok' },
      ]),
      note: 'Gemini: JSON without candidates',
    },
    // An OpenAI-compatible 200 whose body is cut JSON.
    {
      caller: 'anthropic',
      name: chain('bad-openai-json', [
        { provider: 'openai', fault: 'malformed' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      note: 'OpenAI-compatible: body not JSON',
    },
    // An OpenAI-compatible 200 without choices cannot be made into an Anthropic message.
    {
      caller: 'anthropic',
      name: chain('bad-openai-shape', [
        { provider: 'openai', fault: 'not-an-answer' },
        { provider: 'gemini', fault: 'ok' },
      ]),
      note: 'OpenAI-compatible: JSON without choices (Anthropic caller)',
    },
  ];
  for (const row of rows) {
    test(`${row.note}: serverError, then the next step answers`, async () => {
      const id = newId();
      const want = `Hello from ${model(row.name, 1)}`;
      if (row.caller === 'anthropic') {
        const data = await anthropic.messages.create({ model: row.name, max_tokens: 100, messages: [user('hi')] }, withId(id));
        assert.deepEqual(data.content, [{ type: 'text', text: want }]);
      } else {
        const data = await openai.chat.completions.create({ model: row.name, messages: [user('hi')] }, withId(id));
        assert.equal(data.choices[0]?.message.content, want);
      }
      const log = await requestLog(id);
      assert.deepEqual(
        (log['attempts'] as Array<{ outcome: string }>).map((a) => a.outcome),
        ['serverError', 'ok'],
      );
    });
  }

  const streamRows: Array<{ caller: Caller; name: string; note: string }> = [
    // Anthropic passthrough stream with a non-JSON event: dropped, the answer goes on.
    {
      caller: 'anthropic',
      name: chain('bad-anthropic-event', [{ provider: 'anthropic', fault: 'malformed' }]),
      note: 'Anthropic stream to an Anthropic caller',
    },
    // Gemini stream with a non-JSON event, translated for an OpenAI caller.
    { caller: 'openai', name: chain('bad-gemini-event', [{ provider: 'gemini', fault: 'malformed' }]), note: 'Gemini stream to an OpenAI caller' },
    // OpenAI-compatible stream with a non-JSON event, translated for an Anthropic caller.
    {
      caller: 'anthropic',
      name: chain('bad-openai-event', [{ provider: 'openai', fault: 'malformed' }]),
      note: 'OpenAI-compatible stream to an Anthropic caller',
    },
  ];
  for (const row of streamRows) {
    test(`${row.note}: a malformed event is dropped and logged, the answer is whole`, async () => {
      const id = newId();
      let text = '';
      if (row.caller === 'anthropic') {
        const final = await anthropic.messages.stream({ model: row.name, max_tokens: 100, messages: [user('hi')] }, withId(id)).finalMessage();
        text = final.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      } else {
        const stream = await openai.chat.completions.create({ model: row.name, messages: [user('hi')], stream: true }, withId(id));
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      }
      assert.equal(text, `Hello from ${model(row.name, 0)}`);
      const warning = await proxy.waitForLog((l) => l.msg === 'dropped a malformed stream event' && l['requestId'] === id);
      assert.equal(warning['data'], '{not json');
      assert.equal((await requestLog(id))['outcome'], 'success');
    });
  }
});

describe("errors on /v1/messages are in Anthropic's shape", { timeout: 20_000 }, () => {
  const failRows = [
    // The Anthropic upstream's own 529 body, with the attempts added.
    { name: chain('err-anthropic-529', [{ provider: 'anthropic', fault: '529' }]), status: 529, type: 'overloaded_error', note: 'Anthropic 529 as it came' },
    // An OpenAI-compatible 503, rewritten as an Anthropic api_error with the status kept.
    { name: chain('err-openai-503', [{ provider: 'openai', fault: '503' }]), status: 503, type: 'api_error', note: 'OpenAI-compatible 503 rewritten' },
    // Gemini's RESOURCE_EXHAUSTED 429, rewritten as rate_limit_error.
    { name: chain('err-gemini-429', [{ provider: 'gemini', fault: '429' }]), status: 429, type: 'rate_limit_error', note: 'Gemini 429 rewritten' },
    // No upstream ever answered (connection refused): the proxy's own 502 in Anthropic's shape.
    { name: chain('err-dead', [{ provider: 'dead', fault: 'ok' }]), status: 502, type: 'api_error', note: 'no upstream answered' },
  ];
  for (const row of failRows) {
    test(`all steps failed (${row.note}): the Anthropic SDK raises ${row.status} ${row.type} with error.llm_fallback`, async () => {
      await assert.rejects(anthropic.messages.create({ model: row.name, max_tokens: 100, messages: [user('hi')] }), (error: unknown) => {
        assert.ok(error instanceof Anthropic.APIError, `expected APIError, got ${String(error)}`);
        assert.equal(error.status, row.status);
        assert.equal(error.type, row.type);
        const body = error.error as { type: string; error: { llm_fallback: { chain: string; attempts: unknown[] } } };
        assert.equal(body.type, 'error');
        assert.equal(body.error.llm_fallback.chain, row.name);
        assert.equal(body.error.llm_fallback.attempts.length, 1);
        assert.equal(error.headers?.get('x-llm-fallback-chain'), row.name);
        return true;
      });
    });
  }

  test('an unknown model raises NotFoundError (not_found_error) listing the chains', async () => {
    await assert.rejects(anthropic.messages.create({ model: 'no-such-chain', max_tokens: 10, messages: [user('hi')] }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.NotFoundError, `expected NotFoundError, got ${String(error)}`);
      assert.equal(error.type, 'not_found_error');
      assert.match(error.message, /Known chains: .*plain-anthropic-anthropic-json/);
      return true;
    });
  });

  const rawRows = [
    // Anthropic requires max_tokens: the translator's InvalidRequest is a 400 before any upstream call.
    {
      body: { model: 'plain-anthropic-openai-json', messages: [user('hi')] },
      status: 400,
      type: 'invalid_request_error',
      message: /max_tokens/,
      note: 'missing max_tokens',
    },
    // A message role Anthropic does not have.
    {
      body: { model: 'plain-anthropic-openai-json', max_tokens: 10, messages: [{ role: 'tool', content: 'x' }] },
      status: 400,
      type: 'invalid_request_error',
      message: /role/,
      note: 'bad role',
    },
    // A body that is not JSON.
    { body: '{"model": ', status: 400, type: 'invalid_request_error', message: /not valid JSON/, note: 'not JSON' },
    // A body over --body-limit (64 KiB here).
    {
      body: { model: 'plain-anthropic-openai-json', max_tokens: 10, messages: [user('x'.repeat(70_000))] },
      status: 413,
      type: 'request_too_large',
      message: /larger than the limit/,
      note: 'too large',
    },
  ];
  for (const row of rawRows) {
    test(`${row.note}: ${row.status} ${row.type}, and no upstream is called`, async () => {
      const before = mocks.requests.length;
      const reply = await rawPost('/v1/messages', row.body);
      assert.equal(reply.status, row.status);
      const body = JSON.parse(reply.text) as { type: string; error: { type: string; message: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, row.type);
      assert.match(body.error.message, row.message);
      assert.equal(mocks.requests.length, before);
    });
  }
});

// Chains of one step: nothing can carry the broken answer on (resumes: stream-resume.test.ts).
describe('streams that break after the first byte raise in the SDKs', { timeout: 20_000 }, () => {
  const rows: Array<{ name: string; type: string; text: string; code: string; note: string }> = [
    // Anthropic passthrough cut after message_start, block start, ping and two deltas.
    {
      name: chain('cut-anthropic', [{ provider: 'anthropic', fault: 'cut-after-5' }]),
      type: 'api_error',
      text: 'Hello from',
      code: 'upstream_stream_cut',
      note: 'Anthropic upstream cut',
    },
    // An OpenAI-compatible stream cut after the role chunk and two deltas, translated to Anthropic events.
    {
      name: chain('cut-openai', [{ provider: 'openai', fault: 'cut-after-3' }]),
      type: 'api_error',
      text: 'Hello from',
      code: 'upstream_stream_cut',
      note: 'OpenAI-compatible upstream cut',
    },
    // Anthropic overloaded_error after the first deltas: the caller gets overloaded_error.
    {
      name: chain('midfail-anthropic', [{ provider: 'anthropic', fault: 'error-after-5' }]),
      type: 'overloaded_error',
      text: 'Hello from',
      code: 'upstream_error',
      note: 'Anthropic error event mid-stream',
    },
    // Gemini RESOURCE_EXHAUSTED after its first chunk: rate_limit_error.
    {
      name: chain('midfail-gemini', [{ provider: 'gemini', fault: 'error-after-1' }]),
      type: 'rate_limit_error',
      text: 'Hello',
      code: 'upstream_error',
      note: 'Gemini error event mid-stream',
    },
  ];
  for (const row of rows) {
    test(`${row.note}: the Anthropic SDK raises ${row.type} after the first text, with no message_stop`, async () => {
      const id = newId();
      const stream = await anthropic.messages.create({ model: row.name, max_tokens: 100, messages: [user('hi')], stream: true }, withId(id));
      const types: string[] = [];
      let text = '';
      await assert.rejects(
        async () => {
          for await (const event of stream) {
            types.push(event.type);
            if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
          }
        },
        (error: unknown) => {
          assert.ok(error instanceof Anthropic.APIError, `expected APIError, got ${String(error)}`);
          assert.equal(error.type, row.type);
          return true;
        },
      );
      assert.equal(text, row.text);
      assert.ok(!types.includes('message_stop'));
      const log = await requestLog(id);
      assert.equal(log['outcome'], 'stream_failed');
      assert.match(String(log['streamEnd']), new RegExp(`^${row.code}`));
    });
  }

  const cutForOpenAI = chain('cut-anthropic-openai-caller', [{ provider: 'anthropic', fault: 'cut-after-5' }]);
  test('an Anthropic stream cut mid-way raises APIError (upstream_stream_cut) in the OpenAI SDK', async () => {
    const name = cutForOpenAI;
    const stream = await openai.chat.completions.create({ model: name, messages: [user('hi')], stream: true });
    let text = '';
    await assert.rejects(
      async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      },
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, `expected APIError, got ${String(error)}`);
        assert.equal(error.code, 'upstream_stream_cut');
        return true;
      },
    );
    assert.equal(text, 'Hello from');
  });
});

describe('requests a step cannot serve faithfully', { timeout: 20_000 }, () => {
  // Chains are registered while the suites are built, before the proxy starts.
  const skipN = chain('skip-n', [
    { provider: 'anthropic', fault: 'ok' },
    { provider: 'openai', fault: 'ok' },
  ]);
  const skipDocument = chain('skip-document', [
    { provider: 'openai', fault: 'ok' },
    { provider: 'anthropic', fault: 'ok' },
  ]);
  const droppedOnce = chain('dropped-once', [
    { provider: 'anthropic', fault: '500', retries: 1 },
    { provider: 'gemini', fault: 'ok' },
  ]);
  const invalidForAnthropic = chain('invalid-for-anthropic', [
    { provider: 'anthropic', fault: 'ok' },
    { provider: 'openai', fault: 'ok' },
  ]);

  test('n > 1 skips the Anthropic step with the reason; the OpenAI-compatible step answers', async () => {
    const name = skipN;
    const id = newId();
    const { response } = await openai.chat.completions.create({ model: name, messages: [user('hi')], n: 2 }, withId(id)).withResponse();
    assert.equal(response.headers.get('x-llm-fallback-attempts'), attemptsHeader(name, ['skipped', 'ok']));
    const log = await requestLog(id);
    assert.match(String((log['attempts'] as Array<{ reason?: string }>)[0]?.reason), /n > 1/);
    assert.equal(upstreamRequests(name, 0).length, 0);
  });

  test('an Anthropic document block skips the OpenAI-compatible step; the Anthropic step gets it unchanged', async () => {
    const name = skipDocument;
    const id = newId();
    const document: Anthropic.DocumentBlockParam = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'A short document.' } };
    const { data, response } = await anthropic.messages
      .create({ model: name, max_tokens: 100, messages: [{ role: 'user', content: [document, { type: 'text', text: 'Summarise.' }] }] }, withId(id))
      .withResponse();
    assert.deepEqual(data.content, [{ type: 'text', text: `Hello from ${model(name, 1)}` }]);
    assert.equal(response.headers.get('x-llm-fallback-attempts'), attemptsHeader(name, ['skipped', 'ok']));
    const log = await requestLog(id);
    assert.match(String((log['attempts'] as Array<{ reason?: string }>)[0]?.reason), /document blocks/);
    const sent = onlyRequest(name, 1).body['messages'] as Array<{ content: unknown[] }>;
    assert.deepEqual(sent[0]?.content[0], document);
  });

  test("a request found invalid while translating it is a 400 in the caller's shape: no upstream call, no fallback", async () => {
    const id = newId();
    // A tool message without tool_call_id is not a valid Chat request; an OpenAI upstream would say 400 too.
    const body = { model: invalidForAnthropic, messages: [user('hi'), { role: 'tool', content: 'orphan result' }] };
    const reply = await rawPost('/v1/chat/completions', body, { 'x-request-id': id });
    assert.equal(reply.status, 400);
    const error = (JSON.parse(reply.text) as { error: { type: string; message: string; llm_fallback: unknown } }).error;
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /tool_call_id/);
    assert.equal(upstreamRequests(invalidForAnthropic, 0).length + upstreamRequests(invalidForAnthropic, 1).length, 0);
    assert.equal((await requestLog(id))['outcome'], 'client_error');
  });

  test('fields a step cannot honour are logged once per step, however many attempts it gets', async () => {
    const name = droppedOnce;
    const id = newId();
    await openai.chat.completions.create({ model: name, messages: [user('hi')], seed: 7, logit_bias: { '50256': -100 } }, withId(id));
    await requestLog(id);
    assert.equal(upstreamRequests(name, 0).length, 2, 'the Anthropic step was tried twice');
    const warnings = proxy.logs.filter((l) => l.msg === 'request fields dropped: the step cannot honour them' && l['requestId'] === id);
    // Anthropic has neither seed nor logit_bias; Gemini maps seed and drops logit_bias.
    assert.deepEqual(
      warnings.map((w) => [w['model'], w['dropped']]),
      [
        [model(name, 0), ['seed', 'logit_bias']],
        [model(name, 1), ['logit_bias']],
      ],
    );
    assert.equal(upstreamRequests(name, 1)[0]?.body['generationConfig'] !== undefined, true);
  });
});
