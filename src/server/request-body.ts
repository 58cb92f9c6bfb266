// The JSON body of a chain request, read straight from Node's request (no body-parser on the
// hot path): at most `limit` bytes after decompression, gzip/deflate/br accepted, UTF-8 only,
// complete within `timeoutMs`, nested at most MAX_JSON_DEPTH levels, and only while the
// request's share of the body budget can grow to hold it (body-budget.ts).
// Whatever the content-type says is parsed as JSON: SDKs always send JSON, curl users often
// forget the header. An empty body reads as {} (the chain check then asks for a model).
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { timeOutAfterArrivedIo } from '../core/late-timers.ts';
import type { BodyShare } from './body-budget.ts';
import { jsonShape, parsedBytes } from './json-shape.ts';

export type BodyRead =
  /** `bytes`: the body's length after decompression; its share of the budget is its parsed size so far. */
  | { kind: 'ok'; value: unknown; bytes: number }
  /**
   * A body that is not read or not accepted: answered with this status and code, in the
   * caller's error shape; with Retry-After when trying again later can help. The rest of an
   * unread body flows away unstored (the caller then reads the answer), except after a
   * timeout: that connection is closed, since the rest may never come.
   */
  | { kind: 'rejected'; status: number; code: string; message: string; retryAfterSeconds?: number; closeConnection?: boolean }
  /** The caller went away before the body was complete: nothing to answer. */
  | { kind: 'aborted' };

export interface BodyLimits {
  /** Largest body, in bytes after decompression. */
  limit: number;
  /** This request's share of the body budget: it must grow to hold the body as it is read and parsed. */
  share: BodyShare;
  /** The whole body must arrive within this many milliseconds (0: no limit). */
  timeoutMs: number;
}

/** Seconds a caller refused for lack of budget is asked to wait: about what a large request takes to be served. */
export const BUDGET_RETRY_AFTER_SECONDS = 2;

/** A body that cannot be held now: 503 with Retry-After (the SDKs retry it). */
export function overBudget(): Rejected {
  return {
    ...rejected(
      503,
      BODY_REJECTION.budget,
      `too many large request bodies are in flight in llm-fallback right now; retry after ${BUDGET_RETRY_AFTER_SECONDS} s`,
    ),
    retryAfterSeconds: BUDGET_RETRY_AFTER_SECONDS,
  };
}

/** A body that could never be held, even with the whole budget free. */
export function neverFits(weight: number, why: string): Rejected {
  return rejected(
    413,
    BODY_REJECTION.tooComplex,
    `the request body would take about ${mib(weight)} MiB of memory ${why}, more than the sidecar's whole body budget`,
  );
}

// Codes of the rejections callers can tell apart.
export const BODY_REJECTION = {
  tooLarge: 'body_too_large',
  tooComplex: 'body_too_complex',
  tooDeep: 'json_too_deep',
  budget: 'body_budget_exhausted',
  timeout: 'body_timeout',
  encoding: 'unsupported_encoding',
  corrupt: 'invalid_body',
  json: 'invalid_json',
} as const;

export async function readJsonBody(req: IncomingMessage, limits: BodyLimits): Promise<BodyRead> {
  const problem = headerProblem(req, limits);
  if (problem) return problem;
  const source = decoded(req);
  if (source === undefined) {
    return rejected(415, BODY_REJECTION.encoding, `unsupported content encoding "${String(req.headers['content-encoding'])}"`);
  }
  const bytes = await collect(req, source, limits);
  if (bytes === 'tooLarge') return tooLarge(limits.limit);
  if (bytes === 'overBudget') return overBudget();
  if (bytes === 'timeout')
    return { ...rejected(408, BODY_REJECTION.timeout, `the request body did not arrive within ${limits.timeoutMs} ms`), closeConnection: true };
  if (bytes === 'aborted') return { kind: 'aborted' };
  if (bytes === 'corrupt')
    return rejected(400, BODY_REJECTION.corrupt, `the request body could not be decompressed as ${String(req.headers['content-encoding'])}`);
  return parse(bytes, limits.share);
}

function headerProblem(req: IncomingMessage, limits: BodyLimits): BodyRead | undefined {
  const declared = Number(req.headers['content-length']);
  // An identity body can be refused on its declared length before reading it.
  if (!req.headers['content-encoding'] && Number.isFinite(declared)) {
    if (declared > limits.limit) return tooLarge(limits.limit);
    // The whole declared body is taken from the budget at once, so it is refused unread when it does not fit.
    if (!limits.share.resize(declared)) return overBudget();
  }
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== undefined && !charset.startsWith('utf-')) return rejected(415, BODY_REJECTION.encoding, `unsupported charset "${charset.toUpperCase()}"`);
  return undefined;
}

function charsetOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const match = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType);
  return match?.[1]?.toLowerCase();
}

function decoded(req: IncomingMessage): Readable | undefined {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return req;
  const inflater =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? createGunzip()
      : encoding === 'deflate'
        ? createInflate()
        : encoding === 'br'
          ? createBrotliDecompress()
          : undefined;
  if (!inflater) return undefined;
  req.on('error', () => inflater.destroy(new CallerGone()));
  return req.pipe(inflater);
}

/** The caller's connection failed while an inflater was reading its body. */
class CallerGone extends Error {}

type Collected = Buffer | 'tooLarge' | 'overBudget' | 'timeout' | 'aborted' | 'corrupt';

/** The body's bytes, or why there are none. Events, not an async iterator: this runs on every request. */
function collect(req: IncomingMessage, source: Readable, limits: BodyLimits): Promise<Collected> {
  const { limit, share } = limits;
  // A declared identity body is copied into one buffer as it arrives: collecting the chunks
  // and joining them would hold the body twice (the chunks wait for a garbage collection).
  const declared = source === req ? Number(req.headers['content-length']) : NaN;
  const whole = Number.isInteger(declared) && declared > 64 * 1024 && declared <= limit ? Buffer.allocUnsafe(declared) : undefined;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    /** Stops reading: the inflater is destroyed and the rest of the body flows away unread (or the connection is closed by the answer). */
    const stop = (why: Collected): void => {
      done();
      if (source !== req) source.destroy();
      req.resume();
      resolve(why);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return stop('tooLarge');
      // A body without a declared length (chunked, or compressed) takes its share as it arrives.
      if (size > share.bytes && !share.resize(size)) return stop('overBudget');
      if (whole) chunk.copy(whole, size - chunk.length);
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      if (whole) resolve(size === whole.length ? whole : whole.subarray(0, size));
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    // An error of the request itself means the caller went away; one of the inflater, bad compressed bytes.
    const onError = (error?: Error): void => {
      done();
      const callerGone = source === req || error === undefined || error instanceof CallerGone;
      // The rest of a corrupt body flows away unread, so the connection can carry the next request.
      if (!callerGone) req.resume();
      resolve(callerGone ? 'aborted' : 'corrupt');
    };
    // A caller that sends its headers and then trickles or stalls the body must not hold the
    // request forever. Decided after the loop has read what arrived in time: a body that came
    // while the sidecar was frozen is read, not refused with a 408 (src/core/late-timers.ts).
    // "Came" is the request's own bytes (`req.complete`): a compressed body is still being
    // inflated on the thread pool then, and ends a turn or two later. (What arrives during a
    // freeze is what the socket's receive buffer holds, ~128 KiB; Node's own request timeout,
    // twice this one, still cuts a connection frozen past it: limited-server.ts.)
    const timer =
      limits.timeoutMs > 0
        ? timeOutAfterArrivedIo(
            () => {
              if (!settled && !req.complete) stop('timeout');
            },
            limits.timeoutMs,
            undefined,
          )
        : undefined;
    const done = (): void => {
      settled = true;
      clearTimeout(timer);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
    };
    // A request closed before 'end' was aborted by the caller.
    const onClose = (): void => onError();
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    source.on('close', onClose);
  });
}

function parse(bytes: Buffer, share: BodyShare): BodyRead {
  // Judged on the bytes before JSON.parse allocates anything: nesting, and the memory the parsed body will take.
  const shape = jsonShape(bytes);
  if (shape.kind === 'tooDeep') return rejected(400, BODY_REJECTION.tooDeep, `the request body nests objects and arrays more than ${shape.limit} levels deep`);
  // The parsed body lives until the response is over; the budget counts it at its parsed size.
  const weight = parsedBytes(shape, bytes.length);
  if (!share.couldFit(weight)) {
    return neverFits(weight, `once parsed (it holds ${shape.containers} objects and arrays)`);
  }
  if (weight > share.bytes && !share.resize(weight)) return overBudget();
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { kind: 'ok', value: {}, bytes: 0 };
  try {
    return { kind: 'ok', value: JSON.parse(text) as unknown, bytes: bytes.length };
  } catch (error) {
    return rejected(400, BODY_REJECTION.json, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

function tooLarge(limit: number): BodyRead {
  return rejected(413, BODY_REJECTION.tooLarge, `the request body is larger than the limit of ${limit} bytes`);
}

type Rejected = Extract<BodyRead, { kind: 'rejected' }>;

function rejected(status: number, code: string, message: string): Rejected {
  return { kind: 'rejected', status, code, message };
}
