// A fake upstream for streams that break part-way through a long answer, speaking the
// OpenAI Chat format (/v1/chat/completions) and Anthropic's Messages format (/v1/messages).
// Every model answers the same 60-token text (ANSWER), one token per event, and honours
// prefill: when the conversation ends with an assistant message that the answer begins
// with, it streams only the rest, as a provider that continues an answer would.
//
// The model string picks the behaviour: `long:<behaviour>[#tag]` (the tag only keeps
// requests of different tests apart):
//   ok              the answer (or its rest, after a prefill)
//   cut-<n>         n tokens, then the connection is destroyed
//   stall-<n>       n tokens, then silence
//   error-<n>       n tokens, then an error event (OpenAI error chunk, Anthropic overloaded_error)
//   no-prefill      400 when the conversation ends with an assistant message, else the answer
//   ignore-prefill  the whole answer whatever the conversation ends with (like OpenAI's API, which answers anew)
//   diverge         another text of the same length (not the ANSWER)
//   tools-cut-<n>   a tool call whose arguments stream in n pieces, then the connection is destroyed
//   refuse-<n>      n tokens, then the provider's filter stops it (finish_reason content_filter, stop_reason refusal);
//                   refuse-0 refuses in its first event (OpenAI: the role chunk carries the finish; Anthropic: no content block)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { EventEmitter, once } from 'node:events';

/** The answer every step gives, one token per event: no token ends with whitespace, so a cut never leaves trailing whitespace. */
export const TOKENS: readonly string[] = Array.from({ length: 60 }, (_, i) => (i === 0 ? 'Token0' : ` token${i}`));
export const ANSWER = TOKENS.join('');
const DIVERGING = TOKENS.map((t) => t.replace('oken', 'ext')).join('');

export interface LongRequest {
  path: string;
  model: string;
  body: Record<string, unknown>;
  /** The trailing assistant message's text, when the request ended with one. */
  prefill: string | undefined;
}

export interface LongAnswerUpstream {
  /** Base URL for a provider's baseURL (…/v1). */
  url: string;
  requests: LongRequest[];
  requestsFor(model: string): LongRequest[];
  /** Resolves with the nth (1-based) request for `model`. */
  waitForRequest(model: string, nth?: number): Promise<LongRequest>;
  close(): Promise<void>;
}

type Behaviour = { kind: 'ok' | 'no-prefill' | 'ignore-prefill' | 'diverge' } | { kind: 'cut' | 'stall' | 'error' | 'tools-cut' | 'refuse'; n: number };

function parseModel(model: string): Behaviour {
  const name = (model.startsWith('long:') ? model.slice('long:'.length) : 'ok').split('#')[0] ?? '';
  if (name === 'ok' || name === 'no-prefill' || name === 'ignore-prefill' || name === 'diverge') return { kind: name };
  const m = /^(cut|stall|error|tools-cut|refuse)-(\d+)$/.exec(name);
  if (!m) throw new Error(`long-answer-upstream: unknown behaviour "${name}"`);
  return { kind: m[1] as 'cut' | 'stall' | 'error' | 'tools-cut' | 'refuse', n: Number(m[2]) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The text of a trailing assistant message (string or text blocks), if the conversation ends with one. */
function trailingAssistant(body: Record<string, unknown>): string | undefined {
  const messages = Array.isArray(body['messages']) ? body['messages'] : [];
  const last: unknown = messages[messages.length - 1];
  if (!isRecord(last) || last['role'] !== 'assistant') return undefined;
  const content = last['content'];
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b) => (isRecord(b) && typeof b['text'] === 'string' ? b['text'] : '')).join('');
  return '';
}

/** The tokens still to send after `prefill`: the rest of the answer, split where its tokens begin. */
function remainingTokens(prefill: string | undefined, text: string): string[] {
  const tokens = text === ANSWER ? [...TOKENS] : (text.match(/ ?[^ ]+/g) ?? []);
  if (prefill === undefined) return tokens;
  // A provider continues the text it was given; one that does not recognise it answers anew.
  if (!text.startsWith(prefill)) return [`[prefill not a prefix of the answer: ${JSON.stringify(prefill.slice(-20))}]`];
  const rest = text.slice(prefill.length);
  return rest.match(/\s*[^\s]+/g) ?? [];
}

// ---------------------------------------------------------------------------
// Wire shapes

interface Writer {
  start(res: ServerResponse): void;
  text(token: string): string[];
  toolCall(pieces: string[]): string[];
  finish(outputTokens: number, refused?: boolean): string[];
  error(): string[];
  prefillRejected(res: ServerResponse): void;
  /** A refusal before any content, in the answer's first event. */
  refuseAtOnce(res: ServerResponse): void;
}

