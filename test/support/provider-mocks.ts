// Mock upstreams that speak each provider's documented wire format, on 127.0.0.1:
//   Anthropic Messages   POST {anthropicURL}/messages            (x-api-key, anthropic-version)
//   Gemini               POST {geminiURL}/models/<m>:generateContent
//                        POST {geminiURL}/models/<m>:streamGenerateContent?alt=sse  (x-goog-api-key)
//   OpenAI-compatible    POST {openaiURL}/chat/completions        (Authorization: Bearer)
// Shapes follow the public API references: Anthropic's message_start / content_block_* /
// message_delta / message_stop stream with ping, Gemini's alt=sse chunks (\r\n separated)
// with the full usageMetadata on the last, OpenAI's chunks with include_usage.
//
// Like the fault upstream, the request's model picks the behaviour: `fault:<behaviour>[#tag]`
// (for Gemini the model is the one in the URL path). Behaviours:
//   ok             a text answer "Hello from <model>"
//   tool           a call of the request's first tool with {"city":"Paris"}; once the request
//                  carries a tool result, the final answer "Tool said: <result>"
//   <status>       that HTTP status with the provider's error body (429, 500, 503, 529, 401…)
//   context-length the provider's "prompt too long" 400
//   malformed      non-stream: a 200 whose body is not JSON; stream: a non-JSON event mid-way
//   not-an-answer  a 200 JSON body that is not an answer (no content / no candidates / no choices)
//   error-event    stream: the provider's error event before any content (Anthropic:
//                  overloaded_error, Gemini: RESOURCE_EXHAUSTED, OpenAI: server_error)
//   error-after-<N> stream: N events, then the provider's error event
//   filtered       Anthropic stop_reason refusal / Gemini finishReason SAFETY / OpenAI content_filter
//   cut-after-<N>  stream: N events, then the connection is destroyed
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';

export type MockProvider = 'anthropic' | 'gemini' | 'openai';

export interface MockRequest {
  provider: MockProvider;
  /** Path and query as received. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  model: string;
  stream: boolean;
}

export interface ProviderMocks {
  /** baseURL for `api: anthropic` (…/v1). */
  anthropicURL: string;
  /** baseURL for `api: gemini` (…/v1beta). */
  geminiURL: string;
  /** baseURL for `api: openai` (…/openai/v1). */
  openaiURL: string;
  requests: MockRequest[];
  requestsFor(model: string): MockRequest[];
  close(): Promise<void>;
}

/** Token counts each mock reports (the same for every answer), for usage and cost assertions. */
export const MOCK_USAGE = {
  anthropic: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 3, output_tokens: 7 },
  gemini: { promptTokenCount: 20, candidatesTokenCount: 8, thoughtsTokenCount: 2, cachedContentTokenCount: 4, totalTokenCount: 30 },
  openai: { prompt_tokens: 30, completion_tokens: 6, total_tokens: 36, prompt_tokens_details: { cached_tokens: 10 } },
} as const;

type Behaviour =
  | { kind: 'ok' | 'tool' | 'malformed' | 'not-an-answer' | 'error-event' | 'filtered' | 'context-length' }
  | { kind: 'status'; status: number }
  | { kind: 'cut-after' | 'error-after'; n: number };

function behaviourOf(model: string): Behaviour {
  if (!model.startsWith('fault:')) return { kind: 'ok' };
  const name = model.slice('fault:'.length).split('#')[0] ?? '';
  if (/^[45]\d\d$/.test(name)) return { kind: 'status', status: Number(name) };
  const counted = /^(cut-after|error-after)-(\d+)$/.exec(name);
  if (counted) return { kind: counted[1] === 'cut-after' ? 'cut-after' : 'error-after', n: Number(counted[2]) };
  const simple = ['ok', 'tool', 'malformed', 'not-an-answer', 'error-event', 'filtered', 'context-length'] as const;
  const found = simple.find((s) => s === name);
  if (!found) throw new Error(`provider-mocks: unknown behaviour "${name}"`);
  return { kind: found };
}

// ---------------------------------------------------------------------------
// What an answer says, whatever the format

interface Answer {
  text: string;
  /** A tool call instead of (after) the text. */
  call?: { name: string; args: Record<string, unknown> };
  filtered: boolean;
}

