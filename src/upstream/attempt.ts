// One attempt against an OpenAI-format upstream, up to the point where the answer is
// safe to commit to the caller: the whole JSON body, or the first valid stream event.
// Everything that goes wrong before that point becomes a classified failure, so the
// engine can still fall back.
import { classifyErrorEvent, classifyHttpStatus, extractErrorInfo, isConnectionErrorCode, isContentFilterFinish } from '../core/failure.ts';
import { parseRetryAfter, type HeaderBag } from '../core/retry-after.ts';
import type { Step, Usage } from '../core/types.ts';
import type { Clock } from '../engine/clock.ts';
import type { AttemptOutcome, UpstreamFailure } from '../engine/outcome.ts';
import type { AttemptContext } from '../engine/run-chain.ts';
import { AttemptScope } from './attempt-scope.ts';
import { readText, sendUpstream, type UpstreamResponse } from './http.ts';
import { buildOpenAIRequest, finishReasons, isJsonObject, usageFromOpenAI, type Endpoint, type JsonObject } from './openai.ts';
import { SseReader } from './sse.ts';

const ERROR_BODY_LIMIT = 64 * 1024;
const SUCCESS_BODY_LIMIT = 64 * 1024 * 1024;

export interface ProxyRequest {
  endpoint: Endpoint;
  body: JsonObject;
  stream: boolean;
}

export interface JsonAnswer {
  kind: 'json';
  status: number;
  headers: HeaderBag;
  body: JsonObject;
  usage?: Usage;
}

/** A stream whose first event arrived: the caller's response may now begin. */
export interface StreamAnswer {
  kind: 'stream';
  status: number;
  headers: HeaderBag;
  first: JsonObject;
  reader: SseReader;
  /** Owns the connection and the attempt's total time limit until the stream ends. */
  scope: AttemptScope;
  step: Step;
}

export type UpstreamAnswer = JsonAnswer | StreamAnswer;

export interface AttemptHooks {
  clock: Clock;
  /** A stream event that is not JSON: dropped, and reported here. */
  onMalformedEvent: (step: Step, data: string) => void;
}

type Outcome = AttemptOutcome<UpstreamAnswer>;

export function openAIAttempt(request: ProxyRequest, hooks: AttemptHooks) {
  return async (step: Step, ctx: AttemptContext): Promise<Outcome> => {
    const { clock } = hooks;
    const scope = new AttemptScope(clock.now, Math.min(ctx.deadlineAt, clock.now() + step.timeouts.totalMs), ctx.signal);
    const built = buildOpenAIRequest(request.endpoint, request.body, step, request.stream);
    // A stream's first-byte limit runs from the request, so an upstream that never even
    // sends its response headers is given up on as soon as one that sends only headers.
    const firstByteBy = clock.now() + step.timeouts.firstByteMs;
    const firstByteTimer = request.stream ? setTimeout(() => scope.timeOut(), step.timeouts.firstByteMs) : undefined;
    let response: UpstreamResponse;
    try {
      response = await sendUpstream({ ...built, signal: scope.signal });
    } catch (error) {
      scope.dispose();
      return transportFailure(scope, error);
    } finally {
      clearTimeout(firstByteTimer);
    }
    let outcome: Outcome;
    try {
      outcome = await readAnswer(request, step, response, scope, hooks, firstByteBy);
    } catch (error) {
      outcome = transportFailure(scope, error);
    }
    // A committed stream keeps its scope alive; anything else is over.
    if (!(outcome.kind === 'success' && outcome.value.kind === 'stream')) {
      if (outcome.kind !== 'success') scope.controller.abort();
      scope.dispose();
    }
    return outcome;
  };
}

