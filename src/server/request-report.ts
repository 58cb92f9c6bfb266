// The one log line and the metrics of a finished request.
import { addUsage, NO_USAGE, roundUSD } from '../core/cost.ts';
import type { Usage } from '../core/types.ts';
import type { AttemptRecord } from '../engine/outcome.ts';
import { logFields, type Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RequestTrace } from '../observability/tracing.ts';

/** continued: by prefill on the next step; restarted: by a verified restart; failed: the stream ended with an error. */
export type StreamResumeOutcome = 'continued' | 'restarted' | 'failed';

export type RequestOutcome = 'success' | 'failure' | 'client_error' | 'aborted' | 'stream_failed';

export interface RequestReport {
  requestId: string;
  chain: string;
  endpoint: string;
  stream: boolean;
  outcome: RequestOutcome;
  status: number;
  attempts: AttemptRecord[];
  winner?: { provider: string; model: string; step: number };
  totalMs: number;
  ttfbMs?: number;
  /** Why a stream that had started did not complete. */
  streamEnd?: string;
  /** A stream that broke after its commit point: how the rest of the answer was got, or that it could not be. */
  streamResume?: StreamResumeOutcome;
  /** The request's trace, when tracing is on: the report ends its span. */
  trace?: RequestTrace;
}

export function totalUsage(attempts: readonly AttemptRecord[]): Usage {
  return attempts.reduce((sum, a) => (a.usage ? addUsage(sum, a.usage) : sum), NO_USAGE);
}

export function totalCost(attempts: readonly AttemptRecord[]): number {
  return attempts.reduce((sum, a) => sum + a.costUSD, 0);
}

export function report(r: RequestReport, logger: Logger, metrics: Metrics): void {
  const usage = totalUsage(r.attempts);
  const costUSD = roundUSD(totalCost(r.attempts));
  // One literal, no spreads: a field that is undefined is left out of the line by JSON.stringify.
  const line = {
    requestId: r.requestId,
    traceId: r.trace ? r.trace.traceId : undefined,
    chain: r.chain,
    endpoint: r.endpoint,
    stream: r.stream,
    outcome: r.outcome,
    status: r.status,
    // Reasons quote upstream errors, redacted when the attempt kept them; the logger redacts every line again.
    attempts: r.attempts.every((a) => roundUSD(a.costUSD) === a.costUSD) ? r.attempts : r.attempts.map((a) => ({ ...a, costUSD: roundUSD(a.costUSD) })),
    winner: r.winner ?? null,
    tokens: { input: usage.inputTokens, output: usage.outputTokens, cachedInput: usage.cachedInputTokens },
    costUSD,
    totalMs: Math.round(r.totalMs),
    ttfbMs: r.ttfbMs === undefined ? null : Math.round(r.ttfbMs),
    streamEnd: r.streamEnd || undefined,
    streamResume: r.streamResume,
  };
  const level = r.outcome === 'success' ? 'info' : r.outcome === 'client_error' || r.outcome === 'aborted' ? 'info' : 'warn';
  logFields(logger, level, line, 'request');
  record(r, usage, metrics);
  r.trace?.finish(r);
}

function record(r: RequestReport, usage: Usage, metrics: Metrics): void {
  metrics.requests.add([r.chain, r.outcome]);
  metrics.duration.observe({ chain: r.chain, outcome: r.outcome }, r.totalMs / 1000);
  if (r.ttfbMs !== undefined) metrics.ttfb.observe({ chain: r.chain }, r.ttfbMs / 1000);
  if (r.winner && r.winner.step > 0) metrics.fallbacks.add([r.chain]);
  if (r.streamResume) metrics.streamResumes.add([r.chain, r.streamResume]);
  for (const a of r.attempts) {
    metrics.attempts.add([r.chain, a.provider, a.model, a.outcome]);
    if (a.costUSD > 0) metrics.cost.add([r.chain, a.provider, a.model], a.costUSD);
    if (a.hedge) metrics.hedges.add([r.chain, a.hedge]);
  }
  if (usage.inputTokens > 0) metrics.tokens.add(['input'], usage.inputTokens);
  if (usage.outputTokens > 0) metrics.tokens.add(['output'], usage.outputTokens);
}