function answerFor(provider: MockProvider, behaviour: Behaviour, model: string, body: Record<string, unknown>): Answer {
  if (behaviour.kind === 'filtered') return { text: '', filtered: true };
  if (behaviour.kind !== 'tool') return { text: `Hello from ${model}`, filtered: false };
  const result = toolResultIn(provider, body);
  if (result !== undefined) return { text: `Tool said: ${result}`, filtered: false };
  return { text: '', call: { name: firstToolName(provider, body) ?? 'get_weather', args: { city: 'Paris' } }, filtered: false };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

function firstToolName(provider: MockProvider, body: Record<string, unknown>): string | undefined {
  const tool = list(body['tools'])[0];
  if (!isRecord(tool)) return undefined;
  if (provider === 'anthropic') return typeof tool['name'] === 'string' ? tool['name'] : undefined;
  if (provider === 'openai') return isRecord(tool['function']) && typeof tool['function']['name'] === 'string' ? tool['function']['name'] : undefined;
  const declaration = list(tool['functionDeclarations'])[0];
  return isRecord(declaration) && typeof declaration['name'] === 'string' ? declaration['name'] : undefined;
}

/** The text of the last tool result in the request, if the conversation has one. */
function toolResultIn(provider: MockProvider, body: Record<string, unknown>): string | undefined {
  let found: string | undefined;
  if (provider === 'openai') {
    for (const message of list(body['messages'])) {
      if (isRecord(message) && message['role'] === 'tool')
        found = typeof message['content'] === 'string' ? message['content'] : JSON.stringify(message['content']);
    }
    return found;
  }
  if (provider === 'anthropic') {
    for (const message of list(body['messages'])) {
      for (const block of isRecord(message) ? list(message['content']) : []) {
        if (!isRecord(block) || block['type'] !== 'tool_result') continue;
        const content = block['content'];
        found =
          typeof content === 'string'
            ? content
            : list(content)
                .map((b) => (isRecord(b) ? String(b['text'] ?? '') : ''))
                .join('');
      }
    }
    return found;
  }
  for (const content of list(body['contents'])) {
    for (const part of isRecord(content) ? list(content['parts']) : []) {
      if (!isRecord(part) || !isRecord(part['functionResponse'])) continue;
      const response = part['functionResponse']['response'];
      found = isRecord(response) && typeof response['output'] === 'string' ? response['output'] : JSON.stringify(response);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------
// Anthropic (https://docs.anthropic.com/en/api/messages, /en/docs/build-with-claude/streaming)

const anthropicSse = (data: Record<string, unknown>): string => `event: ${String(data['type'])}\ndata: ${JSON.stringify(data)}\n\n`;

function anthropicMessage(model: string, answer: Answer): Record<string, unknown> {
  const content: unknown[] = [];
  if (answer.text !== '') content.push({ type: 'text', text: answer.text });
  if (answer.call) content.push({ type: 'tool_use', id: 'toolu_01MockWeather', name: answer.call.name, input: answer.call.args });
  const stop = answer.filtered ? 'refusal' : answer.call ? 'tool_use' : 'end_turn';
  return {
    id: 'msg_01MockAnswer',
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { ...MOCK_USAGE.anthropic },
  };
}

function anthropicEvents(model: string, answer: Answer): string[] {
  const { output_tokens: _output, ...inputUsage } = MOCK_USAGE.anthropic;
  const events: Record<string, unknown>[] = [
    {
      type: 'message_start',
      message: {
        id: 'msg_01MockAnswer',
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...inputUsage, output_tokens: 1 },
      },
    },
  ];
  let index = 0;
  if (answer.text !== '') {
    events.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } }, { type: 'ping' });
    for (const piece of splitText(answer.text)) events.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    events.push({ type: 'content_block_stop', index });
    index++;
  }
  if (answer.call) {
    const json = JSON.stringify(answer.call.args);
    const half = Math.floor(json.length / 2);
    events.push(
      { type: 'content_block_start', index, content_block: { type: 'tool_use', id: 'toolu_01MockWeather', name: answer.call.name, input: {} } },
      { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } },
      { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: json.slice(0, half) } },
      { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: json.slice(half) } },
      { type: 'content_block_stop', index },
    );
  }
  const stop = answer.filtered ? 'refusal' : answer.call ? 'tool_use' : 'end_turn';
  events.push(
    { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: MOCK_USAGE.anthropic.output_tokens } },
    { type: 'message_stop' },
  );
  return events.map(anthropicSse);
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

