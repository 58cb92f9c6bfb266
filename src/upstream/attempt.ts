// One attempt against an upstream of any wire format, up to the point where the answer is
// safe to commit to the caller: the whole JSON body (already in the caller's format), or
// the first stream event that carries something. Everything that goes wrong before that
// point, translation included, becomes a classified failure, so the engine can still fall
// back. The wire format itself is its codec's business (src/wire/). An upstream's error is
// kept as it came (same format as the caller) or in the canonical shape; the caller's codec
// writes it at the server edge, if it ends up the caller's answer.
import { classifyErrorEvent, classifyHttpStatus, extractErrorInfo, isConnectionErrorCode, isContentFilterFinish } from '../core/failure.ts';
import { parseRetryAfter, type HeaderBag } from '../core/retry-after.ts';
import type { Target, Usage } from '../core/types.ts';
import type { Clock } from '../engine/clock.ts';
import type { AttemptContext, AttemptOutcome, UpstreamFailure } from '../engine/outcome.ts';
import type { SpliceMode } from '../wire/stream-splice.ts';
import { CredentialUnavailable, MalformedUpstream } from '../wire/errors.ts';
import { awsEventStreamAsSse } from './aws-eventstream.ts';
import type { RequestPlan } from './request-plan.ts';
import { AttemptScope } from './attempt-scope.ts';
import { sendUpstream, type UpstreamResponse } from './http.ts';
import { isJsonObject, parseJson, type JsonObject } from '../core/json.ts';
import { finishReasons, usageFromOpenAI } from '../wire/openai-chat/upstream.ts';
import { SseReader } from './sse.ts';
import type { CallerCodec, CallerRequest, CanonicalAnswer, CanonicalError, PreparedRequest, StreamDecoder, StreamPiece, UpstreamCodec } from '../wire/codec.ts';
import { timeOutAfterArrivedIo } from '../core/late-timers.ts';

const ERROR_BODY_LIMIT = 64 * 1024;
const SUCCESS_BODY_LIMIT = 64 * 1024 * 1024;

export interface AttemptRequest {
  /** The request's translation for each step (shared with the skip decision). */
  plan: RequestPlan;
  /** Writes a translated answer in the caller's shape before it is committed: a translation that fails is still a fallback. */
  caller: CallerCodec;
  /**
   * contentFiltered is in the chain's fallbackOn: a refusal (content_filter finish) is a
   * failure that falls back. Otherwise it is the provider's answer, and goes to the caller.
   */
  refusalsFallBack?: boolean;
}

export interface JsonAnswer {
  kind: 'json';
  status: number;
  headers: HeaderBag;
  /** The answer in the caller's format. */
  body: JsonObject;
  /** The upstream's own text of `body`, when the upstream speaks the caller's format: it can be sent as it came. */
  raw: string | undefined;
  usage?: Usage;
}

/** A stream whose first event arrived: the caller's response may now begin. */
export interface StreamAnswer {
  kind: 'stream';
  status: number;
  headers: HeaderBag;
  /** Every event read before the answer was committed, the last one carrying the first chunk. */
  first: StreamPiece[];
  decoder: StreamDecoder;
  reader: SseReader;
  /** Owns the connection and the attempt's total time limit until the stream ends. */
  scope: AttemptScope;
  step: Target;
  /** The upstream speaks the caller's format: its raw events can go out as they came. */
  passthrough: boolean;
  /** Set on an attempt that carries on a stream another attempt began (see continuation.ts). */
  splice?: SpliceMode;
}

export type UpstreamAnswer = JsonAnswer | StreamAnswer;

export interface AttemptHooks {
  clock: Clock;
  /** A stream event that is not JSON: dropped, and reported here. */
  onMalformedEvent: (step: Target, data: string) => void;
  /** The caller's fields a step cannot honour, reported once per request and step, before its first attempt. */
  onDropped?: (step: Target, dropped: string[]) => void;
  /**
   * Removes credentials from upstream text kept in a failure's message. Applied before the
   * message is shortened, so a cut can never leave part of a key behind.
   */
  redact: (text: string) => string;
}

