// Request traces, as the server and the engine see them: a request starts a trace (or not,
// when tracing is off), the engine reports into it as a ChainObserver, and the request's
// report finishes it. The OpenTelemetry SDK is imported only when tracing is turned on
// (otel-tracing.ts): off, no SDK module is loaded and a request costs one undefined check.
import type { IncomingHttpHeaders } from 'node:http';
import type { TracingOptions } from '../config/tracing-options.ts';
import type { ChainObserver } from '../engine/observer.ts';
import type { AttemptRecord } from '../engine/outcome.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface RequestStart {
  chain: string;
  /** The caller's endpoint: chat, completions, embeddings or messages. */
  route: string;
  stream: boolean;
  requestId: string;
  /** The caller's headers: a W3C traceparent in them is continued. */
  headers: IncomingHttpHeaders;
  /** How long ago the request arrived (its span starts then). */
  startedAgoMs: number;
  /** Every text an attribute quotes passes through it (skip reasons can name credentials' sources). */
  redact: (text: string) => string;
}

/** What a finished request's span records: the fields of the request's report it reads. */
export interface FinishedRequest {
  outcome: string;
  status: number;
  attempts: readonly AttemptRecord[];
  winner?: { provider: string; model: string; step: number };
  streamEnd?: string;
  streamResume?: string;
}

export interface RequestTrace extends ChainObserver {
  /** 32 hex digits: in the response headers and the request's log line. */
  readonly traceId: string;
  /** x-llm-fallback-trace-id and traceresponse. */
  readonly responseHeaders: Readonly<Record<string, string>>;
  /** Ends the request's span (once) with what the request's report says. */
  finish(request: FinishedRequest): void;
  /** Ends the span if no report did (the response closed some other way). */
  abandon(status: number): void;
}

export interface Tracing {
  /** False when off: the request path then skips building a request's start (an object and a closure per request). */
  readonly enabled: boolean;
  /** The request's trace; undefined when tracing is off. */
  request(start: RequestStart): RequestTrace | undefined;
  /** Exports what is queued (bounded by the export timeout) and stops. */
  shutdown(): Promise<void>;
}

export const TRACING_OFF: Tracing = {
  enabled: false,
  request: () => undefined,
  shutdown: () => Promise.resolve(),
};

export async function startTracing(options: TracingOptions | undefined, deps: { metrics: Metrics; logger: Logger }): Promise<Tracing> {
  if (!options?.enabled) return TRACING_OFF;
  const { otelTracing } = await import('./otel-tracing.ts');
  return otelTracing(options, deps);
}
