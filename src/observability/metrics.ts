// Prometheus metrics in a private registry (a library embedding us must not see ours
// in its default registry), named as in the design.
import { Counter, Gauge, Histogram, Registry, collectProcessMetrics } from './prom.ts';
import { TotalledCounter } from './totalled-counter.ts';
import type * as Prom from 'prom-client';
import type { BreakerState } from '../engine/breakers.ts';

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, halfOpen: 1, open: 2 };

/** One target as routing sees it now, for the route gauges (read at scrape time). */
export interface RouteRow {
  chain: string;
  step: number;
  provider: string;
  model: string;
  /** Place in the chain's effective order (0 = tried first). */
  position: number;
  demoted: boolean;
  errorRate: number;
  /** EWMA latency, undefined before the first success. */
  latencyMs?: number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new TotalledCounter({
    name: 'llm_fallback_requests_total',
    help: 'Requests by chain and outcome (success, failure, client_error, aborted).',
    labelNames: ['chain', 'outcome'],
    registers: [this.registry],
  });
  readonly attempts = new TotalledCounter({
    name: 'llm_fallback_attempts_total',
    help: 'Upstream attempts (and skipped steps) by verdict class.',
    labelNames: ['chain', 'provider', 'model', 'class'],
    registers: [this.registry],
  });
  readonly fallbacks = new TotalledCounter({
    name: 'llm_fallback_fallbacks_total',
    help: 'Requests answered by a step other than the first.',
    labelNames: ['chain'],
    registers: [this.registry],
  });
  readonly circuitState = new Gauge({
    name: 'llm_fallback_circuit_state',
    help: 'Circuit state per target: 0 closed, 1 half-open, 2 open.',
    labelNames: ['provider', 'model'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'llm_fallback_request_duration_seconds',
    help: 'Whole request time, all attempts included.',
    labelNames: ['chain', 'outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly ttfb = new Histogram({
    name: 'llm_fallback_time_to_first_byte_seconds',
    help: 'Time until the first byte of the answer reached the caller.',
    labelNames: ['chain'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly tokens = new TotalledCounter({
    name: 'llm_fallback_tokens_total',
    help: 'Tokens reported by upstreams.',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly cost = new TotalledCounter({
    name: 'llm_fallback_cost_usd_total',
    help: 'USD cost of every billed attempt, failed ones included.',
    labelNames: ['chain', 'provider', 'model'],
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'llm_fallback_config_reloads_total',
    help: 'Config loads by result (applied, rejected).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly streamResumes = new TotalledCounter({
    name: 'llm_fallback_stream_resumes_total',
    help: 'Streams that broke after their commit point, by how the answer ended: continued (by prefill on another attempt), restarted (a verified restart), failed (ended with an error event).',
    labelNames: ['chain', 'outcome'],
    registers: [this.registry],
  });
  readonly spansDropped = new Counter({
    name: 'llm_fallback_trace_spans_dropped_total',
    help: 'Trace spans not exported: queue_full (more spans waiting than OTEL_BSP_MAX_QUEUE_SIZE, e.g. the collector is slow or away) or export_failed (the collector refused or could not be reached).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly hedges = new TotalledCounter({
    name: 'llm_fallback_hedges_total',
    help: 'Hedged attempts by how they ended: won (answered first), lost (cancelled, another answered first), failed, aborted (the request was given up).',
    labelNames: ['chain', 'result'],
    registers: [this.registry],
  });
  readonly routePosition = new Gauge({
    name: 'llm_fallback_route_position',
    help: "Each target's place (0 = first) in its chain's effective order for the chain's default priority, adaptive demotions applied.",
    labelNames: ['chain', 'step', 'provider', 'model', 'demoted'],
    registers: [this.registry],
    collect: () => this.#collectRoutes(),
  });
  readonly targetErrorRate = new Gauge({
    name: 'llm_fallback_target_error_rate',
    help: 'EWMA error rate per target and chain, as adaptive routing judges it.',
    labelNames: ['chain', 'provider', 'model'],
    registers: [this.registry],
    collect: () => this.#collectRoutes(),
  });
  readonly targetLatency = new Gauge({
    name: 'llm_fallback_target_latency_seconds',
    help: 'EWMA time to the answer (streams: to the first event) per target and chain.',
    labelNames: ['chain', 'provider', 'model'],
    registers: [this.registry],
    collect: () => this.#collectRoutes(),
  });
  #routes: (() => RouteRow[]) | undefined;
  readonly rejectedRequests = new Counter({
    name: 'llm_fallback_rejected_requests_total',
    help: 'Requests refused before a chain ran, by code (body_too_large, body_budget_exhausted, body_timeout, json_too_deep…).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly bodyBudgetHeld: Prom.Gauge = new Gauge({
    name: 'llm_fallback_body_budget_held_bytes',
    help: 'Bytes of the request body budget held by requests in flight.',
    registers: [this.registry],
    collect: (): void => this.bodyBudgetHeld.set(this.#bodyBudgetHeld?.() ?? 0),
  });
  #bodyBudgetHeld: (() => number) | undefined;
  readonly connectionsEvicted = new Counter({
    name: 'llm_fallback_connections_evicted_total',
    help: 'Idle keep-alive connections closed to make room for a new one at the connection cap (--max-connections, --admin-max-connections), by port.',
    labelNames: ['port'],
    registers: [this.registry],
  });
  readonly malformedEvents = new Counter({
    name: 'llm_fallback_malformed_events_total',
    help: 'Upstream stream events dropped because they were not JSON.',
    labelNames: ['provider', 'model'],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectProcessMetrics(this.registry, 'llm_fallback_process_');
  }

  /** Where the body budget gauge reads from (serve wires the budget). */
  trackBodyBudget(held: () => number): void {
    this.#bodyBudgetHeld = held;
  }

  /** Where the route gauges read from at each scrape (serve wires the config store and routing state). */
  trackRoutes(rows: () => RouteRow[]): void {
    this.#routes = rows;
  }

  #collectRoutes(): void {
    const rows = this.#routes?.() ?? [];
    this.routePosition.reset();
    this.targetErrorRate.reset();
    this.targetLatency.reset();
    for (const r of rows) {
      const target = { chain: r.chain, provider: r.provider, model: r.model };
      this.routePosition.set({ chain: r.chain, step: String(r.step), provider: r.provider, model: r.model, demoted: String(r.demoted) }, r.position);
      this.targetErrorRate.set(target, r.errorRate);
      if (r.latencyMs !== undefined) this.targetLatency.set(target, r.latencyMs / 1000);
    }
  }

  setCircuitState(labels: { provider: string; model: string }, state: BreakerState): void {
    this.circuitState.set(labels, STATE_VALUE[state]);
  }
}
