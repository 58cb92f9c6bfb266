// The one HTTP client for upstreams: Node's own http/https with keep-alive agents.
// Node's built-in client rather than undici: the HTTP server already loads it, so the sidecar
// carries one HTTP stack instead of two (in a minimal proxy undici cost ~12 MB of idle RSS and
// ~18 MB at peak, for no gain in per-request CPU on the benchmark; docs/bench/findings.md).
// No timeouts for requests in flight are set here: every attempt enforces its first-byte/idle/
// total limits itself and aborts the request through `signal`, which destroys the connection.
import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { http, https } from '../core/node-http.ts';
import { currentTraceHeaders } from '../observability/outgoing-trace.ts';

const AGENT_OPTIONS = {
  keepAlive: true,
  // Reuse the most recently used connection first: the others can idle out.
  scheduling: 'lifo',
  maxFreeSockets: 256,
  // An idle pooled connection is closed after this, or a second before the upstream's own
  // `Keep-Alive: timeout=N`, whichever is sooner. Node's agent reads that hint only when it
  // has a timeout of its own: without one it reuses connections the upstream is closing at
  // that moment, and the attempt fails on a reset the upstream never caused (counted against
  // its circuit). Idle only: a connection in use is never timed out by the agent.
  timeout: 30_000,
} as const;

const httpAgent = pooled(new http.Agent(AGENT_OPTIONS));
let httpsAgent: Agent | undefined;

/** A pooled connection as it went back to the pool: when, and how many bytes it had read by then. */
interface Freed {
  at: number;
  bytesRead: number;
}

const freed = new WeakMap<Socket, Freed>();

function pooled(agent: Agent): Agent {
  agent.on('free', (socket: Socket) => freed.set(socket, { at: performance.now(), bytesRead: socket.bytesRead }));
  return agent;
}

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as it arrives; reading it to the end returns the connection to the pool. */
  body: IncomingMessage;
}

/**
 * Gives up a request. A response already whole whose 'end' is still to come (the SSE reader
 * read its body at once, and the attempt ended on what it read) is not cut then: Node's
 * keep-alive handling, run on that 'end', takes the socket's error listener away before the
 * abort's error reaches the socket, and the error would be uncaught. One turn of the tick
 * queue later the 'end' has been handled, the request is done (destroy does nothing) and its
 * connection goes back to the pool; a body still unread by then is cut as any other.
 */
function cut(outgoing: ClientRequest, response: IncomingMessage | undefined, signal: AbortSignal): void {
  if (response?.complete && !response.readableEnded) process.nextTick(() => outgoing.destroy(aborted(signal)));
  else outgoing.destroy(aborted(signal));
}

/**
 * A request written into a pooled connection the upstream had just closed for idleness goes out
 * once more, on a new connection. An upstream that closes idle connections without announcing
 * when (uvicorn after 5 s, so vLLM; gunicorn after 2) can close one just as the pool hands it
 * out: the request meets the close (a reset, or the end of the connection) before any byte of
 * an answer, and the upstream never took it up. Node's own advice for keep-alive clients is to
 * send it again. What qualifies, judged on what the client can see:
 * - the connection had idled at least IDLE_CLOSE_MIN_MS when the pool handed it out (no server
 *   closes one for idleness sooner): a reset of one in use a moment ago is the upstream failing;
 * - not one byte came back on it since: a reset after part of an answer is the upstream failing;
 * - the close came within CLOSE_RACE_MS of sending, about a round trip: one that comes later
 *   followed an upstream holding the request (working on it, then crashing), which must not be
 *   billed twice.
 * An upstream that resets every request as soon as it reads it looks the same, so the resend is
 * a single one, on a connection of its own: such an upstream gets the request twice at most per
 * attempt, and then the chain's policy (its retries and fallback) decides, as for any reset.
 */
const IDLE_CLOSE_MIN_MS = 1_000;
const CLOSE_RACE_MS = 500;