type Outcome = AttemptOutcome<UpstreamAnswer>;

/** What one attempt works with, besides the step. */
interface Exchange {
  step: Target;
  stream: boolean;
  /** The caller's request, as its codec decoded it. */
  request: CallerRequest;
  codec: UpstreamCodec;
  prepared: PreparedRequest;
  caller: CallerCodec;
  hooks: AttemptHooks;
  refusalsFallBack: boolean;
}

export function upstreamAttempt(request: AttemptRequest, hooks: AttemptHooks) {
  return async (step: Target, ctx: AttemptContext): Promise<Outcome> => {
    const plan = request.plan.forStep(step);
    if (plan.kind === 'invalid') return invalidRequest(plan.message);
    // Steps that cannot serve the request are skipped before any attempt (skipReason); should
    // one get here anyway, it fails like a request that does not fit the step: no retry, no
    // breaker count, the next step is tried.
    if (plan.kind === 'unservable') return failure({ class: 'contextLength', message: `cannot be served by this step: ${plan.reason}` });
    const dropped = request.plan.droppedOnce(step);
    if (dropped.length > 0) hooks.onDropped?.(step, dropped);
    const x: Exchange = {
      step,
      stream: request.plan.call.stream,
      request: request.plan.call,
      codec: plan.codec,
      prepared: plan.request,
      caller: request.caller,
      hooks,
      refusalsFallBack: request.refusalsFallBack ?? true,
    };
    const { clock } = hooks;
    const scope = new AttemptScope(() => clock.now(), Math.min(ctx.deadlineAt, clock.now() + step.timeouts.totalMs), ctx.signal);
    // A stream's first-byte limit runs from the request, so an upstream that never even
    // sends its response headers is given up on as soon as one that sends only headers.
    const firstByteBy = clock.now() + step.timeouts.firstByteMs;
    let waitingForHead = true;
    const firstByteTimer = x.stream ? timeOutAfterArrivedIo((s) => waitingForHead && s.timeOut(), step.timeouts.firstByteMs, scope) : undefined;
    let response: UpstreamResponse;
    try {
      // Signed or token-bearing formats authorise each attempt (a signature is bound to its time).
      const headers = x.codec.authorize ? { ...x.prepared.headers, ...(await x.codec.authorize(x.prepared, step, scope.signal)) } : x.prepared.headers;
      response = await sendUpstream({ url: x.prepared.url, headers, body: x.prepared.body, signal: scope.signal });
    } catch (error) {
      scope.dispose();
      if (error instanceof CredentialUnavailable && scope.cause === undefined)
        return failure({ class: 'authFailed', message: `no credentials: ${hooks.redact(error.message)}`.slice(0, 300) });
      return transportFailure(scope, error);
    } finally {
      waitingForHead = false;
      clearTimeout(firstByteTimer);
    }
    let outcome: Outcome;
    try {
      outcome = await readAnswer(x, response, scope, firstByteBy);
    } catch (error) {
      outcome = transportFailure(scope, error);
    }
    // A committed stream keeps its scope alive; anything else is over. A failure whose
    // answer was read to its end (an error status with its whole body, the common case on
    // the fallback path) left its connection in the pool: there is nothing to cut, and an
    // abort would build a DOMException and an Error for the listeners (~20 µs a failure,
    // perf on the bench's 503 case).
    if (!(outcome.kind === 'success' && outcome.value.kind === 'stream')) {
      if (outcome.kind !== 'success' && !response.body.ended) scope.controller.abort();
      scope.dispose();
    }
    return outcome;
  };
}

// Not async: what it returns is readFirstEvent's (or readJson's) own promise, not one more
// wrapped around it (a returned promise costs an async function extra turns of the microtask
// queue, on the way from the upstream's first event to the caller's first byte).
function readAnswer(x: Exchange, response: UpstreamResponse, scope: AttemptScope, firstByteBy: number): Promise<Outcome> {
  const headers = response.headers as HeaderBag;
  if (response.statusCode < 200 || response.statusCode >= 300) {
    return response.body.text(ERROR_BODY_LIMIT).then((text) => httpFailure(x, response.statusCode, headers, text));
  }
  const contentType = String(headers['content-type'] ?? '');
  if (
    x.stream &&
    (contentType.includes('text/event-stream') || (x.codec.streamFraming === 'aws-eventstream' && contentType.includes('application/vnd.amazon.eventstream')))
  ) {
    return readFirstEvent(x, response, scope, firstByteBy);
  }
  return readJson(x, response, headers);
}

