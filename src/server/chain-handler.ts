// POST /v1/chat/completions, /v1/completions, /v1/embeddings: pick the chain by the
// request's model, run it, and answer in OpenAI's format.
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { costOf } from '../core/cost.ts';
import type { Chain, Step } from '../core/types.ts';
import type { ConfigSnapshot, ConfigStore } from '../chain/store.ts';
import type { BreakerRegistry } from '../engine/breakers.ts';
import type { Clock } from '../engine/clock.ts';
import type { AttemptRecord } from '../engine/outcome.ts';
import { runChain, type ChainResult } from '../engine/run-chain.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { openAIAttempt, type JsonAnswer, type StreamAnswer, type UpstreamAnswer } from '../upstream/attempt.ts';
import { isJsonObject, type Endpoint, type JsonObject } from '../upstream/openai.ts';
import { failureReply } from './failure-reply.ts';
import { costHeader, fallbackHeaders } from './headers.ts';
import { openAIError, type ErrorReply } from './openai-errors.ts';
import { report, totalCost, type RequestReport } from './request-report.ts';
import { pumpStream } from './stream-pump.ts';

export interface HandlerDeps {
  store: ConfigStore;
  breakers: BreakerRegistry;
  clock: Clock;
  random: () => number;
  logger: Logger;
  metrics: Metrics;
  /** Counts requests in flight, for draining on SIGTERM. */
  inflight: { enter(): void; leave(): void };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function chainHandler(endpoint: Endpoint, deps: HandlerDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const startedAt = deps.clock.now();
    const given = req.header('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', requestId);
    const snapshot = deps.store.current;
    const problem = snapshot ? checkRequest(endpoint, req.body, snapshot) : openAIError(503, 'no configuration loaded yet', 'not_ready', 'server_error');
    if (problem || !snapshot) {
      sendError(res, problem ?? openAIError(503, 'no configuration loaded yet', 'not_ready', 'server_error'));
      return;
    }
    const body = req.body as JsonObject;
    const chain = snapshot.chains.get(body['model'] as string) as Chain;
    deps.inflight.enter();
    try {
      await serveChain({ endpoint, body, chain, snapshot, requestId, startedAt, req, res }, deps);
    } finally {
      deps.inflight.leave();
    }
  };
}

interface Call {
  endpoint: Endpoint;
  body: JsonObject;
  chain: Chain;
  snapshot: ConfigSnapshot;
  requestId: string;
  startedAt: number;
  req: Request;
  res: Response;
}

/** Bad input gets a clear 400/404 in OpenAI's shape before any upstream is called. */
function checkRequest(endpoint: Endpoint, body: unknown, snapshot: ConfigSnapshot): ErrorReply | undefined {
  if (!isJsonObject(body)) return openAIError(400, 'the request body must be a JSON object', 'invalid_body');
  const model = body['model'];
  if (typeof model !== 'string' || model === '') return openAIError(400, 'the request must name a model (a string): the chain to use', 'missing_model', 'invalid_request_error', 'model');
  if (!snapshot.chains.has(model)) {
    const known = [...snapshot.chains.keys()].sort().join(', ') || '(none)';
    return openAIError(404, `The model \`${model}\` does not exist: no fallback chain serves it. Known chains: ${known}`, 'model_not_found', 'invalid_request_error', 'model');
  }
  if (body['stream'] !== undefined && typeof body['stream'] !== 'boolean') return openAIError(400, '`stream` must be true or false', 'invalid_stream', 'invalid_request_error', 'stream');
  if (endpoint === 'embeddings' && body['stream'] === true) return openAIError(400, 'embeddings cannot be streamed', 'invalid_stream', 'invalid_request_error', 'stream');
  return undefined;
}

async function serveChain(call: Call, deps: HandlerDeps): Promise<void> {
  const { chain, res } = call;
  const stream = call.body['stream'] === true;
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const result: ChainResult<UpstreamAnswer> = await runChain(chain, {
    clock: deps.clock,
    random: deps.random,
    breakers: deps.breakers,
    skipReason,
    attempt: openAIAttempt({ endpoint: call.endpoint, body: call.body, stream }, {
      clock: deps.clock,
      onMalformedEvent: (step, data) => malformed(deps, call, step, data),
    }),
    usageOf: (answer) => (answer.kind === 'json' ? answer.usage : undefined),
  }, call.startedAt, abort.signal);

  const base: Omit<RequestReport, 'outcome' | 'status'> = { requestId: call.requestId, chain: chain.name, endpoint: call.endpoint, stream, attempts: result.attempts, totalMs: 0 };
  if (result.kind === 'failure') {
    replyFailure(call, result, base, deps);
    return;
  }
  const winner = { provider: result.step.provider.name, model: result.step.model, step: result.step.index };
  if (result.value.kind === 'json') replyJson(call, result.value, result.step, { ...base, winner }, deps);
  else await replyStream(call, result.value, { ...base, winner }, deps);
}

