// POST on every caller codec's routes (OpenAI's /v1/chat/completions, /v1/completions,
// /v1/embeddings, Anthropic's /v1/messages, whatever the wire registry lists): pick the chain
// by the request's model, run it, and answer in the caller's format whatever format the
// winning upstream spoke. The caller's codec writes every reply (success, upstream error,
// own error, stream failure); this module decides which one.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isJsonObject, type JsonObject } from '../core/json.ts';
import { header, type HeaderBag } from '../core/retry-after.ts';
import type { Chain, Target, Usage } from '../core/types.ts';
import type { ConfigSnapshot, ConfigStore } from '../chain/store.ts';
import type { BreakerRegistry } from '../engine/breakers.ts';
import type { Clock } from '../engine/clock.ts';
import type { CodedSkip, UpstreamFailure } from '../engine/outcome.ts';
import { runChain, type ChainResult } from '../engine/run-chain.ts';
import type { Logger } from '../observability/logger.ts';
import type { KnownSecrets } from '../observability/known-secrets.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RequestTrace, Tracing } from '../observability/tracing.ts';
import { RequestPlan } from '../upstream/request-plan.ts';
import { discardAnswer, upstreamAttempt, type AttemptRequest, type JsonAnswer, type UpstreamAnswer } from '../upstream/attempt.ts';
import type { ContinuationHooks } from '../upstream/continuation.ts';
import type { CallerCodec, CallerRequest, CanonicalError } from '../wire/codec.ts';
import { InvalidRequest } from '../wire/errors.ts';
import type { MountedRoute } from '../wire/registry.ts';
import { failureReply } from './failure-reply.ts';
import { fallbackHeaders } from './headers.ts';
import { sendText } from './http-io.ts';
import { openAIError, type ErrorReply } from './openai-errors.ts';
import { copiesInFlight, type BodyBudget, type BodyShare } from './body-budget.ts';
import { neverFits, overBudget, readJsonBody, type BodyRead } from './request-body.ts';
import { report, totalCost, type RequestReport } from './request-report.ts';
import { replyStream } from './stream-reply.ts';

export interface HandlerDeps {
  store: ConfigStore;
  breakers: BreakerRegistry;
  clock: Clock;
  random: () => number;
  logger: Logger;
  metrics: Metrics;
  /** Counts requests in flight, for draining on SIGTERM. */
  inflight: { enter(): void; leave(): void };
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes: number;
  /** Every credential loaded: nothing reaches the caller (or the log) without passing its redactor. */
  secrets: KnownSecrets;
  /** Memory all request bodies in flight may take together. */
  bodyBudget: BodyBudget;
  /** The body must arrive within this many ms of the request's headers (0: no limit). */
  bodyTimeoutMs: number;
  /** Request traces; absent or off: none. */
  tracing?: Tracing;
}

/** A chain route: Node's request and response (Express's work too). */
export type ChainRoute = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** The routes chains serve, as the request log names them: the caller routes' operations. */
export type Route = string;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller route of the wire registry, served by its caller codec. */
export function chainHandler(route: MountedRoute, deps: HandlerDeps): ChainRoute {
  const { caller, operation } = route;
  return serveRequest;

  async function serveRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = deps.clock.now();
    const given = header(req.headers, 'x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    try {
      const idHeader = { 'x-request-id': requestId };
      // The body's share of the budget is held until the response is over: the parsed body and what is sent upstream live that long.
      const share = deps.bodyBudget.share();
      // One listener for the response's end: it releases the share and, if the caller went
      // away before the answer was written, cancels the chain (attempts listen to `abort`).
      const abort = new AbortController();
      res.once('close', () => {
        share.release();
        if (!res.writableFinished) abort.abort();
      });
      const read = await readJsonBody(req, { limit: deps.bodyLimitBytes, share, timeoutMs: deps.bodyTimeoutMs });
      if (read.kind === 'aborted') return;
      if (read.kind === 'rejected') {
        refuse(res, read, caller, deps, idHeader);
        return;
      }
      const snapshot = deps.store.current;
      const problem = snapshot
        ? checkRequest(operation, caller, read.value, snapshot)
        : openAIError(503, 'no configuration loaded yet', 'not_ready', 'server_error');
      if (problem || !snapshot) {
        sendError(res, problem ?? openAIError(503, 'no configuration loaded yet', 'not_ready', 'server_error'), caller, deps.secrets, idHeader);
        return;
      }
      const body = read.value as JsonObject;
      const chain = snapshot.chains.get(body['model'] as string) as Chain;
      // Before any copy is made: the copies serving the request on this chain must fit too.
      const held = holdCopies(share, read.bytes, chain, caller.translationCopies);
      if (held) {
        refuse(res, held, caller, deps, idHeader);
        return;
      }
      let request: CallerRequest;
      try {
        request = caller.decode(operation, body, req.headers);
      } catch (error) {
        if (!(error instanceof InvalidRequest)) throw error;
        sendError(res, openAIError(400, error.message, 'invalid_request'), caller, deps.secrets, idHeader);
        return;
      }
      deps.inflight.enter();
      try {
        await serveChain({ route: operation, request, caller, chain, snapshot, requestId, startedAt, req, res, signal: abort.signal }, deps);
      } finally {
        deps.inflight.leave();
      }
    } catch (error) {
      // Every reply carries the request id in its own headers (no setHeader up front: it would
      // send every reply through Node's slower header path); the 500 written for a bug too.
      if (!res.headersSent) res.setHeader('x-request-id', requestId);
      throw error;
    }
  }
}

