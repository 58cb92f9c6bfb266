// A fast OpenAI-format upstream for benchmarks: node:http only, every body serialised
// once at start-up, so the mock costs as little as possible per request and the numbers
// measure the proxy in front of it.
//
//   node bench/mock-upstream.ts [--port 0] [--latency-ms 0] [--stream-chunks 8]
//                               [--slow-chunks 20] [--slow-interval-ms 100]
//
// Behaviour by the request body's `model`:
//   fail-503*     503 with an OpenAI error body (the fault mode for fallback cases)
//   slow-stream*  with stream:true, one event every --slow-interval-ms (--slow-chunks
//                 content events), for the concurrent-streams case
//   anything else 200: a chat completion, or with stream:true a whole SSE stream written
//                 at once (--stream-chunks content events)
// Every answer waits --latency-ms first (0: none). Prints one JSON line
// {"event":"listening","port":N} on stdout once it accepts connections. Binds 127.0.0.1 only.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

export interface MockOptions {
  port: number;
  latencyMs: number;
  streamChunks: number;
  slowChunks: number;
  slowIntervalMs: number;
}

const USAGE = { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 };
const CREATED = 1_700_000_000;

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const event = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`;

function chunk(delta: Record<string, string>, finish: string | null, withUsage: boolean): unknown {
  return {
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: 'mock',
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(withUsage ? { usage: null } : {}),
  };
}

/** The events of one successful stream, without [DONE]: role, N content pieces, finish, usage if asked. */
function streamEvents(pieces: number, withUsage: boolean): string[] {
  const events = [event(chunk({ role: 'assistant', content: '' }, null, withUsage))];
  for (let i = 0; i < pieces; i++) events.push(event(chunk({ content: ` tok${i}` }, null, withUsage)));
  events.push(event(chunk({}, 'stop', withUsage)));
  if (withUsage) {
    events.push(event({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: CREATED, model: 'mock', choices: [], usage: USAGE }));
  }
  return events;
}

const DONE = 'data: [DONE]\n\n';

interface Bodies {
  completion: Buffer;
  error503: Buffer;
  stream: Buffer;
  streamWithUsage: Buffer;
  slow: Buffer[];
  slowWithUsage: Buffer[];
}

function buildBodies(o: MockOptions): Bodies {
  const content = Array.from({ length: o.streamChunks }, (_, i) => ` tok${i}`).join('');
  return {
    completion: json({
      id: 'chatcmpl-bench',
      object: 'chat.completion',
      created: CREATED,
      model: 'mock',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: USAGE,
    }),
    error503: json({ error: { message: 'mock upstream: overloaded (fault mode)', type: 'server_error', param: null, code: null } }),
    stream: Buffer.from(streamEvents(o.streamChunks, false).join('') + DONE),
    streamWithUsage: Buffer.from(streamEvents(o.streamChunks, true).join('') + DONE),
    slow: [...streamEvents(o.slowChunks, false), DONE].map((e) => Buffer.from(e)),
    slowWithUsage: [...streamEvents(o.slowChunks, true), DONE].map((e) => Buffer.from(e)),
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

interface Parsed {
  model: string;
  stream: boolean;
  includeUsage: boolean;
}

function parseBody(raw: string): Parsed | undefined {
  try {
    const body = JSON.parse(raw) as { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } | null };
    return {
      model: typeof body.model === 'string' ? body.model : '',
      stream: body.stream === true,
      includeUsage: body.stream_options?.include_usage === true,
    };
  } catch {
    return undefined;
  }
}

function sendBuffer(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  res.writeHead(status, { ...headers, 'content-length': body.length });
  res.end(body);
}

/** Writes one event per interval; stops (and clears its timer) if the client goes away. */
function slowStream(res: ServerResponse, events: Buffer[], intervalMs: number): void {
  res.writeHead(200, SSE_HEADERS);
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    if (res.destroyed) return;
    const piece = events[next++];
    if (piece === undefined) return void res.end();
    res.write(piece);
    if (next >= events.length) return void res.end();
    timer = setTimeout(tick, intervalMs);
  };
  res.on('close', () => clearTimeout(timer));
  tick();
}

function answer(res: ServerResponse, parsed: Parsed | undefined, bodies: Bodies, o: MockOptions): void {
  if (parsed === undefined)
    return sendBuffer(
      res,
      400,
      JSON_HEADERS,
      json({ error: { message: 'mock upstream: body is not JSON', type: 'invalid_request_error', param: null, code: null } }),
    );
  if (parsed.model.startsWith('fail-503')) return sendBuffer(res, 503, JSON_HEADERS, bodies.error503);
  if (!parsed.stream) return sendBuffer(res, 200, JSON_HEADERS, bodies.completion);
  if (parsed.model.startsWith('slow-stream')) return slowStream(res, parsed.includeUsage ? bodies.slowWithUsage : bodies.slow, o.slowIntervalMs);
  res.writeHead(200, SSE_HEADERS);
  res.end(parsed.includeUsage ? bodies.streamWithUsage : bodies.stream);
}

function handler(bodies: Bodies, o: MockOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const models = json({ object: 'list', data: [{ id: 'mock', object: 'model', created: CREATED, owned_by: 'bench' }] });
  return (req, res) => {
    if (req.method !== 'POST') {
      req.resume();
      return sendBuffer(res, 200, JSON_HEADERS, models);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const parsed = parseBody(Buffer.concat(chunks).toString('utf8'));
      if (o.latencyMs <= 0) return answer(res, parsed, bodies, o);
      const timer = setTimeout(() => answer(res, parsed, bodies, o), o.latencyMs);
      res.on('close', () => clearTimeout(timer));
    });
  };
}

export interface RunningMock {
  port: number;
  close(): Promise<void>;
}

export async function startMockUpstream(o: MockOptions): Promise<RunningMock> {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true }, handler(buildBodies(o), o));
  server.maxRequestsPerSocket = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: o.port, host: '127.0.0.1', backlog: 4096 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function intFlag(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: "${value}" is not a non-negative integer`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'latency-ms': { type: 'string' },
      'stream-chunks': { type: 'string' },
      'slow-chunks': { type: 'string' },
      'slow-interval-ms': { type: 'string' },
    },
    strict: true,
  });
  const mock = await startMockUpstream({
    port: intFlag(values.port, 0, 'port'),
    latencyMs: intFlag(values['latency-ms'], 0, 'latency-ms'),
    streamChunks: intFlag(values['stream-chunks'], 8, 'stream-chunks'),
    slowChunks: intFlag(values['slow-chunks'], 20, 'slow-chunks'),
    slowIntervalMs: intFlag(values['slow-interval-ms'], 100, 'slow-interval-ms'),
  });
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: mock.port })}\n`);
  const stop = (): void => void mock.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