function anthropicError(status: number, message?: string): { status: number; body: unknown; headers: Record<string, string> } {
  const type = ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  const headers: Record<string, string> = status === 429 ? { 'retry-after': '0' } : {};
  return {
    status,
    headers,
    body: { type: 'error', error: { type, message: message ?? (status === 529 ? 'Overloaded' : `mock ${type}`) }, request_id: 'req_01Mock' },
  };
}

// ---------------------------------------------------------------------------
// Gemini (https://ai.google.dev/api/generate-content)

const geminiSse = (data: unknown): string => `data: ${JSON.stringify(data)}\r\n\r\n`;

function geminiCandidate(answer: Answer, finish: boolean, text: string): Record<string, unknown> {
  const parts: unknown[] = [];
  if (text !== '') parts.push({ text });
  if (answer.call && finish) parts.push({ functionCall: { name: answer.call.name, args: answer.call.args } });
  const candidate: Record<string, unknown> = { content: { parts, role: 'model' }, index: 0 };
  if (finish) candidate['finishReason'] = answer.filtered ? 'SAFETY' : 'STOP';
  if (answer.filtered && finish) candidate['safetyRatings'] = [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true }];
  return candidate;
}

function geminiResponse(model: string, answer: Answer): Record<string, unknown> {
  return {
    candidates: [geminiCandidate(answer, true, answer.text)],
    usageMetadata: { ...MOCK_USAGE.gemini },
    modelVersion: model,
    responseId: 'mockResponse01',
  };
}

function geminiEvents(model: string, answer: Answer): string[] {
  const partialUsage = { promptTokenCount: MOCK_USAGE.gemini.promptTokenCount, totalTokenCount: MOCK_USAGE.gemini.promptTokenCount };
  const envelope = { modelVersion: model, responseId: 'mockResponse01' };
  if (answer.text === '') return [geminiSse({ candidates: [geminiCandidate(answer, true, '')], usageMetadata: { ...MOCK_USAGE.gemini }, ...envelope })];
  const pieces = splitText(answer.text);
  return pieces.map((piece, i) => {
    const last = i === pieces.length - 1;
    return geminiSse({ candidates: [geminiCandidate(answer, last, piece)], usageMetadata: last ? { ...MOCK_USAGE.gemini } : partialUsage, ...envelope });
  });
}

const GEMINI_STATUSES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function geminiErrorBody(status: number, message?: string): unknown {
  const code = GEMINI_STATUSES[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
  const text =
    message ??
    (status === 429 ? 'Resource has been exhausted (e.g. check quota).' : status === 503 ? 'The model is overloaded. Please try again later.' : `mock ${code}`);
  return { error: { code: status, message: text, status: code } };
}

// ---------------------------------------------------------------------------
// OpenAI-compatible (https://platform.openai.com/docs/api-reference/chat)

function openAIMessage(answer: Answer): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'assistant', content: answer.call || answer.filtered ? null : answer.text, refusal: null };
  if (answer.call)
    message['tool_calls'] = [{ id: 'call_mockWeather1', type: 'function', function: { name: answer.call.name, arguments: JSON.stringify(answer.call.args) } }];
  return message;
}

const openAIFinish = (answer: Answer): string => (answer.filtered ? 'content_filter' : answer.call ? 'tool_calls' : 'stop');

function openAIResponse(model: string, answer: Answer): Record<string, unknown> {
  return {
    id: 'chatcmpl-mock1',
    object: 'chat.completion',
    created: 1767225600,
    model,
    choices: [{ index: 0, message: openAIMessage(answer), logprobs: null, finish_reason: openAIFinish(answer) }],
    usage: { ...MOCK_USAGE.openai },
  };
}