/** Steps that cannot be called at all are skipped with a reason, never tried. */
function skipReason(step: Step): string | undefined {
  if (step.provider.keyProblem) return `no API key: ${step.provider.keyProblem}`;
  // Sending OpenAI's format to an upstream that speaks another would fail in confusing ways.
  if (step.provider.api !== 'openai') return `the ${step.provider.api} wire format is not supported by this version`;
  return undefined;
}

function replyJson(call: Call, answer: JsonAnswer, step: Step, base: Omit<RequestReport, 'outcome' | 'status'>, deps: HandlerDeps): void {
  const body = answer.body;
  if (typeof body['model'] !== 'string' || body['model'] === '') body['model'] = step.model;
  const headers = fallbackHeaders({ requestId: call.requestId, chain: call.chain.name, provider: step.provider.name, model: step.model, attempts: base.attempts, costUSD: totalCost(base.attempts) });
  call.res.status(answer.status).set(headers).type('application/json').send(JSON.stringify(body));
  const elapsed = deps.clock.now() - call.startedAt;
  report({ ...base, outcome: 'success', status: answer.status, totalMs: elapsed, ttfbMs: elapsed }, deps.logger, deps.metrics);
}

async function replyStream(call: Call, answer: StreamAnswer, base: Omit<RequestReport, 'outcome' | 'status'>, deps: HandlerDeps): Promise<void> {
  const { res } = call;
  const step = answer.step;
  const streamOptions = call.body['stream_options'];
  const callerWantsUsage = isJsonObject(streamOptions) && streamOptions['include_usage'] === true;
  res.status(200).set({
    ...fallbackHeaders({ requestId: call.requestId, chain: call.chain.name, provider: step.provider.name, model: step.model, attempts: base.attempts }),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    // Cost is known only when usage arrives at the end: it follows as a trailer.
    trailer: 'x-llm-fallback-cost-usd',
  });
  res.flushHeaders();
  const ttfbMs = deps.clock.now() - call.startedAt;
  const winnerRecord = base.attempts[base.attempts.length - 1] as AttemptRecord;
  const pumped = await pumpStream(answer, res, {
    callerWantsUsage,
    onMalformed: (data) => malformed(deps, call, step, data),
    trailers: (result) => {
      if (result.usage) {
        winnerRecord.usage = result.usage;
        winnerRecord.costUSD = costOf(result.usage, step.price);
      }
      return { 'x-llm-fallback-cost-usd': costHeader(totalCost(base.attempts)) };
    },
  });
  const outcome = pumped.end.kind === 'complete' ? 'success' : pumped.end.kind === 'aborted' ? 'aborted' : 'stream_failed';
  const streamEnd = pumped.end.kind === 'failed' ? `${pumped.end.code}: ${pumped.end.message}` : undefined;
  report({ ...base, outcome, status: 200, totalMs: deps.clock.now() - call.startedAt, ttfbMs, streamEnd }, deps.logger, deps.metrics);
}

function replyFailure(call: Call, result: Extract<ChainResult<UpstreamAnswer>, { kind: 'failure' }>, base: Omit<RequestReport, 'outcome' | 'status'>, deps: HandlerDeps): void {
  const totalMs = deps.clock.now() - call.startedAt;
  if (result.end === 'aborted') {
    report({ ...base, outcome: 'aborted', status: 499, totalMs }, deps.logger, deps.metrics);
    return;
  }
  const reply = failureReply({ chain: call.chain.name, end: result.end, last: result.last, lastAnswered: result.lastAnswered, attempts: result.attempts }, call.snapshot.secrets);
  const headers = fallbackHeaders({ requestId: call.requestId, chain: call.chain.name, attempts: result.attempts, costUSD: totalCost(result.attempts) });
  call.res.status(reply.status).set(headers).type(reply.contentType).send(reply.body);
  report({ ...base, outcome: result.end === 'badRequest' ? 'client_error' : 'failure', status: reply.status, totalMs }, deps.logger, deps.metrics);
}

function malformed(deps: HandlerDeps, call: Call, step: Step, data: string): void {
  deps.metrics.malformedEvents.inc({ provider: step.provider.name, model: step.model });
  deps.logger.warn({ requestId: call.requestId, chain: call.chain.name, provider: step.provider.name, model: step.model, data: data.slice(0, 200) }, 'dropped a malformed stream event');
}

export function sendError(res: Response, reply: ErrorReply): void {
  res.status(reply.status).type('application/json').send(JSON.stringify(reply.body));
}