const sse = (data: unknown, event?: string): string => `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

function openAIWriter(model: string, id: string, includeUsage: boolean): Writer {
  const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
    sse({ id, object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] });
  return {
    start: (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk({ role: 'assistant', content: '' }, null));
    },
    text: (token) => [chunk({ content: token }, null)],
    toolCall: (pieces) =>
      pieces.map((args, i) =>
        chunk(
          {
            tool_calls: [
              {
                index: 0,
                ...(i === 0 ? { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: args } } : { function: { arguments: args } }),
              },
            ],
          },
          null,
        ),
      ),
    finish: (outputTokens, refused) => [
      chunk({}, refused ? 'content_filter' : 'stop'),
      ...(includeUsage
        ? [
            sse({
              id,
              object: 'chat.completion.chunk',
              created: 1,
              model,
              choices: [],
              usage: { prompt_tokens: 10, completion_tokens: outputTokens, total_tokens: 10 + outputTokens },
            }),
          ]
        : []),
      sse('[DONE]'),
    ],
    error: () => [sse({ error: { message: 'the model fell over', type: 'server_error', code: 'internal_error' } })],
    prefillRejected: (res) =>
      sendJson(res, 400, {
        error: { message: 'the last message must be a user message', type: 'invalid_request_error', param: 'messages', code: 'invalid_request' },
      }),
    refuseAtOnce: (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(chunk({ role: 'assistant', content: '' }, 'content_filter') + sse('[DONE]'));
    },
  };
}

function anthropicWriter(model: string, id: string): Writer {
  return {
    start: (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        sse(
          {
            type: 'message_start',
            message: {
              id,
              type: 'message',
              role: 'assistant',
              model,
              content: [],
              stop_reason: null,
              stop_sequence: null,
              usage: { input_tokens: 10, output_tokens: 1 },
            },
          },
          'message_start',
        ),
      );
      res.write(sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'));
      res.write(sse({ type: 'ping' }, 'ping'));
    },
    text: (token) => [sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: token } }, 'content_block_delta')],
    toolCall: (pieces) => [
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      sse({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} } }, 'content_block_start'),
      ...pieces.map((partial) =>
        sse({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: partial } }, 'content_block_delta'),
      ),
    ],
    finish: (outputTokens, refused) => [
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      sse(
        { type: 'message_delta', delta: { stop_reason: refused ? 'refusal' : 'end_turn', stop_sequence: null }, usage: { output_tokens: outputTokens } },
        'message_delta',
      ),
      sse({ type: 'message_stop' }, 'message_stop'),
    ],
    error: () => [sse({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error')],
    prefillRejected: (res) =>
      sendJson(res, 400, {
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: 'This model does not support assistant message prefill. The conversation must end with a user message.',
        },
      }),
    refuseAtOnce: (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        [
          sse(
            {
              type: 'message_start',
              message: {
                id,
                type: 'message',
                role: 'assistant',
                model,
                content: [],
                stop_reason: null,
                stop_sequence: null,
                usage: { input_tokens: 10, output_tokens: 1 },
              },
            },
            'message_start',
          ),
          sse({ type: 'message_delta', delta: { stop_reason: 'refusal', stop_sequence: null }, usage: { output_tokens: 1 } }, 'message_delta'),
          sse({ type: 'message_stop' }, 'message_stop'),
        ].join(''),
      );
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function write(res: ServerResponse, events: readonly string[]): Promise<boolean> {
  for (const event of events) {
    if (res.destroyed) return false;
    await new Promise<void>((resolve) => res.write(event, () => resolve()));
  }
  return !res.destroyed;
}

// ---------------------------------------------------------------------------
// Server

export async function startLongAnswerUpstream(): Promise<LongAnswerUpstream> {
  const requests: LongRequest[] = [];
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  let counter = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void serve(req, res);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const path = req.url ?? '';
    const model = String(body['model']);
    const prefill = trailingAssistant(body);
    const entry: LongRequest = { path, model, body, prefill };
    requests.push(entry);
    events.emit('request', entry);
    const behaviour = parseModel(model);
    counter++;
    const options = isRecord(body['stream_options']) ? body['stream_options'] : {};
    const writer =
      path === '/v1/messages' ? anthropicWriter(model, `msg_${counter}`) : openAIWriter(model, `chatcmpl-${counter}`, options['include_usage'] === true);
    if (behaviour.kind === 'no-prefill' && prefill !== undefined) return writer.prefillRejected(res);
    if (behaviour.kind === 'refuse' && behaviour.n === 0) return writer.refuseAtOnce(res);
    const tokens = remainingTokens(behaviour.kind === 'ignore-prefill' ? undefined : prefill, behaviour.kind === 'diverge' ? DIVERGING : ANSWER);
    writer.start(res);
    if (behaviour.kind === 'tools-cut') {
      if (await write(res, writer.toolCall(['{"q":', '"wea', 'ther"}'].slice(0, behaviour.n)))) res.destroy();
      return;
    }
    const limit =
      behaviour.kind === 'cut' || behaviour.kind === 'stall' || behaviour.kind === 'error' || behaviour.kind === 'refuse' ? behaviour.n : tokens.length;
    if (
      !(await write(
        res,
        tokens.slice(0, limit).flatMap((t) => writer.text(t)),
      ))
    )
      return;
    if (behaviour.kind === 'cut') return void res.destroy();
    if (behaviour.kind === 'stall') return; // silence until the proxy gives up and closes the connection
    if (behaviour.kind === 'error') {
      if (await write(res, writer.error())) res.end();
      return;
    }
    if (behaviour.kind === 'refuse') {
      if (await write(res, writer.finish(behaviour.n, true))) res.end();
      return;
    }
    if (await write(res, writer.finish(tokens.length))) res.end();
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const requestsFor = (model: string): LongRequest[] => requests.filter((r) => r.model === model);
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    requestsFor,
    waitForRequest: (model, nth = 1) =>
      new Promise((resolve) => {
        const found = requestsFor(model)[nth - 1];
        if (found) return resolve(found);
        const listener = (entry: LongRequest): void => {
          const now = requestsFor(model)[nth - 1];
          if (entry.model === model && now) {
            events.off('request', listener);
            resolve(now);
          }
        };
        events.on('request', listener);
      }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