async function readJson(x: Exchange, response: UpstreamResponse, headers: HeaderBag): Promise<Outcome> {
  const status = response.statusCode;
  const text = await response.body.text(SUCCESS_BODY_LIMIT);
  const body = parseJson(text);
  if (!isJsonObject(body)) {
    return failure({ class: 'serverError', status, message: `upstream sent a 200 whose body is not a JSON object (${text.length} bytes)` });
  }
  // Some upstreams report errors inside a 200 (or answer a stream request with JSON).
  if (isJsonObject(body['error'])) {
    const reply = x.prepared.passthrough ? jsonResponse(status, text) : canonicalError(502, x.codec.errorToCanonical(502, body));
    return failure({ class: classifyErrorEvent(body), status, message: describeError(body, x.hooks.redact), response: reply });
  }
  if (x.stream) return failure({ class: 'serverError', status, message: 'asked for a stream, upstream answered with JSON' });
  let canonical: JsonObject;
  let answer: JsonObject;
  try {
    canonical = x.codec.toCanonical(body, x.step);
    answer = x.prepared.passthrough ? body : x.caller.answer(canonical as unknown as CanonicalAnswer, x.request);
  } catch (error) {
    if (!(error instanceof MalformedUpstream)) throw error;
    return failure({ class: 'serverError', status, message: `upstream sent a 200 that is not an answer: ${error.message}` });
  }
  const usage = usageFromOpenAI(canonical);
  if (x.refusalsFallBack && finishReasons(canonical).some(isContentFilterFinish)) {
    return failure({ class: 'contentFiltered', status, message: 'finish_reason content_filter', usage });
  }
  return { kind: 'success', status, value: { kind: 'json', status, headers, body: answer, raw: x.prepared.passthrough ? text : undefined, usage } };
}

async function readFirstEvent(x: Exchange, response: UpstreamResponse, scope: AttemptScope, firstByteBy: number): Promise<Outcome> {
  const { step, hooks } = x;
  const status = response.statusCode;
  const reader = new SseReader(x.codec.streamFraming === 'aws-eventstream' ? await awsEventStreamAsSse(response.body.stream()) : response.body.stream());
  const decoder = x.codec.streamDecoder(step);
  // Events that carry nothing yet (Anthropic's message_start and ping) wait for the first
  // one that does: until then the caller has seen nothing and another step can still answer.
  const pending: StreamPiece[] = [];
  for (;;) {
    // The first-byte limit holds until the upstream sends a first event; after that, the idle limit.
    const waitMs = Math.min(pending.length === 0 ? firstByteBy - hooks.clock.now() : step.timeouts.idleMs, scope.remainingMs());
    const read = await reader.next(waitMs);
    if (read.kind === 'timeout') {
      scope.timeOut();
      const what = pending.length === 0 ? 'no first event' : 'no content after the stream began';
      return failure({ class: 'timeout', status, message: `${what} within ${Math.round(Math.max(0, waitMs))}ms` });
    }
    if (read.kind === 'error') return transportFailure(scope, read.error);
    if (read.kind === 'end') return failure({ class: 'serverError', status, message: 'stream ended before its first event' });
    const decoded = decoder.decode(read.message);
    if (decoded.kind === 'done') return failure({ class: 'serverError', status, message: 'stream ended ([DONE]) before its first event' });
    if (decoded.kind === 'malformed') {
      hooks.onMalformedEvent(step, read.message.data);
      continue;
    }
    const { piece } = decoded;
    pending.push(piece);
    if (piece.chunks.length === 0) continue;
    for (const chunk of piece.chunks) {
      if (isJsonObject(chunk['error'])) {
        const reply = x.prepared.passthrough ? jsonResponse(502, read.message.data) : canonicalError(502, { error: chunk['error'] } as CanonicalError);
        return failure({ class: classifyErrorEvent(chunk), status, message: describeError(chunk, hooks.redact), response: reply });
      }
    }
    if (x.refusalsFallBack && piece.chunks.some((chunk) => finishReasons(chunk).some(isContentFilterFinish))) {
      const usage = piece.chunks.map(usageFromOpenAI).find((u) => u !== undefined);
      return failure({ class: 'contentFiltered', status, message: 'finish_reason content_filter in the first event', usage });
    }
    const headers = response.headers as HeaderBag;
    return {
      kind: 'success',
      status,
      value: { kind: 'stream', status, headers, first: pending, decoder, reader, scope, step, passthrough: x.prepared.passthrough },
    };
  }
}

