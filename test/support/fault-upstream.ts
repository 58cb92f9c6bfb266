// A fake OpenAI-compatible upstream for tests. The request body's `model`
// picks the behaviour, because the proxy substitutes each chain step's model:
// a chain step with model `fault:429` makes that step's upstream answer 429.
//
// Grammar: `fault:<behaviour>[#<tag>]`. The tag only keeps per-test counters
// apart (counters are keyed by the full model string). Models that do not
// start with `fault:` behave as `fault:ok`. See parseName() for behaviours.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { EventEmitter, once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';

export interface RecordedRequest {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  model: string;
  receivedAt: number;
}

export interface FaultUpstream {
  /** Base URL for a provider's baseURL, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  port: number;
  /** Every request received, in order of body completion. */
  requests: RecordedRequest[];
  requestsFor(model: string): RecordedRequest[];
  /** Sockets currently open (keep-alive sockets included). */
  openConnections(): number;
  /** Connections accepted since the start (or the last reset). */
  connectionsAccepted(): number;
  /**
   * Resolves when the nth (1-based) connection closed since the start (or the last reset) has
   * closed, with who closed it: the client (its FIN came first) or this server (its keep-alive timeout).
   */
  waitForConnectionClose(nth?: number): Promise<'client' | 'server'>;
  /** Models whose client closed the connection before the response finished. */
  closedEarly: string[];
  /** Resolves with the nth (1-based) request for `model`, at once if already recorded. */
  waitForRequest(model: string, nth?: number): Promise<RecordedRequest>;
  /** Resolves once `model` appears in closedEarly (at once if it already does). */
  waitForClosedEarly(model: string): Promise<void>;
  /** Clears requests, counters, closedEarly and the count of connections accepted. */
  reset(): void;
  /** Destroys all sockets and closes the server. */
  close(): Promise<void>;
}

type Endpoint = 'chat' | 'completions' | 'embeddings';
type Finish = 'stop' | 'content_filter';
type SimpleKind = 'reset' | 'silent' | 'malformed' | 'no-done' | 'error-event' | 'empty-stream' | '401-echo-key';

type Behaviour =
  | { kind: 'ok'; finish: Finish; echoKey: boolean }
  | { kind: 'error'; status: number; body: unknown; headers: Record<string, string> }
  | { kind: 'then-ok'; first: Behaviour; times: number }
  | { kind: 'slow-first-token'; ms: number }
  | { kind: 'cut-after' | 'stall-after'; n: number }
  | { kind: SimpleKind };

const OK: Behaviour = { kind: 'ok', finish: 'stop', echoKey: false };
const SIMPLE_KINDS: readonly SimpleKind[] = ['reset', 'silent', 'malformed', 'no-done', 'error-event', 'empty-stream', '401-echo-key'];
const USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
const FAULT_PREFIX = 'fault:';

// ---------------------------------------------------------------------------
// Grammar

function parseModel(model: string): Behaviour {
  if (!model.startsWith(FAULT_PREFIX)) return OK;
  const name = model.slice(FAULT_PREFIX.length).split('#')[0] ?? '';
  return parseName(name);
}

function parseName(name: string): Behaviour {
  if (name === 'ok') return OK;
  if (name === 'content-filter-finish') return { kind: 'ok', finish: 'content_filter', echoKey: false };
  if (name === 'echo-key') return { kind: 'ok', finish: 'stop', echoKey: true };
  const simple = SIMPLE_KINDS.find((kind) => kind === name);
  if (simple) return { kind: simple };
  // `<fault>[x<K>]-then-ok`: any fault (status, retry-after, reset, silent...) K times, then ok.
  const thenOk = /^(.+?)(?:x(\d+))?-then-ok$/.exec(name);
  if (thenOk) return { kind: 'then-ok', first: parseName(thenOk[1] ?? ''), times: Number(thenOk[2] ?? 1) };
  const slow = /^slow-first-token-(\d+)$/.exec(name);
  if (slow) return { kind: 'slow-first-token', ms: Number(slow[1]) };
  const partial = /^(cut-after|stall-after)-(\d+)$/.exec(name);
  if (partial) return { kind: partial[1] === 'cut-after' ? 'cut-after' : 'stall-after', n: Number(partial[2]) };
  return parseErrorName(name) ?? errorReply(400, unknownFaultBody(name));
}

