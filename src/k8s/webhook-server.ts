// Thin transport for the admission webhook: HTTPS (the API server only calls webhooks over
// TLS) with the certificate re-read when its files change (cert-manager or a Secret update
// rotates them), and a plain-HTTP health port for the kubelet.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.ts';

export const MUTATE_PATH = '/mutate-pods';
/**
 * The API server refuses request bodies over 3 MiB, so an AdmissionReview of a pod it
 * accepted is at most that plus the review's envelope (uid, userInfo, kind…). Anything
 * larger did not come from the API server; refusing it before parsing keeps the webhook
 * (which anyone who reaches the port can call) far inside its memory limit.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024 + 512 * 1024;
/**
 * Bytes of request bodies held at once, all requests together: a few of the largest reviews.
 * Beyond it a request is answered 503 at once instead of buffered, so many concurrent large
 * bodies cannot take the controller past its memory limit (the API server's own reviews are
 * a few KB each).
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 4 * MAX_BODY_BYTES;
/**
 * A body up to this size is a small one: an ordinary pod's review is a few KiB, one with many
 * containers and long env lists some tens. Small bodies may use the whole budget.
 */
export const SMALL_BODY_BYTES = 256 * 1024;
/**
 * The part of the budget only small bodies may use. Without it, four slow bodies of the
 * largest size held the whole budget for the request timeout and every review meanwhile got
 * 503 (under failurePolicy: Ignore, pods started without the sidecar). Large bodies share
 * the rest: three of the largest at once.
 */
export const DEFAULT_SMALL_BODY_RESERVE_BYTES = 2 * 1024 * 1024;
/**
 * A body that sends nothing for this long is given up (408, connection closed) and its bytes
 * released. The API server writes a review at once; only a client holding the budget on
 * purpose, or a dead one, goes silent in the middle of a body.
 */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 5_000;
/** The API server gives up on a webhook after at most 30 s; a slower client is not it. */
const REQUEST_TIMEOUT_MS = 30_000;
const HEADERS_TIMEOUT_MS = 10_000;

export interface WebhookServerOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  /** How often the certificate files are checked for a change (0: never). */
  reloadIntervalMs: number;
  logger: Logger;
  /** Answers one AdmissionReview (status 200) or refuses an unreadable one (400); must not throw. */
  review: (body: unknown) => Promise<{ status: number; body: unknown }>;
  /** A request refused before review: too_large, busy (the body budget, or large bodies' share of it, is spent), idle (the body stalled), not_json. */
  onRejected?: (reason: WebhookRejection) => void;
  /** The body bytes held now, small and large bodies apart (on every change): the budget's gauge. */
  onBodyBytesHeld?: (held: BodyBytesHeld) => void;
  /** Budget of body bytes buffered across concurrent requests (default DEFAULT_MAX_BUFFERED_BYTES). */
  maxBufferedBytes?: number;
  /** The part of the budget kept for bodies up to SMALL_BODY_BYTES (default DEFAULT_SMALL_BODY_RESERVE_BYTES). */
  smallBodyReserveBytes?: number;
  /** How long a body may send nothing before it is given up (default DEFAULT_BODY_IDLE_TIMEOUT_MS). */
  bodyIdleTimeoutMs?: number;
}

export type WebhookRejection = 'too_large' | 'busy' | 'idle' | 'not_json';

export interface BodyBytesHeld {
  /** Bytes of bodies that are still within SMALL_BODY_BYTES. */
  small: number;
  /** Bytes of larger bodies (at most the budget less the reserve). */
  large: number;
}

