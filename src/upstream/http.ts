// The one HTTP client for upstreams: undici's keep-alive connection pools, driven through its
// dispatch handler API, so a JSON answer's bytes are collected as they arrive with no stream
// object, and a stream's body becomes a Readable only when a stream is asked for.
// Why undici and not Node's own client (which the sidecar used from the second round of issue
// 16 to the eighth sitting): Node's ClientRequest, agent and IncomingMessage cost ~40 µs of CPU
// per request more in a minimal proxy (~129 against ~88 µs), and 25–45% of the sidecar's; the
// price is ~5 MB of resident memory at idle (undici's pool and its WebAssembly HTTP parser).
// Measured in docs/bench/findings.md, "ninth sitting".
// No timeouts for requests in flight are set here: every attempt enforces its first-byte/idle/
// total limits itself and aborts the request through `signal`, which closes the connection.
import { channel } from 'node:diagnostics_channel';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { currentTraceHeaders } from '../observability/outgoing-trace.ts';
import { kQueuedAbort, PoolAgent, SingleConnection } from './undici-pool.ts';

const POOL_OPTIONS = {
  // An idle connection is closed after 30 s, or a second before the upstream's own
  // `Keep-Alive: timeout=N`, whichever is sooner: reusing a connection the upstream is closing
  // at that moment fails a request the upstream never saw (counted against its circuit).
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 30_000,
  keepAliveTimeoutThreshold: 1_000,
  // The attempt's limits apply instead: a model may think longer than undici's 300 s default
  // before its first byte, and a stream's idle limit is the chain's.
  headersTimeout: 0,
  bodyTimeout: 0,
  // HTTP/1.1, as with Node's client: undici 8 offers HTTP/2 to TLS upstreams by default, where a
  // stream the upstream resets mid-body ends like a complete one, and where the idle-close
  // resend below does not apply.
  allowH2: false,
} satisfies Agent.Options;

const pools = new PoolAgent(POOL_OPTIONS);

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: UpstreamBody;
}

/** A pooled connection as its last answer ended: when, and how many bytes it had read by then. */
interface Freed {
  at: number;
  bytesRead: number;
}

const freed = new WeakMap<Socket, Freed>();

/**
 * A request written into a pooled connection the upstream had just closed for idleness goes out
 * once more, on a new connection. An upstream that closes idle connections without announcing
 * when (uvicorn after 5 s, so vLLM; gunicorn after 2) can close one just as the pool hands it
 * out: the request meets the close (a reset, or the end of the connection) before any byte of
 * an answer, and the upstream never took it up. What qualifies, judged on what the client can see:
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
const CLOSE_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * Which connection a request went out on. undici tells its handler nothing of the connection,
 * but it publishes the request's headers with the socket on `undici:client:sendHeaders` (a
 * documented diagnostics channel) in the same synchronous step as it calls the handler's
 * onRequestStart: the exchange that just started is the one being written.
 */
let starting: Exchange | undefined;
const startingNow = (exchange: Exchange): void => {
  starting = exchange;
};
channel('undici:client:sendHeaders').subscribe((message) => {
  const exchange = starting;
  starting = undefined;
  exchange?.sending((message as { socket: Socket }).socket);
});

/** POSTs the request; resolves when the response headers arrive, rejects on a network error or abort. */
export function sendUpstream(req: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    if (req.signal.aborted) {
      reject(aborted(req.signal));
      return;
    }
    // The headers now, in the caller's context: a resend runs in undici's callbacks, where the
    // trace context is that of whichever request opened the connection.
    new Exchange(req, targetOf(req.url), headerList(req), { resolve, reject }).send(false);
  });
}

interface Settle {
  resolve(response: UpstreamResponse): void;
  reject(error: unknown): void;
}

