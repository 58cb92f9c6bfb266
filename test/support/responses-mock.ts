// A strict mock of OpenAI's Responses API on 127.0.0.1: POST {url}/responses with
// `Authorization: Bearer`. Like the real API it refuses what it does not know: unknown fields
// (at the top level, in input items, content parts and tools), wrong types, and
// max_output_tokens below 16, each with the real API's 400 error shape. Streams are typed
// events in the order the real API sends them, with sequence_numbers.
//
// The request's model picks the behaviour (`fault:<behaviour>[#tag]`, like provider-mocks):
//   ok              a text answer "Hello from <model>"
//   tool            a call of the request's first tool with {"city":"Paris"}; once the input
//                   carries a function_call_output, the answer "Tool said: <output>"
//   <status>        that HTTP status with an OpenAI error body (429, 500, 503, 401…)
//   failed          stream: response.created, response.in_progress, then response.failed
//   error-after-<N> stream: N events, then response.failed
//   cut-after-<N>   stream: N events, then the connection is destroyed
//
// checkResponsesStream() is the other half of "strict": it refuses a stream of events that
// the real API would never send (out of order, unnumbered, items not opened or not closed),
// and is used on the proxy's own output.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';

export interface ResponsesMock {
  /** baseURL for `api: openai-responses` (…/v1). */
  url: string;
  requests: Array<{ body: Record<string, unknown>; headers: Record<string, string | string[] | undefined> }>;
  requestsFor(model: string): Array<{ body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export const RESPONSES_MOCK_USAGE = {
  input_tokens: 21,
  input_tokens_details: { cached_tokens: 5 },
  output_tokens: 9,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 30,
} as const;

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class Refused extends Error {
  readonly param: string | null;
  readonly code: string | null;

  constructor(message: string, param: string | null, code: string | null) {
    super(message);
    this.param = param;
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------
// Request validation (field names from the openai SDK's ResponseCreateParams)

const TOP_LEVEL = new Set([
  'model',
  'input',
  'instructions',
  'max_output_tokens',
  'temperature',
  'top_p',
  'tools',
  'tool_choice',
  'text',
  'stream',
  'store',
  'parallel_tool_calls',
  'user',
  'metadata',
  'reasoning',
  'truncation',
  'include',
  'service_tier',
  'top_logprobs',
  'max_tool_calls',
  'prompt_cache_key',
  'safety_identifier',
  'stream_options',
  'background',
  'previous_response_id',
  'conversation',
  'prompt',
]);

function unknownFields(object: Json, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw new Refused(`Unknown parameter: '${where}${key}'.`, `${where}${key}`, 'unknown_parameter');
  }
}

function expect(ok: boolean, param: string, what: string): void {
  if (!ok) throw new Refused(`Invalid type for '${param}': expected ${what}.`, param, 'invalid_type');
}

export function validateRequest(body: Json): void {
  for (const key of Object.keys(body)) if (!TOP_LEVEL.has(key)) throw new Refused(`Unknown parameter: '${key}'.`, key, 'unknown_parameter');
  expect(typeof body['model'] === 'string', 'model', 'a string');
  const input = body['input'];
  expect(typeof input === 'string' || Array.isArray(input), 'input', 'a string or an array');
  if (Array.isArray(input)) input.forEach((item, i) => validateItem(item, `input[${i}]`));
  for (const field of ['instructions', 'user'])
    if (body[field] !== undefined && body[field] !== null) expect(typeof body[field] === 'string', field, 'a string');
  const max = body['max_output_tokens'];
  if (max !== undefined && max !== null) {
    expect(typeof max === 'number' && Number.isInteger(max), 'max_output_tokens', 'an integer');
    if ((max as number) < 16)
      throw new Refused(
        `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got ${String(max)} instead.`,
        'max_output_tokens',
        'integer_below_min_value',
      );
  }
  for (const field of ['temperature', 'top_p'])
    if (body[field] !== undefined && body[field] !== null) expect(typeof body[field] === 'number', field, 'a number');
  for (const field of ['stream', 'store', 'parallel_tool_calls'])
    if (body[field] !== undefined && body[field] !== null) expect(typeof body[field] === 'boolean', field, 'a boolean');
  if (body['metadata'] !== undefined) expect(isRecord(body['metadata']), 'metadata', 'an object');
  if (body['tools'] !== undefined) {
    expect(Array.isArray(body['tools']), 'tools', 'an array');
    (body['tools'] as unknown[]).forEach((tool, i) => {
      expect(isRecord(tool), `tools[${i}]`, 'an object');
      const t = tool as Json;
      expect(t['type'] === 'function', `tools[${i}].type`, "'function' (the mock runs no built-in tools)");
      unknownFields(t, ['type', 'name', 'description', 'parameters', 'strict'], `tools[${i}].`);
      expect(typeof t['name'] === 'string', `tools[${i}].name`, 'a string');
      expect(t['parameters'] === null || isRecord(t['parameters']), `tools[${i}].parameters`, 'an object or null');
      expect(t['strict'] === undefined || t['strict'] === null || typeof t['strict'] === 'boolean', `tools[${i}].strict`, 'a boolean');
    });
  }
  const choice = body['tool_choice'];
  if (choice !== undefined) {
    const ok =
      choice === 'none' ||
      choice === 'auto' ||
      choice === 'required' ||
      (isRecord(choice) && choice['type'] === 'function' && typeof choice['name'] === 'string' && Object.keys(choice).length === 2);
    expect(ok, 'tool_choice', "'none', 'auto', 'required' or {type: 'function', name}");
  }
  if (body['text'] !== undefined) {
    expect(isRecord(body['text']), 'text', 'an object');
    const text = body['text'] as Json;
    unknownFields(text, ['format', 'verbosity'], 'text.');
    if (text['format'] !== undefined) {
      const format = text['format'];
      expect(
        isRecord(format) && ['text', 'json_object', 'json_schema'].includes(String(format['type'])),
        'text.format.type',
        "'text', 'json_object' or 'json_schema'",
      );
      const f = format as Json;
      if (f['type'] === 'json_schema') {
        unknownFields(f, ['type', 'name', 'schema', 'description', 'strict'], 'text.format.');
        expect(typeof f['name'] === 'string' && isRecord(f['schema']), 'text.format', 'a name and a schema');
      } else unknownFields(f, ['type'], 'text.format.');
    }
  }
}

function validateItem(item: unknown, where: string): void {
  expect(isRecord(item), where, 'an object');
  const it = item as Json;
  const type = it['type'] ?? 'message';
  if (type === 'message') {
    unknownFields(it, ['type', 'role', 'content', 'id', 'status'], `${where}.`);
    const role = it['role'];
    expect(['user', 'assistant', 'system', 'developer'].includes(String(role)), `${where}.role`, "'user', 'assistant', 'system' or 'developer'");
    const content = it['content'];
    if (typeof content === 'string') return;
    expect(Array.isArray(content), `${where}.content`, 'a string or an array');
    (content as unknown[]).forEach((part, i) => validatePart(part, `${where}.content[${i}]`, role === 'assistant'));
  } else if (type === 'function_call') {
    unknownFields(it, ['type', 'call_id', 'name', 'arguments', 'id', 'status'], `${where}.`);
    for (const field of ['call_id', 'name', 'arguments']) expect(typeof it[field] === 'string', `${where}.${field}`, 'a string');
  } else if (type === 'function_call_output') {
    unknownFields(it, ['type', 'call_id', 'output', 'id', 'status'], `${where}.`);
    expect(typeof it['call_id'] === 'string', `${where}.call_id`, 'a string');
    expect(typeof it['output'] === 'string' || Array.isArray(it['output']), `${where}.output`, 'a string or an array');
  } else {
    throw new Refused(
      `Invalid value: '${String(type)}'. Supported values in this mock are: 'message', 'function_call' and 'function_call_output'.`,
      `${where}.type`,
      'invalid_value',
    );
  }
}

function validatePart(part: unknown, where: string, assistant: boolean): void {
  expect(isRecord(part), where, 'an object');
  const p = part as Json;
  if (assistant) {
    expect(p['type'] === 'output_text' || p['type'] === 'refusal', `${where}.type`, "'output_text' or 'refusal' in an assistant message");
    if (p['type'] === 'output_text') unknownFields(p, ['type', 'text', 'annotations', 'logprobs'], `${where}.`);
    return;
  }
  switch (p['type']) {
    case 'input_text':
      unknownFields(p, ['type', 'text'], `${where}.`);
      expect(typeof p['text'] === 'string', `${where}.text`, 'a string');
      return;
    case 'input_image':
      unknownFields(p, ['type', 'image_url', 'file_id', 'detail'], `${where}.`);
      expect(['low', 'high', 'auto'].includes(String(p['detail'])), `${where}.detail`, "'low', 'high' or 'auto'");
      return;
    case 'input_file':
      unknownFields(p, ['type', 'file_data', 'file_id', 'file_url', 'filename'], `${where}.`);
      return;
    default:
      throw new Refused(`Invalid value: '${String(p['type'])}'.`, `${where}.type`, 'invalid_value');
  }
}

// ---------------------------------------------------------------------------------------
// Answers

type Behaviour = { kind: 'ok' | 'tool' | 'failed' } | { kind: 'status'; status: number } | { kind: 'cut-after' | 'error-after'; n: number };

function behaviourOf(model: string): Behaviour {
  if (!model.startsWith('fault:')) return { kind: 'ok' };
  const name = model.slice('fault:'.length).split('#')[0] ?? '';
  if (/^[45]\d\d$/.test(name)) return { kind: 'status', status: Number(name) };
  const counted = /^(cut-after|error-after)-(\d+)$/.exec(name);
  if (counted) return { kind: counted[1] === 'cut-after' ? 'cut-after' : 'error-after', n: Number(counted[2]) };
  if (name === 'ok' || name === 'tool' || name === 'failed') return { kind: name };
  throw new Error(`responses-mock: unknown behaviour "${name}"`);
}

function answerFor(behaviour: Behaviour, model: string, body: Json): { text: string } | { call: { name: string; args: string } } {
  if (behaviour.kind !== 'tool') return { text: `Hello from ${model}` };
  const input = Array.isArray(body['input']) ? body['input'] : [];
  const result = [...input].reverse().find((item) => isRecord(item) && item['type'] === 'function_call_output');
  if (isRecord(result)) return { text: `Tool said: ${String(result['output'])}` };
  const tool = Array.isArray(body['tools']) ? body['tools'][0] : undefined;
  return { call: { name: isRecord(tool) ? String(tool['name']) : 'get_weather', args: '{"city":"Paris"}' } };
}

let counter = 0;

function responseObject(model: string, body: Json, status: string, output: Json[], usage: Json | null): Json {
  return {
    id: `resp_mock${++counter}`,
    object: 'response',
    created_at: 1_700_000_000,
    status,
    error: null,
    incomplete_details: null,
    instructions: body['instructions'] ?? null,
    max_output_tokens: body['max_output_tokens'] ?? null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: body['store'] ?? true,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: body['tool_choice'] ?? 'auto',
    tools: body['tools'] ?? [],
    top_p: 1,
    truncation: 'disabled',
    usage,
    metadata: {},
  };
}

function outputOf(answer: ReturnType<typeof answerFor>): Json {
  if ('text' in answer)
    return {
      id: 'msg_mock1',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: answer.text, annotations: [], logprobs: [] }],
    };
  return { id: 'fc_mock1', type: 'function_call', status: 'completed', call_id: 'call_mock1', name: answer.call.name, arguments: answer.call.args };
}

/** The events of a whole answer, in the real API's order. */
export function streamEvents(model: string, body: Json, answer: ReturnType<typeof answerFor>): Json[] {
  const item = outputOf(answer);
  const base = responseObject(model, body, 'in_progress', [], null);
  const events: Json[] = [
    { type: 'response.created', response: base },
    { type: 'response.in_progress', response: base },
  ];
  if ('text' in answer) {
    const where = { item_id: item['id'], output_index: 0, content_index: 0 };
    events.push({ type: 'response.output_item.added', output_index: 0, item: { ...item, status: 'in_progress', content: [] } });
    events.push({ type: 'response.content_part.added', ...where, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
    const words = answer.text.split(/(?<= )/);
    for (const delta of words) events.push({ type: 'response.output_text.delta', ...where, delta, logprobs: [] });
    events.push({ type: 'response.output_text.done', ...where, text: answer.text, logprobs: [] });
    events.push({ type: 'response.content_part.done', ...where, part: { type: 'output_text', text: answer.text, annotations: [], logprobs: [] } });
  } else {
    events.push({ type: 'response.output_item.added', output_index: 0, item: { ...item, status: 'in_progress', arguments: '' } });
    const args = answer.call.args;
    for (const delta of [args.slice(0, 5), args.slice(5)])
      events.push({ type: 'response.function_call_arguments.delta', item_id: item['id'], output_index: 0, delta });
    events.push({ type: 'response.function_call_arguments.done', item_id: item['id'], output_index: 0, name: answer.call.name, arguments: args });
  }
  events.push({ type: 'response.output_item.done', output_index: 0, item });
  events.push({ type: 'response.completed', response: { ...base, status: 'completed', output: [item], usage: RESPONSES_MOCK_USAGE } });
  return events.map((event, i) => ({ ...event, sequence_number: i }));
}

function failedEvent(model: string, body: Json, sequence: number): Json {
  return {
    type: 'response.failed',
    sequence_number: sequence,
    response: { ...responseObject(model, body, 'failed', [], null), error: { code: 'server_error', message: 'The model failed to generate a response.' } },
  };
}

const sse = (event: Json): string => `event: ${String(event['type'])}\ndata: ${JSON.stringify(event)}\n\n`;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const STATUS_ERRORS: Record<number, { type: string; code: string | null; message: string }> = {
  401: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached.' },
  500: { type: 'server_error', code: 'server_error', message: 'The server had an error while processing your request.' },
  503: { type: 'server_error', code: null, message: 'The engine is currently overloaded.' },
};

async function serve(req: IncomingMessage, res: ServerResponse, body: Json): Promise<void> {
  validateRequest(body);
  const model = String(body['model']);
  const behaviour = behaviourOf(model);
  if (behaviour.kind === 'status') {
    const e = STATUS_ERRORS[behaviour.status] ?? { type: 'server_error', code: null, message: `HTTP ${behaviour.status}` };
    return sendJson(res, behaviour.status, { error: { message: e.message, type: e.type, param: null, code: e.code } });
  }
  const answer = answerFor(behaviour, model, body);
  if (body['stream'] !== true) {
    return sendJson(res, 200, responseObject(model, body, 'completed', [outputOf(answer)], RESPONSES_MOCK_USAGE));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const events = streamEvents(model, body, answer);
  const send = async (list: Json[]): Promise<void> => {
    for (const event of list) {
      if (!res.write(sse(event))) await once(res, 'drain');
    }
  };
  if (behaviour.kind === 'failed') {
    await send([...events.slice(0, 2), failedEvent(model, body, 2)]);
    return void res.end();
  }
  if (behaviour.kind === 'error-after') {
    await send([...events.slice(0, behaviour.n), failedEvent(model, body, behaviour.n)]);
    return void res.end();
  }
  if (behaviour.kind === 'cut-after') {
    await send(events.slice(0, behaviour.n));
    req.socket.destroy();
    return;
  }
  await send(events);
  res.end();
}

export async function startResponsesMock(): Promise<ResponsesMock> {
  const requests: ResponsesMock['requests'] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      if (req.method !== 'POST' || req.url !== '/v1/responses')
        return sendJson(res, 404, {
          error: { message: `Invalid URL (${req.method ?? ''} ${req.url ?? ''})`, type: 'invalid_request_error', param: null, code: null },
        });
      if (!/^Bearer \S+$/.test(String(req.headers['authorization'] ?? '')))
        return sendJson(res, 401, { error: { message: "You didn't provide an API key.", type: 'invalid_request_error', param: null, code: null } });
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return sendJson(res, 400, {
          error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', param: null, code: null },
        });
      }
      if (!isRecord(body))
        return sendJson(res, 400, { error: { message: 'The body must be a JSON object.', type: 'invalid_request_error', param: null, code: null } });
      requests.push({ body, headers: { ...req.headers } });
      try {
        await serve(req, res, body);
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        sendJson(res, 400, { error: { message: error.message, type: 'invalid_request_error', param: error.param, code: error.code } });
      }
    })().catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: `responses-mock bug: ${String(error)}`, type: 'server_error', param: null, code: null } });
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
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    requestsFor: (model) => requests.filter((r) => r.body['model'] === model),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------
// The order the real API streams in

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/**
 * Throws unless `events` is a stream the real API could send: numbered 0, 1, 2…; created then
 * in_progress first; every item added before its parts and deltas, its parts closed before
 * it, every item done before a completed/incomplete end; one terminal event, last.
 */