function parseErrorName(name: string): Behaviour | undefined {
  if (name === 'context-length') return errorReply(400, CONTEXT_LENGTH_BODY);
  if (name === 'content-policy') return errorReply(400, CONTENT_POLICY_BODY);
  const retry = /^429-retry-after-(?:(ms|date)-)?(\d+)$/.exec(name);
  if (retry) return errorReply(429, statusErrorBody(429), retryAfterHeader(retry[1], Number(retry[2])));
  if (/^[45]\d\d$/.test(name)) return errorReply(Number(name), statusErrorBody(Number(name)));
  return undefined;
}

function retryAfterHeader(form: string | undefined, n: number): Record<string, string> {
  if (form === 'ms') return { 'retry-after-ms': String(n) };
  if (form === 'date') return { 'retry-after': new Date(Date.now() + n * 1000).toUTCString() };
  return { 'retry-after': String(n) };
}

/** `-then-ok` faults pick their branch from how many requests this model string already had. */
function resolveAttempt(behaviour: Behaviour, attempt: number): Behaviour {
  if (behaviour.kind !== 'then-ok') return behaviour;
  return attempt < behaviour.times ? resolveAttempt(behaviour.first, attempt) : OK;
}

// ---------------------------------------------------------------------------
// Error bodies

function errorReply(status: number, body: unknown, headers: Record<string, string> = {}): Behaviour {
  return { kind: 'error', status, body, headers };
}

function openAiError(message: string, type: string, code: string | null, param: string | null = null): unknown {
  return { error: { message, type, param, code } };
}

const CONTEXT_LENGTH_BODY = openAiError(
  "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.",
  'invalid_request_error',
  'context_length_exceeded',
  'messages',
);
const CONTENT_POLICY_BODY = openAiError('Your request was rejected as a result of our safety system.', 'invalid_request_error', 'content_policy_violation');

function statusErrorBody(status: number): unknown {
  switch (status) {
    case 400:
      return openAiError('Bad request', 'invalid_request_error', 'invalid_request');
    case 401:
      return openAiError('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    case 403:
      return openAiError('You are not allowed to access this resource.', 'permission_denied', null);
    case 404:
      return openAiError('The model does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found', 'model');
    case 422:
      return openAiError('Unprocessable entity', 'invalid_request_error', 'unprocessable_entity');
    case 429:
      return openAiError('Rate limit reached', 'requests', 'rate_limit_exceeded');
    // Anthropic's overload answer, which OpenAI-compatible gateways pass through.
    case 529:
      return { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
  }
  if (status >= 500) return openAiError('The server had an error while processing your request.', 'server_error', null);
  return openAiError(`Fault upstream error ${status}`, 'invalid_request_error', null);
}

function unknownFaultBody(name: string): unknown {
  // Loud, so a typo in a test's model string does not silently pass as some other fault.
  return openAiError(`fault-upstream: unknown fault behaviour "${name}"`, 'invalid_request_error', 'unknown_fault', 'model');
}

// ---------------------------------------------------------------------------
// Success shapes

interface Reply {
  endpoint: Endpoint;
  model: string;
  id: string;
  created: number;
  includeUsage: boolean;
  pieces: string[];
  finish: Finish;
  input: unknown;
}

function okBody(reply: Reply): unknown {
  if (reply.endpoint === 'embeddings') return embeddingsBody(reply);
  const content = reply.pieces.join('');
  const { id, created, model } = reply;
  if (reply.endpoint === 'completions') {
    const choice = { index: 0, text: content, logprobs: null, finish_reason: reply.finish };
    return { id, object: 'text_completion', created, model, choices: [choice], usage: USAGE };
  }
  const choice = { index: 0, message: { role: 'assistant', content }, finish_reason: reply.finish };
  return { id, object: 'chat.completion', created, model, choices: [choice], usage: USAGE };
}

function embeddingsBody(reply: Reply): unknown {
  const inputs = Array.isArray(reply.input) && reply.input.every((i) => typeof i === 'string') ? reply.input : [reply.input];
  const data = inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] }));
  const tokens = inputs.reduce<number>((sum, input) => sum + estimateTokens(input), 0);
  return { object: 'list', data, model: reply.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}

function estimateTokens(input: unknown): number {
  if (typeof input === 'string') return Math.max(1, input.split(/\s+/).filter(Boolean).length);
  if (Array.isArray(input)) return Math.max(1, input.length);
  return 1;
}

const sse = (payload: string): string => `data: ${payload}\n\n`;
const DONE_EVENT = sse('[DONE]');
const MALFORMED_EVENT = sse('{not json');
const ERROR_EVENT = sse(JSON.stringify({ error: { message: 'upstream exploded', type: 'server_error', code: null } }));

