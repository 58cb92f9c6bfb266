// The sidecar's two API calls, over node:https (node:http when a kubeconfig names an http
// server, as test harnesses may): a GET of a JSON document (the list) and a GET of a watch
// stream, newline-delimited JSON events. A refused credential is read again once (401).
import type { ClientRequest, IncomingMessage } from 'node:http';
import { http, https } from '../core/node-http.ts';
import type { ApiEndpoint } from './api-endpoint.ts';

/** An answer other than 2xx, or a watch ERROR event: `statusCode` is the HTTP status or the Status object's code. */
export class KubeApiError extends Error {
  readonly code = 'KUBE_API';
  readonly statusCode: number | undefined;
  readonly reason: string | undefined;
  constructor(message: string, statusCode: number | undefined, reason?: string) {
    super(message);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

/**
 * An open watch stream that stopped mid-way (the connection was cut or went silent): nothing
 * says the resourceVersion is stale, so the informer watches again from it instead of listing.
 */
export class WatchInterruptedError extends Error {
  readonly code = 'KUBE_WATCH_INTERRUPTED';
  constructor(message: string) {
    super(message);
    this.name = 'WatchInterruptedError';
  }
}

/** 410 Gone: the resourceVersion is older than the server keeps (compaction); list again. */
export function isGone(error: unknown): boolean {
  return error instanceof KubeApiError && error.statusCode === 410;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: Record<string, unknown>;
}

/** Longest error body read (a Status object is a few hundred bytes). */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Longest watch event line: far above any FallbackChain (the CRD caps them), well below the heap. */
const EVENT_LINE_LIMIT = 8 * 1024 * 1024;
/**
 * Longest list answer: thousands of the largest FallbackChains, yet far below what a flooding
 * server or proxy would need to exhaust the heap (a string past ~512 MB is a RangeError).
 */
export const LIST_BODY_LIMIT = 64 * 1024 * 1024;

export interface GetOptions {
  /** Abort the request (its socket is destroyed). */
  signal?: AbortSignal;
  /** Fails the request when no byte moved for this long. */
  idleTimeoutMs?: number;
}

/** GET `path` and parse the JSON answer; KubeApiError for any other status. */
export async function getJson(endpoint: ApiEndpoint, path: string, options: GetOptions = {}): Promise<unknown> {
  const response = await get(endpoint, path, options);
  const body = await readBody(
    response,
    LIST_BODY_LIMIT,
    () => new KubeApiError(`GET ${path}: the answer is over ${LIST_BODY_LIMIT} bytes`, response.statusCode),
  );
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new KubeApiError(`GET ${path}: the answer is not JSON`, response.statusCode);
  }
}

/**
 * GET a watch `path` and call `onEvent` for each event until the server ends the stream
 * (resolves) or it fails (rejects). An ERROR event rejects with its Status code (410 on
 * compaction); so does `onEvent` throwing. Aborting `signal` ends it, resolved.
 */
export async function watchEvents(endpoint: ApiEndpoint, path: string, onEvent: (event: WatchEvent) => void, options: GetOptions = {}): Promise<void> {
  const response = await get(endpoint, path, options);
  response.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else {
        response.destroy();
        reject(error);
      }
    };
    const onAbort = (): void => {
      response.destroy();
      finish();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) return onAbort();
    // The line being assembled, in pieces: only each new chunk is searched for '\n' (re-scanning
    // the whole buffer per chunk made a multi-megabyte event cost seconds).
    let pending: string[] = [];
    let pendingLength = 0;
    response.on('data', (chunk: string) => {
      try {
        let start = 0;
        for (let newline = chunk.indexOf('\n'); newline >= 0; newline = chunk.indexOf('\n', start)) {
          pending.push(chunk.slice(start, newline));
          const line = pending.join('').trim();
          pending = [];
          pendingLength = 0;
          start = newline + 1;
          if (line !== '') onEvent(parseEvent(line, path));
        }
        if (start < chunk.length) {
          pending.push(chunk.slice(start));
          pendingLength += chunk.length - start;
        }
        if (pendingLength > EVENT_LINE_LIMIT) throw new KubeApiError(`watch ${path}: an event line over ${EVENT_LINE_LIMIT} bytes`, undefined);
      } catch (error) {
        finish(error as Error);
      }
    });
    response.on('end', () => {
      try {
        const line = pending.join('').trim();
        if (line !== '') onEvent(parseEvent(line, path));
        finish();
      } catch (error) {
        finish(error as Error);
      }
    });
    // A connection cut mid-stream ('aborted', then 'error' or 'close' without 'end').
    response.on('error', (error) =>
      finish(options.signal?.aborted ? undefined : new WatchInterruptedError(`watch ${path}: connection lost (${error.message})`)),
    );
    response.on('close', () =>
      finish(options.signal?.aborted || response.complete ? undefined : new WatchInterruptedError(`watch ${path}: connection closed mid-stream`)),
    );
  });
}