interface Call {
  route: Route;
  request: CallerRequest;
  caller: CallerCodec;
  chain: Chain;
  snapshot: ConfigSnapshot;
  requestId: string;
  startedAt: number;
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the caller goes away before the answer is written. */
  signal: AbortSignal;
}

/** Bad input gets a clear 400/404 (made in the canonical shape, written in the caller's) before any upstream is called. */
function checkRequest(operation: string, caller: CallerCodec, body: unknown, snapshot: ConfigSnapshot): ErrorReply | undefined {
  if (!isJsonObject(body)) return openAIError(400, 'the request body must be a JSON object', 'invalid_body');
  const model = body['model'];
  if (typeof model !== 'string' || model === '')
    return openAIError(400, 'the request must name a model (a string): the chain to use', 'missing_model', 'invalid_request_error', 'model');
  if (!snapshot.chains.has(model)) {
    const known = [...snapshot.chains.keys()].sort().join(', ') || '(none)';
    return openAIError(
      404,
      `The model \`${model}\` does not exist: no fallback chain serves it. Known chains: ${known}`,
      'model_not_found',
      'invalid_request_error',
      'model',
    );
  }
  if (body['stream'] !== undefined && typeof body['stream'] !== 'boolean')
    return openAIError(400, '`stream` must be true or false', 'invalid_stream', 'invalid_request_error', 'stream');
  const refused = caller.check(operation, body);
  return refused ? { status: refused.status, body: refused.error } : undefined;
}

// Not async: untraced (the default), the request's promise is serveTraced's own, not one more around it.
function serveChain(call: Call, deps: HandlerDeps): Promise<void> {
  const { chain, res } = call;
  const stream = call.request.stream;
  const trace = deps.tracing?.enabled
    ? deps.tracing.request({
        chain: chain.name,
        route: call.route,
        stream,
        requestId: call.requestId,
        headers: call.req.headers,
        startedAgoMs: deps.clock.now() - call.startedAt,
        redact: (text) => deps.secrets.redact(text),
      })
    : undefined;
  if (!trace) return serveTraced(call, deps, undefined);
  for (const [name, value] of Object.entries(trace.responseHeaders)) res.setHeader(name, value);
  return serveTraced(call, deps, trace).catch((error: unknown) => {
    // The request's report will not come: the span still ends, as the 500 the caller gets.
    trace.abandon(500);
    throw error;
  });
}