/** The SSE events of a successful stream, without the final [DONE]. */
function streamEvents(reply: Reply): string[] {
  const chunks: unknown[] =
    reply.finish === 'content_filter'
      ? [streamChunk(reply, { role: true, content: '' }, 'content_filter')]
      : [
          streamChunk(reply, { role: true, content: '' }, null),
          ...reply.pieces.map((content) => streamChunk(reply, { content }, null)),
          streamChunk(reply, {}, 'stop'),
        ];
  if (reply.includeUsage) chunks.push({ ...chunkEnvelope(reply), choices: [], usage: USAGE });
  return chunks.map((chunk) => sse(JSON.stringify(chunk)));
}

function chunkEnvelope(reply: Reply): Record<string, unknown> {
  const object = reply.endpoint === 'completions' ? 'text_completion' : 'chat.completion.chunk';
  return { id: reply.id, object, created: reply.created, model: reply.model };
}

function streamChunk(reply: Reply, part: { role?: true; content?: string }, finish: Finish | null): unknown {
  // Like OpenAI: with include_usage every chunk before the usage chunk carries `usage: null`.
  const usage = reply.includeUsage ? { usage: null } : {};
  return { ...chunkEnvelope(reply), choices: [streamChoice(reply, part, finish)], ...usage };
}

function streamChoice(reply: Reply, part: { role?: true; content?: string }, finish: Finish | null): unknown {
  if (reply.endpoint === 'completions') return { index: 0, text: part.content ?? '', logprobs: null, finish_reason: finish };
  const delta = { ...(part.role ? { role: 'assistant' } : {}), ...(part.content === undefined ? {} : { content: part.content }) };
  return { index: 0, delta, finish_reason: finish };
}

// ---------------------------------------------------------------------------
// One request/response exchange

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the response closes, so pending delays stop and their timers are cleared. */
  signal: AbortSignal;
  stream: boolean;
  reply: Reply;
  /** Destroys the socket on purpose; such closes are not the client's doing. */
  destroy(): void;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendRaw(res, status, JSON.stringify(body), headers);
}

function sendRaw(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function startSse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders(); // headers go out now, before any event (slow-first-token relies on it)
}

/** One write per event, each awaited so it is flushed before the next step (e.g. a destroy). */
async function writeEvents(x: Exchange, events: readonly string[]): Promise<boolean> {
  for (const event of events) {
    if (x.signal.aborted) return false;
    await new Promise<void>((resolve, reject) => {
      x.res.write(event, (err) => (err ? reject(err) : resolve()));
    });
  }
  return !x.signal.aborted;
}

async function streamThenEnd(x: Exchange, events: readonly string[]): Promise<void> {
  if (await writeEvents(x, events)) x.res.end();
}

async function sendOk(x: Exchange): Promise<void> {
  if (!x.stream) return sendJson(x.res, 200, okBody(x.reply));
  startSse(x.res);
  await streamThenEnd(x, [...streamEvents(x.reply), DONE_EVENT]);
}

async function slowFirstToken(x: Exchange, ms: number): Promise<void> {
  if (!x.stream) {
    await delay(ms, undefined, { signal: x.signal });
    return sendJson(x.res, 200, okBody(x.reply));
  }
  startSse(x.res);
  await delay(ms, undefined, { signal: x.signal });
  await streamThenEnd(x, [...streamEvents(x.reply), DONE_EVENT]);
}

async function cutAfter(x: Exchange, n: number): Promise<void> {
  if (x.stream) {
    startSse(x.res);
    if (await writeEvents(x, streamEvents(x.reply).slice(0, n))) x.destroy();
    return;
  }
  const text = JSON.stringify(okBody(x.reply));
  // Full content-length but half the bytes, so the client sees a truncated body.
  x.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  if (await writeEvents(x, [text.slice(0, Math.floor(text.length / 2))])) x.destroy();
}

async function stallAfter(x: Exchange, n: number): Promise<void> {
  if (x.stream) {
    startSse(x.res);
    await writeEvents(x, streamEvents(x.reply).slice(0, n));
    return; // silence until the client or close() ends the socket
  }
  const length = Buffer.byteLength(JSON.stringify(okBody(x.reply)));
  x.res.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
  x.res.flushHeaders();
}

async function malformed(x: Exchange): Promise<void> {
  if (!x.stream) return sendRaw(x.res, 200, '{"choices": [');
  const events = streamEvents(x.reply);
  const middle = Math.min(2, events.length);
  startSse(x.res);
  await streamThenEnd(x, [...events.slice(0, middle), MALFORMED_EVENT, ...events.slice(middle), DONE_EVENT]);
}