/** POSTs the request; resolves when the response headers arrive, rejects on a network error or abort. */
export function sendUpstream(req: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const { signal } = req;
    if (signal.aborted) {
      reject(aborted(signal));
      return;
    }
    const target = targetOf(req.url);
    const client = target.secure ? https() : http;
    // `fresh`: the resend, on a connection of its own (agent false) rather than another pooled one, which may be as stale.
    const send = (fresh: boolean): void => {
      const sentAt = performance.now();
      const outgoing = client.request(
        {
          ...target.options,
          method: 'POST',
          headers: headerList(req, target),
          agent: fresh ? false : poolFor(target),
        },
        (incoming) => {
          response = incoming;
          resolve({ statusCode: incoming.statusCode ?? 0, headers: incoming.headers, body: incoming });
        },
      );
      let response: IncomingMessage | undefined;
      // Aborting destroys the request (and with it the response and its connection). A listener
      // of our own rather than the request's `signal` option, which also sets up end-of-stream
      // tracking per request (~1.5 KB allocated per request; docs/bench/findings.md). The signal
      // belongs to this attempt alone, so the listener goes with it.
      const onAbort = (): void => cut(outgoing, response, signal);
      signal.addEventListener('abort', onAbort, { once: true });
      outgoing.on('error', (error: Error) => {
        if (!fresh && response === undefined && !signal.aborted && closedForIdleness(outgoing, error, sentAt)) {
          signal.removeEventListener('abort', onAbort);
          send(true);
          return;
        }
        reject(error);
      });
      // The string itself, not a Buffer made from it: Node encodes it into memory that is freed
      // as soon as the socket has taken it, where a Buffer would wait for a garbage collection
      // (megabytes per attempt with image bodies).
      outgoing.end(req.body, 'utf8');
    };
    send(false);
  });
}

/** The keep-alive pool for the target's scheme (https's made on the first https upstream). */
function poolFor(target: Target): Agent {
  return target.secure ? (httpsAgent ??= pooled(new (https().Agent)(AGENT_OPTIONS))) : httpAgent;
}

/**
 * The request, sent at `sentAt`, went out on a pooled connection idle long enough to be closed
 * for it, and met a reset, a write to a closed socket or the connection's end ("socket hang
 * up" is ECONNRESET too) before any byte came back, about a round trip after it was sent. Its
 * idleness is judged at `sentAt`, when the pool hands out a free connection at once (the agent
 * has no socket limit); one handed out later, after its 'free', never qualifies.
 */
function closedForIdleness(outgoing: ClientRequest, error: Error, sentAt: number): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  if (!outgoing.reusedSocket || (code !== 'ECONNRESET' && code !== 'EPIPE')) return false;
  const socket = outgoing.socket;
  const pooledAs = socket ? freed.get(socket) : undefined;
  if (!socket || !pooledAs) return false;
  return sentAt - pooledAs.at >= IDLE_CLOSE_MIN_MS && socket.bytesRead === pooledAs.bytesRead && performance.now() - sentAt <= CLOSE_RACE_MS;
}

/**
 * The request's header lines as a flat [name, value, …] list: Node writes such a list as it
 * is, where an object goes through setHeader() name by name (a copy and a validation each;
 * ~4 KB allocated per request). A list gets no Host header from Node: it is added here unless
 * the provider's headers set one. Trace headers continue the caller's trace at the upstream.
 */
function headerList(req: UpstreamRequest, target: Target): string[] {
  const list: string[] = [];
  let host = true;
  const trace = currentTraceHeaders();
  for (const name in req.headers) {
    const lower = name.toLowerCase();
    // Ours win: the length is the body's, a traced attempt's trace context is the attempt's.
    if (lower === 'content-length' || (trace && lower in trace)) continue;
    if (lower === 'host') host = false;
    list.push(name, req.headers[name] as string);
  }
  if (trace) for (const name in trace) list.push(name, trace[name] as string);
  if (host) list.push('host', target.host);
  list.push('content-length', String(Buffer.byteLength(req.body)));
  return list;
}

function aborted(signal: AbortSignal): Error {
  return Object.assign(new Error('the upstream request was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

interface Target {
  secure: boolean;
  /** The Host header: host name and port as the URL gives them (IPv6 in brackets, default port left out). */
  host: string;
  options: { protocol: string; hostname: string; port: string | undefined; path: string };
}

// Upstream URLs are few (one per provider and endpoint): each is parsed once, not per request.
const TARGETS = new Map<string, Target>();
const MAX_TARGETS = 1024;

function targetOf(url: string): Target {
  let target = TARGETS.get(url);
  if (!target) {
    const parsed = new URL(url);
    target = {
      secure: parsed.protocol === 'https:',
      host: parsed.host,
      options: {
        protocol: parsed.protocol,
        hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: parsed.port || undefined,
        path: `${parsed.pathname}${parsed.search}`,
      },
    };
    if (TARGETS.size >= MAX_TARGETS) TARGETS.clear();
    TARGETS.set(url, target);
  }
  return target;
}

/** Reads at most `limit` bytes of a body as text; the rest is discarded (error bodies can be huge). Events, not an async iterator: this runs on every request. */
export function readText(body: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      if (size < limit) chunks.push(chunk.subarray(0, limit - size));
      size += chunk.length;
    });
    body.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    body.once('error', reject);
    // A body cut short (connection reset, our abort) ends in 'close' without 'end'.
    body.once('close', () => {
      if (!body.complete) reject(Object.assign(new Error('the upstream closed the connection before the body was complete'), { code: 'ECONNRESET' }));
    });
  });
}