async function serveTraced(call: Call, deps: HandlerDeps, trace: RequestTrace | undefined): Promise<void> {
  const { chain, res } = call;
  const stream = call.request.stream;
  // Each step's translation, computed once and shared by the skip decision and the attempts.
  const plan = new RequestPlan(call.request);
  const attemptRequest: AttemptRequest = { plan, caller: call.caller, refusalsFallBack: chain.policy.fallbackOn.has('contentFiltered') };
  const hooks: ContinuationHooks = {
    clock: deps.clock,
    onMalformedEvent: (step, data) => malformed(deps, call, step, data),
    redact: (text) => deps.secrets.redact(text),
    onDropped: (step, dropped) => {
      deps.logger.warn(
        { requestId: call.requestId, chain: chain.name, provider: step.provider.name, model: step.model, api: step.provider.api, dropped },
        'request fields dropped: the step cannot honour them',
      );
    },
    onPrefillRejected: (step, message) => {
      deps.logger.info(
        {
          requestId: call.requestId,
          chain: chain.name,
          provider: step.provider.name,
          model: step.model,
          prefill: step.prefill,
          upstream: deps.secrets.redact(message),
        },
        'prefill rejected: asking the step for the whole answer and verifying it against the delivered text',
      );
    },
  };
  const result: ChainResult<UpstreamAnswer> = await runChain(
    chain,
    {
      clock: deps.clock,
      random: deps.random,
      breakers: deps.breakers,
      skipReason: (step) => skipReason(step, plan),
      attempt: upstreamAttempt(attemptRequest, hooks),
      usageOf: usageOfAnswer,
      request: { facts: call.request.facts, priority: header(call.req.headers, 'x-llm-fallback-priority') },
      headersOf: headersOfAnswer,
      discard: discardAnswer,
      ...(trace ? { observer: trace } : {}),
    },
    call.startedAt,
    call.signal,
  );

  const base: Omit<RequestReport, 'outcome' | 'status'> = {
    requestId: call.requestId,
    chain: chain.name,
    endpoint: call.route,
    stream,
    attempts: result.attempts,
    totalMs: 0,
    ...(trace ? { trace } : {}),
  };
  if (result.kind === 'failure') {
    replyFailure(call, result, base, deps, plan);
    return;
  }
  const winner = { provider: result.step.provider.name, model: result.step.model, step: result.step.index };
  if (result.value.kind === 'json') replyJson(call, result.value, result.step, { ...base, winner }, deps);
  else {
    await replyStream(
      { chain, caller: call.caller, requestId: call.requestId, startedAt: call.startedAt, res, attemptRequest },
      result,
      { ...base, winner },
      {
        clock: deps.clock,
        logger: deps.logger,
        metrics: deps.metrics,
        routing: deps.breakers.routing,
        hooks,
        onMalformed: (step, data) => malformed(deps, call, step, data),
        replyFailure: (failed) => replyFailure(call, failed, base, deps, plan),
        redactor: () => deps.secrets.redactor,
      },
    );
  }
}

const usageOfAnswer = (answer: UpstreamAnswer): Usage | undefined => (answer.kind === 'json' ? answer.usage : undefined);
const headersOfAnswer = (answer: UpstreamAnswer): HeaderBag => answer.headers;

/** Steps that cannot be called at all, or cannot serve this request faithfully, are skipped with a reason, never tried. */
function skipReason(step: Target, plan: RequestPlan): string | CodedSkip | undefined {
  const { keyProblem, keyProblemCode } = step.provider;
  if (keyProblem) return keyProblemCode ? { code: keyProblemCode, message: `no API key: ${keyProblem}` } : `no API key: ${keyProblem}`;
  const stepPlan = plan.forStep(step);
  if (stepPlan.kind === 'unservable') return stepPlan.reason;
  return undefined;
}

function replyJson(call: Call, answer: JsonAnswer, step: Target, base: Omit<RequestReport, 'outcome' | 'status'>, deps: HandlerDeps): void {
  const headers = fallbackHeaders({
    requestId: call.requestId,
    chain: call.chain.name,
    provider: step.provider.name,
    model: step.model,
    attempts: base.attempts,
    costUSD: totalCost(base.attempts),
  });
  sendText(call.res, answer.status, headers, 'application/json', answerText(answer, step), deps.secrets.redactor, true);
  const elapsed = deps.clock.now() - call.startedAt;
  report({ ...base, outcome: 'success', status: answer.status, totalMs: elapsed, ttfbMs: elapsed }, deps.logger, deps.metrics);
}

/** The answer as the caller gets it: the upstream's own bytes when nothing in them needs changing (no re-serialisation). */
function answerText(answer: JsonAnswer, step: Target): string {
  const body = answer.body;
  const named = typeof body['model'] === 'string' && body['model'] !== '';
  if (named && answer.raw !== undefined) return answer.raw;
  if (!named) body['model'] = step.model;
  return JSON.stringify(body);
}