async function noDone(x: Exchange): Promise<void> {
  if (!x.stream) return sendOk(x);
  startSse(x.res);
  await streamThenEnd(x, streamEvents(x.reply));
}

async function errorEvent(x: Exchange): Promise<void> {
  // Non-stream twin: a 200 whose body is an error object.
  if (!x.stream) return sendRaw(x.res, 200, ERROR_EVENT.slice('data: '.length).trim());
  startSse(x.res);
  await streamThenEnd(x, [ERROR_EVENT]);
}

function emptyStream(x: Exchange): void {
  if (!x.stream) return sendRaw(x.res, 200, '');
  startSse(x.res);
  x.res.end();
}

async function perform(x: Exchange, behaviour: Behaviour): Promise<void> {
  switch (behaviour.kind) {
    case 'ok':
      return sendOk(x);
    case 'then-ok':
      return sendOk(x); // already resolved by resolveAttempt; kept for exhaustiveness
    case 'error':
      return sendJson(x.res, behaviour.status, behaviour.body, behaviour.headers);
    case 'reset':
      return x.destroy();
    // Real providers quote the key they were given in a 401 ("Incorrect API key provided: sk-…").
    case '401-echo-key':
      return sendJson(x.res, 401, {
        error: {
          message: `Incorrect API key provided: ${x.req.headers.authorization ?? ''}`,
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      });
    case 'silent':
      return; // body already read; never answer
    case 'slow-first-token':
      return slowFirstToken(x, behaviour.ms);
    case 'cut-after':
      return cutAfter(x, behaviour.n);
    case 'stall-after':
      return stallAfter(x, behaviour.n);
    case 'malformed':
      return malformed(x);
    case 'no-done':
      return noDone(x);
    case 'error-event':
      return errorEvent(x);
    case 'empty-stream':
      return emptyStream(x);
  }
}

// ---------------------------------------------------------------------------
// Server

interface State {
  requests: RecordedRequest[];
  closedEarly: string[];
  counters: Map<string, number>;
  events: EventEmitter;
  sockets: Set<Socket>;
  accepted: number;
  /** Who closed each connection closed so far, in order. */
  closedBy: Array<'client' | 'server'>;
  closing: boolean;
}

type Route = Endpoint | 'models';

function routeOf(method: string, path: string): Route | undefined {
  if (method === 'GET' && path === '/v1/models') return 'models';
  if (method !== 'POST') return undefined;
  if (path === '/v1/chat/completions') return 'chat';
  if (path === '/v1/completions') return 'completions';
  if (path === '/v1/embeddings') return 'embeddings';
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(raw: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
}

function record(state: State, entry: RecordedRequest): void {
  state.requests.push(entry);
  state.events.emit('request', entry);
}

function trackClosedEarly(state: State, res: ServerResponse, model: string, selfDestroyed: () => boolean): void {
  res.on('close', () => {
    if (res.writableFinished || selfDestroyed() || state.closing) return;
    state.closedEarly.push(model);
    state.events.emit('closedEarly', model);
  });
}

function listModels(res: ServerResponse): void {
  const ids = ['fault:ok', 'fault:429', 'fault:500-then-ok', 'fault:silent', 'fault:cut-after-2'];
  const data = ids.map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'fault-upstream' }));
  sendJson(res, 200, { object: 'list', data });
}

function makeExchange(
  req: IncomingMessage,
  res: ServerResponse,
  endpoint: Endpoint,
  body: Record<string, unknown>,
  model: string,
  behaviour: Behaviour,
): { exchange: Exchange; selfDestroyed: () => boolean } {
  const controller = new AbortController();
  let selfDestroyed = false;
  res.on('close', () => controller.abort());
  const auth = req.headers.authorization ?? '';
  const streamOptions = body['stream_options'];
  const reply: Reply = {
    endpoint,
    model,
    id: `${endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`,
    created: Math.floor(Date.now() / 1000),
    includeUsage: isRecord(streamOptions) && streamOptions['include_usage'] === true,
    pieces: behaviour.kind === 'ok' && behaviour.echoKey ? [auth] : ['Hello', ' from', ` ${model}`],
    finish: behaviour.kind === 'ok' ? behaviour.finish : 'stop',
    input: body['input'],
  };
  const exchange: Exchange = {
    req,
    res,
    signal: controller.signal,
    stream: endpoint !== 'embeddings' && body['stream'] === true,
    reply,
    destroy: () => {
      selfDestroyed = true;
      req.socket.destroy();
    },
  };
  return { exchange, selfDestroyed: () => selfDestroyed };
}