async function readAnswer(request: ProxyRequest, step: Step, response: UpstreamResponse, scope: AttemptScope, hooks: AttemptHooks, firstByteBy: number): Promise<Outcome> {
  const headers = response.headers as HeaderBag;
  if (response.statusCode < 200 || response.statusCode >= 300) {
    return httpFailure(response.statusCode, headers, await readText(response.body, ERROR_BODY_LIMIT), hooks.clock);
  }
  const contentType = String(headers['content-type'] ?? '');
  if (request.stream && contentType.includes('text/event-stream')) {
    return readFirstEvent(step, response, scope, hooks, firstByteBy);
  }
  return readJson(response, headers, hooks.clock, request.stream);
}

async function readJson(response: UpstreamResponse, headers: HeaderBag, clock: Clock, expectedStream: boolean): Promise<Outcome> {
  const text = await readText(response.body, SUCCESS_BODY_LIMIT);
  const body = parseJson(text);
  if (!isJsonObject(body)) {
    return failure({ class: 'serverError', status: response.statusCode, message: `upstream sent a 200 whose body is not a JSON object (${text.length} bytes)` });
  }
  // Some upstreams report errors inside a 200 (or answer a stream request with JSON).
  if (isJsonObject(body['error'])) return failure({ class: classifyErrorEvent(body), status: response.statusCode, message: describeError(body), response: jsonResponse(response.statusCode, text) });
  if (expectedStream) return failure({ class: 'serverError', status: response.statusCode, message: 'asked for a stream, upstream answered with JSON' });
  const usage = usageFromOpenAI(body);
  if (finishReasons(body).some(isContentFilterFinish)) {
    return failure({ class: 'contentFiltered', status: response.statusCode, message: 'finish_reason content_filter', usage });
  }
  void clock;
  return { kind: 'success', status: response.statusCode, value: { kind: 'json', status: response.statusCode, headers, body, usage } };
}

async function readFirstEvent(step: Step, response: UpstreamResponse, scope: AttemptScope, hooks: AttemptHooks, firstByteBy: number): Promise<Outcome> {
  const reader = new SseReader(response.body);
  for (;;) {
    const waitMs = Math.min(firstByteBy - hooks.clock.now(), scope.remainingMs());
    const read = await reader.next(waitMs);
    if (read.kind === 'timeout') {
      scope.timeOut();
      return failure({ class: 'timeout', status: response.statusCode, message: `no first event within ${Math.round(Math.max(0, waitMs))}ms` });
    }
    if (read.kind === 'error') return transportFailure(scope, read.error);
    if (read.kind === 'end') return failure({ class: 'serverError', status: response.statusCode, message: 'stream ended before its first event' });
    const { data } = read.message;
    if (data === '[DONE]') return failure({ class: 'serverError', status: response.statusCode, message: 'stream ended ([DONE]) before its first event' });
    const chunk = parseJson(data);
    if (!isJsonObject(chunk)) {
      hooks.onMalformedEvent(step, data);
      continue;
    }
    if (isJsonObject(chunk['error'])) return failure({ class: classifyErrorEvent(chunk), status: response.statusCode, message: describeError(chunk), response: jsonResponse(502, data) });
    if (finishReasons(chunk).some(isContentFilterFinish)) {
      return failure({ class: 'contentFiltered', status: response.statusCode, message: 'finish_reason content_filter in the first event', usage: usageFromOpenAI(chunk) });
    }
    const headers = response.headers as HeaderBag;
    return { kind: 'success', status: response.statusCode, value: { kind: 'stream', status: response.statusCode, headers, first: chunk, reader, scope, step } };
  }
}

function httpFailure(status: number, headers: HeaderBag, text: string, clock: Clock): Outcome {
  const body = parseJson(text);
  const failureClass = classifyHttpStatus(status, body) ?? 'serverError';
  const contentType = String(headers['content-type'] ?? 'application/json');
  return failure({
    class: failureClass,
    status,
    message: `HTTP ${status}${describeError(body) ? `: ${describeError(body)}` : ''}`,
    retryAfterMs: parseRetryAfter(headers, clock.epochMs()),
    response: { status, contentType, body: text },
  });
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

function describeError(body: unknown): string {
  const info = extractErrorInfo(body);
  return [info.code ?? info.type, info.message].filter(Boolean).join(': ').slice(0, 300);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
