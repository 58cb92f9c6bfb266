// An upstream on 127.0.0.1 that echoes the credentials it was sent, in all three wire formats
// (OpenAI chat completions, Anthropic messages, Gemini generateContent), through whichever
// path a test names: the answer, the first stream event, an error event mid-stream, a
// malformed stream event, a 4xx or 5xx error body, or its response headers. The caller's
// last user message picks the behaviour — `ECHO <path> <encoding index>` — because it
// reaches every format's upstream unchanged while the proxy substitutes the model.
// The echo is written into the wire text as given (so `\u0073k-…` is a JSON escape on the wire).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { encodings } from './secret-encodings.ts';

export const ECHO_PATHS = ['answer', 'first-event', 'mid-stream', 'malformed-event', '4xx', '5xx', 'headers'] as const;
export type EchoPath = (typeof ECHO_PATHS)[number];
export type EchoFormat = 'openai' | 'anthropic' | 'gemini';

export interface EchoUpstream {
  /** baseURL for each `api`. */
  urls: Record<EchoFormat, string>;
  /** Requests received, with the credentials they carried. */
  received: Array<{ format: EchoFormat; path: EchoPath; credentials: string[] }>;
  close(): Promise<void>;
}

/** The header that carries the provider's extra credential (provider.headers), as Azure's `api-key` does. */
export const HEADER_CREDENTIAL = 'api-key';

const PLACEHOLDER = '@@ECHO@@';

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const received: EchoUpstream['received'] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => void handle(req, res, received));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    urls: { openai: `${base}/openai/v1`, anthropic: `${base}/anthropic/v1`, gemini: `${base}/gemini/v1beta` },
    received,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, received: EchoUpstream['received']): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  const url = req.url ?? '';
  const format: EchoFormat = url.startsWith('/anthropic/') ? 'anthropic' : url.startsWith('/gemini/') ? 'gemini' : 'openai';
  const stream = format === 'gemini' ? url.includes(':streamGenerateContent') : body['stream'] === true;
  const instruction = /ECHO (\S+) (\d+)/.exec(JSON.stringify(body));
  const path = (instruction?.[1] ?? 'answer') as EchoPath;
  const encoding = Number(instruction?.[2] ?? 0);
  const credentials = credentialsOf(req, format);
  received.push({ format, path, credentials });
  // Every credential the request carried, in the chosen encoding, as the wire text to insert.
  const echo = credentials.map((c) => `credential=${encodings(c)[encoding]?.text ?? c}`).join(' ');
  const shapes = SHAPES[format];
  const send = (status: number, text: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text.replaceAll(PLACEHOLDER, echo));
  };
  const sse = (events: string[], headers: Record<string, string> = {}): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', ...headers });
    res.end(events.join('').replaceAll(PLACEHOLDER, echo));
  };
  const echoHeaders = { 'x-echo': echo, 'www-authenticate': `Bearer realm="${echo}"`, 'x-request-id': echo, 'openai-organization': echo };
  switch (path) {
    case '4xx':
      return send(format === 'gemini' ? 403 : 401, shapes.error4xx);
    case '5xx':
      return send(500, shapes.error5xx);
    case 'headers':
      return stream ? sse(shapes.stream('Hello'), echoHeaders) : send(200, shapes.answer('Hello'), echoHeaders);
    case 'answer':
      return stream ? sse(shapes.stream(PLACEHOLDER)) : send(200, shapes.answer(PLACEHOLDER));
    case 'first-event':
      return stream ? sse(shapes.stream(PLACEHOLDER)) : send(200, shapes.answer(PLACEHOLDER));
    case 'mid-stream':
      return stream ? sse(shapes.midStreamError) : send(200, shapes.answer(PLACEHOLDER));
    case 'malformed-event':
      return stream ? sse(shapes.malformed) : send(200, shapes.answer('Hello'));
  }
}

function credentialsOf(req: IncomingMessage, format: EchoFormat): string[] {
  const key =
    format === 'openai'
      ? String(req.headers['authorization'] ?? '').replace(/^Bearer /, '')
      : String(req.headers[format === 'anthropic' ? 'x-api-key' : 'x-goog-api-key'] ?? '');
  const extra = req.headers[HEADER_CREDENTIAL];
  return [key, ...(typeof extra === 'string' ? [extra] : [])].filter((c) => c !== '');
}

