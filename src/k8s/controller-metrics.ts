// Prometheus metrics of `llm-fallback controller`, served on its health port (/metrics), in a
// private registry like the sidecar's. Label values are constants (outcomes, skip codes,
// condition statuses), never pod or namespace names, so cardinality stays bounded.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from '../observability/prom.ts';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly admissions = new Counter({
    name: 'llm_fallback_controller_admissions_total',
    help: 'Pod admission reviews by injection outcome (injected, already-injected, skipped, not-requested, not-a-pod-create, error).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly injections = new Counter({
    name: 'llm_fallback_controller_injections_total',
    help: 'Pods the sidecar was injected into (dry runs excluded).',
    registers: [this.registry],
  });
  readonly skips = new Counter({
    name: 'llm_fallback_controller_injection_skips_total',
    help: 'Pods that asked for the sidecar and did not get it, by skip reason.',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly namespaceLookupFailures = new Counter({
    name: 'llm_fallback_controller_namespace_lookup_failures_total',
    help: 'Namespace label lookups that failed or timed out (the pod was decided on its annotation alone).',
    registers: [this.registry],
  });
  readonly webhookDuration = new Histogram({
    name: 'llm_fallback_controller_webhook_duration_seconds',
    help: 'Time to answer one AdmissionReview (namespace lookup included).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly webhookRejected = new Counter({
    name: 'llm_fallback_controller_webhook_rejected_total',
    help: "Webhook requests refused before review: too_large (413), busy (503: the body budget, or large bodies' share of it, is spent), idle (408: the body stalled), not_json, not_admission_review.",
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly webhookBodyBytes = new Gauge({
    name: 'llm_fallback_controller_webhook_body_bytes',
    help: 'Request body bytes the webhook holds now, by body size class (small: up to 256 KiB, which may use the reserve; large).',
    labelNames: ['class'],
    registers: [this.registry],
  });
  readonly statusWrites = new Counter({
    name: 'llm_fallback_controller_status_writes_total',
    help: 'FallbackChain status writes by the Ready condition written.',
    labelNames: ['ready'],
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'llm_fallback_controller_events_total',
    help: 'Kubernetes Events emitted, by reason and result (created, failed).',
    labelNames: ['reason', 'result'],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}