function httpFailure(x: Exchange, status: number, headers: HeaderBag, text: string): Outcome {
  const body = parseJson(text);
  const failureClass = x.codec.classifyError?.(status, body, headers) ?? classifyHttpStatus(status, body) ?? 'serverError';
  const contentType = String(headers['content-type'] ?? 'application/json');
  // The upstream's error goes back to the caller as it came when they speak the same format;
  // otherwise it is rewritten in the caller's shape (status kept).
  const response = x.prepared.passthrough
    ? { status, contentType, body: text }
    : canonicalError(
        status,
        x.codec.errorWithHeaders ? x.codec.errorWithHeaders(status, body ?? text, headers) : x.codec.errorToCanonical(status, body ?? text),
      );
  const described = describeError(body, x.hooks.redact);
  return failure({
    class: failureClass,
    status,
    message: `HTTP ${status}${described ? `: ${described}` : ''}`,
    retryAfterMs: parseRetryAfter(headers, x.hooks.clock.epochMs()),
    // Rate-limit headers (x-ratelimit-remaining-* / -reset-*) mark the target for every request.
    headers,
    response,
  });
}

/** A request found invalid while translating it: the 400 the upstream would have sent, without sending it. */
function invalidRequest(message: string): Outcome {
  const body: CanonicalError = { error: { message, type: 'invalid_request_error', param: null, code: 'invalid_request' } };
  return failure({
    class: 'badRequest',
    status: 400,
    message: `invalid request: ${message}`,
    response: canonicalError(400, body),
  });
}

/** An upstream's error in the canonical shape: the caller's codec writes it (server/chain-handler.ts), only if it is the last word. */
function canonicalError(status: number, error: CanonicalError): UpstreamFailure['response'] {
  return { status, contentType: 'application/json', body: JSON.stringify(error), error };
}

/** Releases an answer that will not be used (another attempt won): a stream's connection is closed. */
export function discardAnswer(answer: UpstreamAnswer): void {
  if (answer.kind !== 'stream') return;
  answer.scope.controller.abort();
  answer.scope.dispose();
  answer.reader.close();
}

/** Thrown errors: our own abort (timeout or caller gone), or the network. */
export function transportFailure(scope: AttemptScope, error: unknown): Outcome {
  if (scope.cause === 'client') return { kind: 'aborted' };
  if (scope.cause === 'timeout') return failure({ class: 'timeout', message: 'attempt ran out of time' });
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return failure({ class: 'connection', message: `${code ?? 'network error'}: ${message}`.slice(0, 300) });
  // Every transport error that is not our abort is a connection failure; the code
  // list in core/failure.ts documents which ones we expect.
}

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && isConnectionErrorCode(code)) return code;
    if (typeof code === 'string' && depth === 0) return code;
  }
  return undefined;
}

function failure(f: UpstreamFailure): Outcome {
  return { kind: 'failure', failure: f };
}

function jsonResponse(status: number, body: string): UpstreamFailure['response'] {
  return { status, contentType: 'application/json', body };
}

function describeError(body: unknown, redact: (text: string) => string): string {
  const info = extractErrorInfo(body);
  return redact([info.code ?? info.type, info.message].filter(Boolean).join(': ')).slice(0, 300);
}