function replyFailure(
  call: Call,
  result: Extract<ChainResult<UpstreamAnswer>, { kind: 'failure' }>,
  base: Omit<RequestReport, 'outcome' | 'status'>,
  deps: HandlerDeps,
  plan: RequestPlan,
): void {
  const totalMs = deps.clock.now() - call.startedAt;
  if (result.end === 'aborted') {
    report({ ...base, outcome: 'aborted', status: 499, totalMs }, deps.logger, deps.metrics);
    return;
  }
  // Nothing was tried and no step could carry the request at all (not: circuits open, keys missing): the caller's error.
  const unservable = result.end === 'exhausted' && !result.last && call.chain.steps.every((step) => plan.forStep(step).kind === 'unservable');
  const reply = failureReply(
    {
      chain: call.chain.name,
      end: result.end,
      last: result.last,
      lastAnswered: inCallerShape(result.lastAnswered, call.caller),
      attempts: result.attempts,
      unservable,
    },
    deps.secrets.redactor,
  );
  // The upstream's error is in the caller's shape now (inCallerShape); the proxy's own is written here.
  const body = reply.own ? JSON.stringify(call.caller.ownError(reply.status, reply.own)) : reply.body;
  const headers = fallbackHeaders({ requestId: call.requestId, chain: call.chain.name, attempts: result.attempts, costUSD: totalCost(result.attempts) });
  sendText(call.res, reply.status, headers, reply.contentType, body, deps.secrets.redactor);
  report(
    { ...base, outcome: result.end === 'badRequest' || result.end === 'overBudget' || unservable ? 'client_error' : 'failure', status: reply.status, totalMs },
    deps.logger,
    deps.metrics,
  );
}

/**
 * The last upstream error as the caller gets it: as it came from an upstream of the caller's
 * format, else written by the caller's codec from its canonical shape.
 */
function inCallerShape(failure: UpstreamFailure | undefined, caller: CallerCodec): UpstreamFailure | undefined {
  const response = failure?.response;
  if (!failure || !response?.error) return failure;
  const body = JSON.stringify(caller.upstreamError(response.status, response.error as CanonicalError));
  return { ...failure, response: { status: response.status, contentType: response.contentType, body } };
}

function malformed(deps: HandlerDeps, call: Call, step: Target, data: string): void {
  deps.metrics.malformedEvents.inc({ provider: step.provider.name, model: step.model });
  // Redacted before it is shortened: a cut through a key would leave part of it unrecognisable.
  deps.logger.warn(
    { requestId: call.requestId, chain: call.chain.name, provider: step.provider.name, model: step.model, data: deps.secrets.redact(data).slice(0, 200) },
    'dropped a malformed stream event',
  );
}

/** An error made before (or instead of) running a chain, in the caller's shape. */
export function sendError(res: ServerResponse, reply: ErrorReply, caller: CallerCodec, secrets: KnownSecrets, headers: Record<string, string> = {}): void {
  sendText(res, reply.status, headers, 'application/json', JSON.stringify(caller.ownError(reply.status, reply.body)), secrets.redactor);
}

/** Grows the request's share by the copies of its body that serving it on this chain makes; the refusal when it cannot. */
function holdCopies(share: BodyShare, bytes: number, chain: Chain, translationCopies: number): Rejection | undefined {
  const copies = copiesInFlight({ ...chain.policy, translated: translationCopies > 0 });
  const weight = share.bytes + bytes * copies;
  if (!share.couldFit(weight))
    return neverFits(weight, `while chain "${chain.name}" serves it (${copies} cop${copies === 1 ? 'y' : 'ies'} in flight: hedges and translations)`);
  return share.resize(weight) ? undefined : overBudget();
}

type Rejection = Extract<BodyRead, { kind: 'rejected' }>;

/** A request refused before its chain runs, counted by code, in the caller's shape. */
function refuse(res: ServerResponse, rejection: Rejection, caller: CallerCodec, deps: HandlerDeps, headers: Record<string, string>): void {
  deps.metrics.rejectedRequests.inc({ code: rejection.code });
  sendError(
    res,
    openAIError(rejection.status, rejection.message, rejection.code, rejection.status >= 500 ? 'server_error' : 'invalid_request_error'),
    caller,
    deps.secrets,
    rejectionHeaders(rejection, headers),
  );
}

function rejectionHeaders(read: Rejection, given: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { ...given };
  if (read.retryAfterSeconds !== undefined) headers['retry-after'] = String(read.retryAfterSeconds);
  if (read.closeConnection) headers['connection'] = 'close';
  return headers;
}