function openAIEvents(model: string, answer: Answer, includeUsage: boolean): string[] {
  const envelope = { id: 'chatcmpl-mock1', object: 'chat.completion.chunk', created: 1767225600, model };
  const usage = includeUsage ? { usage: null } : {};
  const chunk = (delta: Record<string, unknown>, finish: string | null): unknown => ({
    ...envelope,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...usage,
  });
  const chunks: unknown[] = [chunk({ role: 'assistant', content: '' }, null)];
  for (const piece of answer.text === '' ? [] : splitText(answer.text)) chunks.push(chunk({ content: piece }, null));
  if (answer.call) {
    const json = JSON.stringify(answer.call.args);
    chunks.push(chunk({ tool_calls: [{ index: 0, id: 'call_mockWeather1', type: 'function', function: { name: answer.call.name, arguments: '' } }] }, null));
    chunks.push(chunk({ tool_calls: [{ index: 0, function: { arguments: json.slice(0, 5) } }] }, null));
    chunks.push(chunk({ tool_calls: [{ index: 0, function: { arguments: json.slice(5) } }] }, null));
  }
  chunks.push(chunk({}, openAIFinish(answer)));
  if (includeUsage) chunks.push({ ...envelope, choices: [], usage: { ...MOCK_USAGE.openai } });
  return [...chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`)];
}

function openAIErrorBody(status: number, message?: string): unknown {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message: message ?? `mock ${type}`, type, param: null, code: status === 400 && message ? 'context_length_exceeded' : null } };
}

/** "Hello from <model>" -> ["Hello", " from", " <model>"]. */
function splitText(text: string): string[] {
  return text.split(/(?= )/);
}

// ---------------------------------------------------------------------------
// One exchange

interface Route {
  provider: MockProvider;
  model: string;
  stream: boolean;
}

function routeOf(method: string, url: string, body: Record<string, unknown>): Route | undefined {
  if (method !== 'POST') return undefined;
  const [path = '', query = ''] = url.split('?');
  if (path === '/v1/messages') return { provider: 'anthropic', model: String(body['model'] ?? ''), stream: body['stream'] === true };
  if (path === '/openai/v1/chat/completions') return { provider: 'openai', model: String(body['model'] ?? ''), stream: body['stream'] === true };
  const gemini = /^\/v1beta\/models\/([^/]+):(generateContent|streamGenerateContent)$/.exec(path);
  if (gemini) {
    const stream = gemini[2] === 'streamGenerateContent';
    // Without alt=sse Gemini streams a JSON array; the proxy must always ask for SSE.
    if (stream && !new URLSearchParams(query).has('alt', 'sse')) return undefined;
    return { provider: 'gemini', model: decodeURIComponent(gemini[1] ?? ''), stream };
  }
  return undefined;
}

/** A request the real provider would refuse before looking at the model: missing key or headers. */
function refusal(
  route: Route,
  req: IncomingMessage,
  body: Record<string, unknown>,
): { status: number; body: unknown; headers: Record<string, string> } | undefined {
  if (route.provider === 'anthropic') {
    if (!req.headers['x-api-key']) return anthropicError(401, 'x-api-key header is required');
    if (req.headers['anthropic-version'] !== '2023-06-01') return anthropicError(400, 'anthropic-version header is required');
    if (typeof body['max_tokens'] !== 'number') return anthropicError(400, 'max_tokens: Field required');
    if (!Array.isArray(body['messages'])) return anthropicError(400, 'messages: Field required');
    return undefined;
  }
  if (route.provider === 'gemini') {
    if (!req.headers['x-goog-api-key'])
      return {
        status: 403,
        headers: {},
        body: geminiErrorBody(
          403,
          "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        ),
      };
    if (!Array.isArray(body['contents'])) return { status: 400, headers: {}, body: geminiErrorBody(400, 'contents is required') };
    return undefined;
  }
  if (!String(req.headers['authorization'] ?? '').startsWith('Bearer '))
    return { status: 401, headers: {}, body: openAIErrorBody(401, 'You did not provide an API key.') };
  return undefined;
}

function errorFor(provider: MockProvider, status: number, message?: string): { status: number; body: unknown; headers: Record<string, string> } {
  if (provider === 'anthropic') return anthropicError(status, message);
  if (provider === 'gemini') return { status, headers: {}, body: geminiErrorBody(status, message) };
  return { status, headers: status === 429 ? { 'retry-after': '0' } : {}, body: openAIErrorBody(status, message) };
}

const CONTEXT_MESSAGES: Record<MockProvider, string> = {
  anthropic: 'prompt is too long: 250123 tokens > 200000 maximum',
  gemini: 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).',
  openai: "This model's maximum context length is 128000 tokens. Please reduce the length of the messages.",
};

function streamErrorEvent(provider: MockProvider): string {
  if (provider === 'anthropic') return anthropicSse({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  if (provider === 'gemini') return geminiSse(geminiErrorBody(429));
  return `data: ${JSON.stringify({ error: { message: 'upstream exploded', type: 'server_error', param: null, code: null } })}\n\n`;
}

function successBody(route: Route, answer: Answer): unknown {
  if (route.provider === 'anthropic') return anthropicMessage(route.model, answer);
  if (route.provider === 'gemini') return geminiResponse(route.model, answer);
  return openAIResponse(route.model, answer);
}

function successEvents(route: Route, answer: Answer, body: Record<string, unknown>): string[] {
  if (route.provider === 'anthropic') return anthropicEvents(route.model, answer);
  if (route.provider === 'gemini') return geminiEvents(route.model, answer);
  const options = body['stream_options'];
  return openAIEvents(route.model, answer, isRecord(options) && options['include_usage'] === true);
}

const NOT_AN_ANSWER: Record<MockProvider, unknown> = {
  anthropic: { id: 'msg_01Mock', type: 'message', role: 'assistant' },
  gemini: { modelVersion: 'mock', responseId: 'mockResponse01' },
  openai: { id: 'chatcmpl-mock1', object: 'chat.completion' },
};

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function writeEvents(res: ServerResponse, events: readonly string[]): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  for (const event of events) {
    if (res.destroyed) return;
    await new Promise<void>((resolve, reject) => res.write(event, (error) => (error ? reject(error) : resolve())));
  }
}

async function perform(route: Route, behaviour: Behaviour, body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { provider } = route;
  if (behaviour.kind === 'status') {
    const e = errorFor(provider, behaviour.status);
    return sendJson(res, e.status, e.body, e.headers);
  }
  if (behaviour.kind === 'context-length') {
    const e = errorFor(provider, 400, CONTEXT_MESSAGES[provider]);
    return sendJson(res, e.status, e.body, e.headers);
  }
  if (behaviour.kind === 'not-an-answer') return sendJson(res, 200, NOT_AN_ANSWER[provider]);
  const answer = answerFor(provider, behaviour, route.model, body);
  if (!route.stream) {
    if (behaviour.kind === 'malformed') return sendJson(res, 200, '{"content": [{"type": "text", "text": "Hel');
    if (behaviour.kind === 'error-event') {
      const e = errorFor(provider, provider === 'anthropic' ? 529 : provider === 'gemini' ? 429 : 500);
      return sendJson(res, e.status, e.body, e.headers);
    }
    return sendJson(res, 200, successBody(route, answer));
  }
  const events = successEvents(route, answer, body);
  switch (behaviour.kind) {
    case 'malformed':
      await writeEvents(res, [
        ...events.slice(0, 2),
        provider === 'anthropic' ? 'event: content_block_delta\ndata: {not json\n\n' : 'data: {not json\n\n',
        ...events.slice(2),
      ]);
      return void res.end();
    case 'error-event':
      // Anthropic may send message_start (and pings) before the error; the others send the error alone.
      await writeEvents(
        res,
        provider === 'anthropic' ? [...events.slice(0, 1), anthropicSse({ type: 'ping' }), streamErrorEvent(provider)] : [streamErrorEvent(provider)],
      );
      return void res.end();
    case 'error-after':
      await writeEvents(res, [...events.slice(0, behaviour.n), streamErrorEvent(provider)]);
      return void res.end();
    case 'cut-after':
      await writeEvents(res, events.slice(0, behaviour.n));
      req.socket.destroy();
      return;
    default:
      await writeEvents(res, events);
      res.end();
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startProviderMocks(): Promise<ProviderMocks> {
  const requests: MockRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '/';
      let body: Record<string, unknown> = {};
      try {
        const parsed: unknown = JSON.parse(await readBody(req));
        if (isRecord(parsed)) body = parsed;
      } catch {
        return sendJson(res, 400, { error: { message: 'body is not JSON' } });
      }
      const route = routeOf(req.method ?? 'GET', url, body);
      if (!route) return sendJson(res, 404, { error: { message: `provider-mocks: no route for ${req.method ?? ''} ${url}` } });
      requests.push({ provider: route.provider, url, headers: { ...req.headers }, body, model: route.model, stream: route.stream });
      const refused = refusal(route, req, body);
      if (refused) return sendJson(res, refused.status, refused.body, refused.headers);
      await perform(route, behaviourOf(route.model), body, req, res);
    })().catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: `provider-mocks bug: ${String(error)}` } });
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    anthropicURL: `${origin}/v1`,
    geminiURL: `${origin}/v1beta`,
    openaiURL: `${origin}/openai/v1`,
    requests,
    requestsFor: (model) => requests.filter((r) => r.model === model),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