export interface RunningWebhookServer {
  port: number;
  url: string;
  /** Re-read the certificate files now; true if they changed and were loaded. */
  reloadCertificate(): Promise<boolean>;
  close(): Promise<void>;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<RunningWebhookServer> {
  const { logger } = options;
  let loaded = await readPair(options.certFile, options.keyFile);
  const budget = new BodyBudget(
    options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    options.smallBodyReserveBytes ?? DEFAULT_SMALL_BODY_RESERVE_BYTES,
    options.onBodyBytesHeld,
  );
  const server = https.createServer({ cert: loaded.cert, key: loaded.key }, (req, res) => {
    void handle(req, res, options, budget).catch((error: unknown) => {
      logger.error({ err: error }, 'webhook request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.on('tlsClientError', (error) => logger.debug({ err: error }, 'webhook TLS handshake failed'));
  await listen(server, options.port, options.host);

  const reloadCertificate = async (): Promise<boolean> => {
    const next = await readPair(options.certFile, options.keyFile);
    if (next.digest === loaded.digest) return false;
    server.setSecureContext({ cert: next.cert, key: next.key });
    loaded = next;
    logger.info({ certFile: options.certFile }, 'webhook certificate reloaded');
    return true;
  };
  const timer =
    options.reloadIntervalMs > 0
      ? setInterval(() => {
          reloadCertificate().catch((error: unknown) => logger.warn({ err: error }, 'webhook certificate reload failed; keeping the current one'));
        }, options.reloadIntervalMs)
      : undefined;

  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://${hostForUrl(options.host)}:${port}${MUTATE_PATH}`,
    reloadCertificate,
    async close() {
      if (timer !== undefined) clearInterval(timer);
      await closeServer(server);
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: WebhookServerOptions, budget: BodyBudget): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== MUTATE_PATH) return send(res, 404, { error: `not found; the webhook path is ${MUTATE_PATH}` });
  if (req.method !== 'POST') return send(res, 405, { error: 'POST an AdmissionReview' });
  const declared = Number(req.headers['content-length']);
  const idleMs = options.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS;
  const read =
    Number.isFinite(declared) && declared > MAX_BODY_BYTES
      ? { kind: 'too_large' as const }
      : await readBody(req, budget, Number.isFinite(declared) ? declared : 0, idleMs);
  if (read.kind !== 'ok') {
    options.onRejected?.(read.kind);
    // Close the connection: the rest of the body is not read.
    res.setHeader('connection', 'close');
    if (read.kind === 'busy') {
      res.setHeader('retry-after', '1');
      return send(res, 503, { error: 'too many large requests at once' });
    }
    if (read.kind === 'idle') return send(res, 408, { error: `request body stalled: nothing received for ${idleMs} ms` });
    return send(res, 413, { error: `body too large (the limit is ${MAX_BODY_BYTES} bytes)` });
  }
  try {
    let body: unknown;
    try {
      body = JSON.parse(read.text);
    } catch {
      options.onRejected?.('not_json');
      return send(res, 400, { error: 'body is not JSON' });
    }
    const answer = await options.review(body);
    send(res, answer.status, answer.body);
  } finally {
    read.release();
  }
}

export interface HealthServerOptions {
  host: string;
  port: number;
  /** /readyz answers 200 only while this is true. */
  ready: () => boolean;
  /** Extra facts for the JSON body (e.g. whether this replica leads). */
  details?: () => Record<string, unknown>;
  /** GET /metrics: the Prometheus exposition. */
  metrics?: () => Promise<{ contentType: string; text: string }>;
}

export interface RunningHealthServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<RunningHealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics' && options.metrics !== undefined) {
      options.metrics().then(
        ({ contentType, text }) => {
          res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
        () => send(res, 500, { error: 'metrics unavailable' }),
      );
      return;
    }
    const details = options.details?.() ?? {};
    if (path === '/healthz') return send(res, 200, { status: 'ok', ...details });
    if (path === '/readyz') {
      const ready = options.ready();
      return send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', ...details });
    }
    send(res, 404, { error: 'not found' });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  await listen(server, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  return { port, url: `http://${hostForUrl(options.host)}:${port}`, close: () => closeServer(server) };
}

async function readPair(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer; digest: string }> {
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  const digest = createHash('sha256').update(cert).update('\0').update(key).digest('hex');
  return { cert, key, digest };
}

/**
 * Body bytes held by all requests together, in two classes: bytes of bodies still within
 * SMALL_BODY_BYTES may use the whole budget; bytes of larger bodies only the budget less the
 * reserve, so large bodies, however slow, always leave room for ordinary reviews.
 */
class BodyBudget {
  readonly #limit: number;
  readonly #largeLimit: number;
  readonly #onChange: ((held: BodyBytesHeld) => void) | undefined;
  #small = 0;
  #large = 0;
  constructor(limit: number, reserve: number, onChange?: (held: BodyBytesHeld) => void) {
    this.#limit = limit;
    this.#largeLimit = Math.max(0, limit - reserve);
    this.#onChange = onChange;
  }
  take(bytes: number, large: boolean): boolean {
    if (this.#small + this.#large + bytes > this.#limit) return false;
    if (large && this.#large + bytes > this.#largeLimit) return false;
    if (large) this.#large += bytes;
    else this.#small += bytes;
    this.#changed();
    return true;
  }
  /** A body grew past SMALL_BODY_BYTES: the bytes it holds move to the large share, if that has room. */
  promote(bytes: number): boolean {
    if (this.#large + bytes > this.#largeLimit) return false;
    this.#small -= bytes;
    this.#large += bytes;
    this.#changed();
    return true;
  }
  release(bytes: number, large: boolean): void {
    if (bytes === 0) return;
    if (large) this.#large -= bytes;
    else this.#small -= bytes;
    this.#changed();
  }
  #changed(): void {
    this.#onChange?.({ small: this.#small, large: this.#large });
  }
}

type BodyRead = { kind: 'ok'; text: string; release: () => void } | { kind: 'too_large' } | { kind: 'busy' } | { kind: 'idle' };

/**
 * The body, unless it grows past MAX_BODY_BYTES, its class's share of the budget is spent, or
 * it sends nothing for `idleMs`: then the rest is left unread (the answer closes the
 * connection) and what was held is released at once. A body is large from the start when it
 * declares more than SMALL_BODY_BYTES, else once it grows past that. On 'ok' the caller calls
 * `release` when done with the body.
 */
function readBody(req: IncomingMessage, budget: BodyBudget, declared: number, idleMs: number): Promise<BodyRead> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let large = declared > SMALL_BODY_BYTES;
    let settled = false;
    const idle = setTimeout(() => finish({ kind: 'idle' }), idleMs);
    const finish = (outcome: BodyRead | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      req.off('data', onData);
      if (outcome instanceof Error || outcome.kind !== 'ok') {
        req.pause();
        chunks.length = 0;
        budget.release(size, large);
      }
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      idle.refresh();
      if (size + chunk.length > MAX_BODY_BYTES) return finish({ kind: 'too_large' });
      if (!large && size + chunk.length > SMALL_BODY_BYTES) {
        if (!budget.promote(size)) return finish({ kind: 'busy' });
        large = true;
      }
      if (!budget.take(chunk.length, large)) return finish({ kind: 'busy' });
      size += chunk.length;
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      const held = size;
      const heldLarge = large;
      finish({ kind: 'ok', text: Buffer.concat(chunks).toString('utf8'), release: () => budget.release(held, heldLarge) });
    });
    req.once('error', (error) => finish(error));
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function listen(server: http.Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error as Error))]);
}

async function closeServer(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

function hostForUrl(host: string): string {
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return shown.includes(':') ? `[${shown}]` : shown;
}