async function handle(state: State, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = Date.now();
  const method = req.method ?? 'GET';
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const raw = await readBody(req);
  const parsed = raw === '' && method === 'GET' ? { ok: true as const, value: undefined } : parseJson(raw);
  const body = parsed.ok ? parsed.value : raw;
  const model = isRecord(body) && typeof body['model'] === 'string' ? body['model'] : '';
  record(state, { path, method, headers: { ...req.headers }, body, model, receivedAt });

  const route = routeOf(method, path);
  if (route === undefined) {
    return sendJson(res, 404, openAiError(`Unknown request URL: ${method} ${path}.`, 'invalid_request_error', 'unknown_url'));
  }
  if (route === 'models') return listModels(res);
  if (!parsed.ok || !isRecord(body)) {
    return sendJson(res, 400, openAiError('We could not parse the JSON body of your request.', 'invalid_request_error', 'invalid_json'));
  }
  const attempt = state.counters.get(model) ?? 0;
  state.counters.set(model, attempt + 1);
  const behaviour = resolveAttempt(parseModel(model), attempt);
  const { exchange, selfDestroyed } = makeExchange(req, res, route, body, model, behaviour);
  trackClosedEarly(state, res, model, selfDestroyed);
  await perform(exchange, behaviour);
}

function onRequest(state: State, req: IncomingMessage, res: ServerResponse): void {
  handle(state, req, res).catch((err: unknown) => {
    // Aborted delays and writes to a closed socket are expected; anything else is a bug worth a 500.
    if (res.destroyed || state.closing) return;
    if (!res.headersSent) return sendJson(res, 500, openAiError(`fault-upstream bug: ${String(err)}`, 'server_error', null));
    res.destroy();
  });
}

function waitUntil<T>(events: EventEmitter, eventName: string, check: () => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const listener = (): void => {
      const found = check();
      if (found === undefined) return;
      events.off(eventName, listener);
      resolve(found);
    };
    events.on(eventName, listener);
    listener();
  });
}

function createHandle(state: State, url: string, port: number, close: () => Promise<void>): FaultUpstream {
  const requestsFor = (model: string): RecordedRequest[] => state.requests.filter((r) => r.model === model);
  return {
    url,
    port,
    get requests() {
      return state.requests;
    },
    get closedEarly() {
      return state.closedEarly;
    },
    requestsFor,
    openConnections: () => state.sockets.size,
    connectionsAccepted: () => state.accepted,
    waitForConnectionClose: (nth = 1) => waitUntil(state.events, 'connectionClose', () => state.closedBy[nth - 1]),
    waitForRequest: (model, nth = 1) => waitUntil(state.events, 'request', () => requestsFor(model)[nth - 1]),
    waitForClosedEarly: (model) => waitUntil(state.events, 'closedEarly', () => (state.closedEarly.includes(model) ? true : undefined)).then(() => undefined),
    reset: () => {
      // Mutate in place so references a test already holds stay live.
      state.requests.length = 0;
      state.closedEarly.length = 0;
      state.counters.clear();
      state.accepted = 0;
      state.closedBy.length = 0;
    },
    close,
  };
}

/** `keepAliveTimeoutMs`: how long an idle connection is kept (Node's default 5 s), announced as `Keep-Alive: timeout=N`. */
export async function startFaultUpstream(options: { port?: number; keepAliveTimeoutMs?: number } = {}): Promise<FaultUpstream> {
  const events = new EventEmitter();
  events.setMaxListeners(0); // many concurrent waitFor* calls are legitimate
  const state: State = { requests: [], closedEarly: [], counters: new Map(), events, sockets: new Set(), accepted: 0, closedBy: [], closing: false };
  const server = createServer(options.keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeoutMs }, (req, res) =>
    onRequest(state, req, res),
  );
  server.on('connection', (socket) => {
    state.sockets.add(socket);
    state.accepted += 1;
    // The client's FIN arrives as 'end'; a socket this server destroys (its keep-alive timeout) sees none.
    let clientEnded = false;
    socket.once('end', () => (clientEnded = true));
    socket.on('close', () => {
      state.sockets.delete(socket);
      state.closedBy.push(clientEnded ? 'client' : 'server');
      state.events.emit('connectionClose');
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    state.closing = true;
    for (const socket of state.sockets) socket.destroy(); // ends silent/stalled responses, aborting their timers
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return createHandle(state, `http://127.0.0.1:${port}/v1`, port, close);
}