interface Shapes {
  answer(text: string): string;
  stream(text: string): string[];
  midStreamError: string[];
  malformed: string[];
  error4xx: string;
  error5xx: string;
}

const data = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;
const event = (name: string, payload: unknown): string => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

const OPENAI_USAGE = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
const openaiChunk = (delta: Record<string, unknown>, finish: string | null): unknown => ({
  id: 'chatcmpl-echo',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'echo',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

const ANTHROPIC_USAGE = { input_tokens: 3, output_tokens: 2 };
const anthropicStart = [
  event('message_start', {
    type: 'message_start',
    message: { id: 'msg_echo', type: 'message', role: 'assistant', model: 'echo', content: [], stop_reason: null, stop_sequence: null, usage: ANTHROPIC_USAGE },
  }),
  event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
];
const anthropicDelta = (text: string): string => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });
const anthropicEnd = [
  event('content_block_stop', { type: 'content_block_stop', index: 0 }),
  event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } }),
  event('message_stop', { type: 'message_stop' }),
];

const GEMINI_USAGE = { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 };
const geminiChunk = (text: string, finish?: string): unknown => ({
  candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0, ...(finish ? { finishReason: finish } : {}) }],
  ...(finish ? { usageMetadata: GEMINI_USAGE } : {}),
  modelVersion: 'echo',
});

const SHAPES: Record<EchoFormat, Shapes> = {
  openai: {
    answer: (text) =>
      JSON.stringify({
        id: 'chatcmpl-echo',
        object: 'chat.completion',
        created: 1,
        model: 'echo',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage: OPENAI_USAGE,
      }),
    stream: (text) => [
      data(openaiChunk({ role: 'assistant', content: text }, null)),
      data(openaiChunk({}, 'stop')),
      data({ ...(openaiChunk({}, null) as object), choices: [], usage: OPENAI_USAGE }),
      'data: [DONE]\n\n',
    ],
    midStreamError: [
      data(openaiChunk({ role: 'assistant', content: 'Hello' }, null)),
      data({ error: { message: PLACEHOLDER, type: 'server_error', param: null, code: 'echo' } }),
    ],
    malformed: [
      data(openaiChunk({ role: 'assistant', content: 'Hello' }, null)),
      `data: {not json ${PLACEHOLDER}\n\n`,
      data(openaiChunk({}, 'stop')),
      'data: [DONE]\n\n',
    ],
    error4xx: JSON.stringify({
      error: { message: `Incorrect API key provided: ${PLACEHOLDER}`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    }),
    error5xx: JSON.stringify({ error: { message: `internal error for ${PLACEHOLDER}`, type: 'server_error', param: null, code: null } }),
  },
  anthropic: {
    answer: (text) =>
      JSON.stringify({
        id: 'msg_echo',
        type: 'message',
        role: 'assistant',
        model: 'echo',
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: ANTHROPIC_USAGE,
      }),
    stream: (text) => [...anthropicStart, anthropicDelta(text), ...anthropicEnd],
    midStreamError: [...anthropicStart, anthropicDelta('Hello'), event('error', { type: 'error', error: { type: 'overloaded_error', message: PLACEHOLDER } })],
    malformed: [...anthropicStart, anthropicDelta('Hello'), `event: content_block_delta\ndata: {not json ${PLACEHOLDER}\n\n`, ...anthropicEnd],
    error4xx: JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key ${PLACEHOLDER}` } }),
    error5xx: JSON.stringify({ type: 'error', error: { type: 'api_error', message: `internal error for ${PLACEHOLDER}` } }),
  },
  gemini: {
    answer: (text) => JSON.stringify(geminiChunk(text, 'STOP')),
    stream: (text) => [data(geminiChunk(text)), data(geminiChunk('', 'STOP'))],
    midStreamError: [data(geminiChunk('Hello')), data({ error: { code: 500, message: PLACEHOLDER, status: 'INTERNAL' } })],
    malformed: [data(geminiChunk('Hello')), `data: {not json ${PLACEHOLDER}\n\n`, data(geminiChunk('', 'STOP'))],
    error4xx: JSON.stringify({ error: { code: 403, message: `API key not valid: ${PLACEHOLDER}`, status: 'PERMISSION_DENIED' } }),
    error5xx: JSON.stringify({ error: { code: 500, message: `internal error for ${PLACEHOLDER}`, status: 'INTERNAL' } }),
  },
};