function parseEvent(line: string, path: string): WatchEvent {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    throw new KubeApiError(`watch ${path}: an event that is not JSON`, undefined);
  }
  const { type, object } = (event ?? {}) as { type?: unknown; object?: unknown };
  if (typeof object !== 'object' || object === null) throw new KubeApiError(`watch ${path}: an event without an object`, undefined);
  const body = object as Record<string, unknown>;
  if (type === 'ERROR') throw statusError(`watch ${path}`, body, undefined);
  if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK')
    throw new KubeApiError(`watch ${path}: unknown event type ${String(type)}`, undefined);
  return { type, object: body };
}

/** A KubeApiError from a Status object (`{ code, reason, message }`), or from the HTTP status when there is none. */
function statusError(what: string, status: Record<string, unknown> | undefined, httpStatus: number | undefined): KubeApiError {
  const code = typeof status?.['code'] === 'number' ? status['code'] : httpStatus;
  const reason = typeof status?.['reason'] === 'string' ? status['reason'] : undefined;
  const message = typeof status?.['message'] === 'string' ? status['message'] : reason;
  return new KubeApiError(`${what}: ${String(code ?? 'error')}${message ? ` ${message}` : ''}`, code, reason);
}

/** One GET; a 401 reads the credentials again and, when they changed, retries once. Non-2xx answers reject. */
async function get(endpoint: ApiEndpoint, path: string, options: GetOptions): Promise<IncomingMessage> {
  for (let attempt = 1; ; attempt++) {
    const response = await send(endpoint, path, options).catch((error: unknown) => {
      // The server's certificate no longer verifies: the CA may have rotated; the next request reads the files again.
      if (isTlsVerificationError(error)) endpoint.tlsRejected();
      throw error;
    });
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return response;
    const body = await readBody(response, ERROR_BODY_LIMIT).catch(() => '');
    if (status === 401 && attempt === 1 && endpoint.unauthorized()) continue;
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(body) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    // The HTTP status wins: a Status body's code says the same, and a proxy's body may not be a Status.
    throw statusError(`GET ${path}`, { ...parsed, code: status }, status);
  }
}

/** OpenSSL's verification codes, and Node's for a name mismatch: what a rotated CA or certificate causes. */
function isTlsVerificationError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code));
}

function send(endpoint: ApiEndpoint, path: string, options: GetOptions): Promise<IncomingMessage> {
  return endpoint.requestOptions().then(
    (requestOptions) =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const url = new URL(`${endpoint.server}${path}`);
        const client = url.protocol === 'http:' ? http : https();
        const request: ClientRequest = client.request(
          url,
          {
            ...requestOptions,
            method: 'GET',
            headers: { ...requestOptions.headers, accept: 'application/json' },
            ...(options.signal ? { signal: options.signal } : {}),
          },
          resolve,
        );
        if (options.idleTimeoutMs !== undefined)
          request.setTimeout(options.idleTimeoutMs, () => request.destroy(new Error(`GET ${path}: nothing received for ${options.idleTimeoutMs} ms`)));
        request.on('error', reject);
        request.end();
      }),
  );
}

/**
 * The body as text. Past `limit` bytes: the rest is dropped, or, given `tooLong`, the response
 * is destroyed and the promise rejects with its error (a list must be whole or fail).
 */
function readBody(response: IncomingMessage, limit: number, tooLong?: () => Error): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const fail = (error: Error): void => {
      response.destroy();
      reject(error);
    };
    response.on('data', (chunk: Buffer) => {
      if (length >= limit && !tooLong) return;
      chunks.push(chunk);
      length += chunk.length;
      if (length > limit && tooLong) fail(tooLong());
    });
    response.on('end', () => resolve(Buffer.concat(chunks).subarray(0, limit).toString('utf8')));
    response.on('error', reject);
    // Aborted (its signal, or a cut) before the end: no 'end' will come.
    response.on('close', () => {
      if (!response.complete) reject(new Error('the connection closed before the whole answer arrived'));
    });
  });
}