/** One request to an upstream, as undici's handler: the answer's head settles the promise, its bytes go to the body. */
class Exchange implements Dispatcher.DispatchHandler, BodySource {
  readonly #req: UpstreamRequest;
  readonly #target: Target;
  readonly #headers: string[];
  readonly #settle: Settle;
  readonly #body: UpstreamBody;
  #controller: Dispatcher.DispatchController | undefined;
  /** Set by undici while the request waits for a connection: takes it out of the queue, and gives up the connect. */
  #cancelQueued: ((reason: Error) => void) | undefined;
  #fresh = false;
  #started = false;
  #socket: Socket | undefined;
  #pooledAs: Freed | undefined;
  #sentAt = 0;
  readonly #onAbort = (): void => {
    const reason = aborted(this.#req.signal);
    if (!this.#started) this.#settle.reject(reason);
    if (this.#controller) this.#controller.abort(reason);
    else this.#cancelQueued?.(reason);
  };

  constructor(req: UpstreamRequest, target: Target, headers: string[], settle: Settle) {
    this.#req = req;
    this.#target = target;
    this.#headers = headers;
    this.#settle = settle;
    this.#body = new UpstreamBody(this);
  }

  resume(): void {
    this.#controller?.resume();
  }

  cancel(reason: Error): void {
    this.#controller?.abort(reason);
  }

  /** `fresh`: the resend, on a connection of its own rather than another pooled one, which may be as stale. */
  send(fresh: boolean): void {
    this.#fresh = fresh;
    this.#req.signal.addEventListener('abort', this.#onAbort, { once: true });
    const options = {
      origin: this.#target.origin,
      path: this.#target.path,
      method: 'POST',
      servername: this.#target.servername,
      headers: this.#headers,
      body: this.#req.body,
      [kQueuedAbort]: (cancel: (reason: Error) => void) => (this.#cancelQueued = cancel),
    } as const;
    if (!fresh) {
      pools.dispatch(options, this);
      return;
    }
    const connection = new SingleConnection(this.#target.origin, POOL_OPTIONS);
    connection.dispatch(options, this);
    // Closes once this request is done; a close that fails has nothing left to close.
    connection.close().catch(() => undefined);
  }

  /** Called as the request's head is written to `socket` (see `starting`). */
  sending(socket: Socket): void {
    this.#socket = socket;
    this.#pooledAs = freed.get(socket);
    this.#sentAt = performance.now();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#req.signal.aborted) controller.abort(aborted(this.#req.signal));
    else startingNow(this);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx (102 Processing, 103 Early Hints) comes before the answer and is not it.
    if (statusCode < 200) return;
    this.#started = true;
    this.#settle.resolve({ statusCode, headers, body: this.#body });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#body.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#req.signal.removeEventListener('abort', this.#onAbort);
    const socket = this.#socket;
    if (socket) freed.set(socket, { at: performance.now(), bytesRead: socket.bytesRead });
    this.#body.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    const { signal } = this.#req;
    signal.removeEventListener('abort', this.#onAbort);
    if (!this.#started && !this.#fresh && !signal.aborted && this.#closedForIdleness(error)) {
      new Exchange(this.#req, this.#target, this.#headers, this.#settle).send(true);
      return;
    }
    const reason = signal.aborted ? aborted(signal) : error;
    if (this.#started) this.#body.fail(reason);
    else this.#settle.reject(reason);
  }

  /**
   * The request went out on a pooled connection idle long enough to be closed for it, and met a
   * reset, a write to a closed socket or the connection's end before any byte came back, about
   * a round trip after it was sent.
   */
  #closedForIdleness(error: Error): boolean {
    const code = (error as NodeJS.ErrnoException).code;
    const socket = this.#socket;
    const pooledAs = this.#pooledAs;
    if (!socket || !pooledAs || code === undefined || !CLOSE_CODES.has(code)) return false;
    return this.#sentAt - pooledAs.at >= IDLE_CLOSE_MIN_MS && socket.bytesRead === pooledAs.bytesRead && performance.now() - this.#sentAt <= CLOSE_RACE_MS;
  }
}

/** What a body can ask of its request: to go on after a pause, or to stop. */
interface BodySource {
  resume(): void;
  cancel(reason: Error): void;
}

/**
 * An answer's body as it arrives, read once: whole as text (`text`), or as a stream (`stream`).
 * Until one of them is asked for, what arrives is kept (the attempt asks as soon as the head
 * has come, in the same turn of the event loop).
 */
export class UpstreamBody {
  readonly #upstream: BodySource;
  #chunks: Buffer[] = [];
  #kept = 0;
  #limit = Number.POSITIVE_INFINITY;
  #ended = false;
  #error: Error | undefined;
  #reader: { resolve(text: string): void; reject(error: Error): void } | undefined;
  #readable: Readable | undefined;

  constructor(upstream: BodySource) {
    this.#upstream = upstream;
  }

  /** The whole body arrived: its connection is back in the pool. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Reads at most `limit` bytes of the body as text; the rest is read and discarded (error bodies can be huge). */
  text(limit: number): Promise<string> {
    this.#limit = limit;
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(this.#joined());
    return new Promise((resolve, reject) => (this.#reader = { resolve, reject }));
  }

  /** The body as a byte stream; destroying it before its end cancels the request. */
  stream(): Readable {
    if (this.#readable) return this.#readable;
    const readable = new Readable({
      read: () => this.#upstream.resume(),
      destroy: (error, callback) => {
        if (!this.#ended && this.#error === undefined) this.#upstream.cancel(error ?? new Error('the upstream body was closed before its end'));
        callback(error);
      },
    });
    for (const chunk of this.#chunks) readable.push(chunk);
    this.#chunks = [];
    if (this.#error) readable.destroy(this.#error);
    else if (this.#ended) readable.push(null);
    this.#readable = readable;
    return readable;
  }

  /** A chunk from the upstream; false when a stream's reader is full (the upstream is then paused until it reads). */
  push(chunk: Buffer): boolean {
    if (this.#readable) return this.#readable.push(chunk);
    if (this.#kept < this.#limit) this.#chunks.push(this.#kept + chunk.length > this.#limit ? chunk.subarray(0, this.#limit - this.#kept) : chunk);
    this.#kept += chunk.length;
    return true;
  }

  /** The upstream's last byte came. */
  end(): void {
    this.#ended = true;
    if (this.#readable) this.#readable.push(null);
    else this.#reader?.resolve(this.#joined());
  }

  /** The body was cut short: the connection broke, or the request was aborted. */
  fail(error: Error): void {
    this.#error = error;
    if (this.#readable) this.#readable.destroy(error);
    else this.#reader?.reject(error);
  }

  #joined(): string {
    const chunks = this.#chunks;
    const whole = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    return (whole.length > this.#limit ? whole.subarray(0, this.#limit) : whole).toString('utf8');
  }
}

/**
 * The connection's own headers, the client's to write: undici refuses a request that sets one
 * (a provider header of that name would fail every attempt, counted against the circuit), and
 * a proxy does not pass them on (RFC 9110, 7.6.1). The Content-Length is the body's.
 */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'content-length']);

/**
 * The request's header lines as a flat [name, value, …] list. undici writes the Host header
 * from the URL unless the list has one (a provider's own), and the Content-Length from the
 * body. Trace headers continue the caller's trace at the upstream.
 */
function headerList(req: UpstreamRequest): string[] {
  const list: string[] = [];
  const trace = currentTraceHeaders();
  for (const name in req.headers) {
    const lower = name.toLowerCase();
    // Ours win: the connection's headers are the client's, a traced attempt's trace context is the attempt's.
    if (CONNECTION_HEADERS.has(lower) || (trace && lower in trace)) continue;
    list.push(name, req.headers[name] as string);
  }
  if (trace) for (const name in trace) list.push(name, trace[name] as string);
  return list;
}

function aborted(signal: AbortSignal): Error {
  return Object.assign(new Error('the upstream request was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

interface Target {
  /** Scheme, host and port: the pool's key. */
  origin: string;
  path: string;
  /** The TLS name: the URL's host name, as Node's client used (undici would take a provider's Host header instead); none for an IP address. */
  servername: string | undefined;
}

// Upstream URLs are few (one per provider and endpoint): each is parsed once, not per request.
const TARGETS = new Map<string, Target>();
const MAX_TARGETS = 1024;

function targetOf(url: string): Target {
  let target = TARGETS.get(url);
  if (!target) {
    const parsed = new URL(url);
    const hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}`, servername: isIP(hostname) ? undefined : hostname };
    if (TARGETS.size >= MAX_TARGETS) TARGETS.clear();
    TARGETS.set(url, target);
  }
  return target;
}