export function checkResponsesStream(events: Json[]): void {
  const fail = (i: number, why: string): never => {
    throw new Error(`event ${i} (${String(events[i]?.['type'])}): ${why}`);
  };
  const items = new Map<number, { type: string; open: boolean; parts: Map<number, boolean> }>();
  events.forEach((event, i) => {
    if (event['sequence_number'] !== i) fail(i, `sequence_number ${String(event['sequence_number'])}, expected ${i}`);
    const type = String(event['type']);
    if (i === 0 && type !== 'response.created') fail(i, 'the first event must be response.created');
    if (i === 1 && type !== 'response.in_progress' && !TERMINAL.has(type)) fail(i, 'response.in_progress must follow response.created');
    if (i > 0 && TERMINAL.has(String(events[i - 1]?.['type']))) fail(i, 'nothing follows the terminal event');
    const index = event['output_index'];
    const item = typeof index === 'number' ? items.get(index) : undefined;
    switch (type) {
      case 'response.created':
      case 'response.in_progress':
        if (i > 1) fail(i, 'lifecycle event out of place');
        return;
      case 'response.output_item.added': {
        if (typeof index !== 'number' || items.has(index) || index !== items.size) fail(i, 'items are added once, numbered in order');
        const added = event['item'] as Json;
        items.set(index as number, { type: String(added['type']), open: true, parts: new Map() });
        return;
      }
      case 'response.content_part.added': {
        if (!item?.open || item.type !== 'message') fail(i, 'a content part of an item that is not an open message');
        const c = event['content_index'] as number;
        if (item?.parts.has(c) || [...(item?.parts.values() ?? [])].some((open) => open)) fail(i, 'a part opened twice, or while another is open');
        item?.parts.set(c, true);
        return;
      }
      case 'response.output_text.delta':
      case 'response.output_text.done':
      case 'response.refusal.delta':
      case 'response.refusal.done':
        if (!item?.open || item.parts.get(event['content_index'] as number) !== true) fail(i, 'text of a part that is not open');
        return;
      case 'response.content_part.done':
        if (!item?.open || item.parts.get(event['content_index'] as number) !== true) fail(i, 'closing a part that is not open');
        item?.parts.set(event['content_index'] as number, false);
        return;
      case 'response.function_call_arguments.delta':
      case 'response.function_call_arguments.done':
        if (!item?.open || item.type !== 'function_call') fail(i, 'arguments of an item that is not an open function_call');
        return;
      case 'response.output_item.done':
        if (!item?.open || [...item.parts.values()].some((open) => open)) fail(i, 'closing an item that is not open, or has an open part');
        if (item) item.open = false;
        return;
      case 'response.completed':
      case 'response.incomplete':
        if ([...items.values()].some((it) => it.open)) fail(i, 'the response ends with an item still open');
        return;
      case 'response.failed':
      case 'error':
        return;
      default:
        fail(i, 'not an event type of the Responses API');
    }
  });
  const last = events[events.length - 1];
  if (!last || !TERMINAL.has(String(last['type']))) throw new Error('the stream has no terminal event (response.completed / .incomplete / .failed)');
}

/** Parses an SSE body into its events' JSON (event: lines must match the data's type). */
export function parseResponsesSse(text: string): Json[] {
  const events: Json[] = [];
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((line) => line !== '' && !line.startsWith(':'));
    if (lines.length === 0) continue;
    const name = lines.find((line) => line.startsWith('event: '))?.slice(7);
    const data = lines
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6))
      .join('\n');
    const event = JSON.parse(data) as Json;
    if (name !== undefined && name !== event['type']) throw new Error(`event: ${name} carries data of type ${String(event['type'])}`);
    events.push(event);
  }
  return events;
}
