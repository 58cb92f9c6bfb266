// One AdmissionReview of the pod webhook: inject or not, and never fail the pod because of
// our own trouble. A pod that asked for the sidecar and did not get it is told so three
// ways: an AdmissionReview warning (kubectl prints it), a Kubernetes Event on its owner, and
// the skips metric; the reasons are constants (INJECT_SKIP, WEBHOOK_EVENT).
import type { Logger } from '../observability/logger.ts';
import { admit, parseAdmissionReview, podToInject } from './admission.ts';
import type { ControllerMetrics } from './controller-metrics.ts';
import { WEBHOOK_EVENT, type EventRecorder } from './events.ts';
import { injectPod, podDecidesAlone } from './inject.ts';
import type { NamespaceLabelCache } from './namespace-labels.ts';
import type { SidecarSettings } from './sidecar-settings.ts';

export interface PodReviewDeps {
  settings: SidecarSettings;
  namespaceLabels: NamespaceLabelCache;
  logger: Logger;
  metrics: ControllerMetrics;
  events: EventRecorder;
}

export async function reviewPod(body: unknown, deps: PodReviewDeps): Promise<{ status: number; body: unknown }> {
  const stopTimer = deps.metrics.webhookDuration.startTimer();
  try {
    return await review(body, deps);
  } finally {
    stopTimer();
  }
}

async function review(body: unknown, deps: PodReviewDeps): Promise<{ status: number; body: unknown }> {
  const { logger, metrics, events } = deps;
  const parsed = parseAdmissionReview(body);
  if (!parsed.ok) {
    logger.warn({ error: parsed.error }, 'webhook: unreadable AdmissionReview');
    metrics.webhookRejected.inc({ reason: 'not_admission_review' });
    return { status: 400, body: { error: parsed.error } };
  }
  const { request } = parsed;
  const pod = podToInject(request);
  const namespace = request.namespace ?? pod?.metadata?.namespace ?? '';
  // A dry run must have no side effects: no Event, no counted injection.
  const dryRun = request.dryRun === true;
  let namespaceLabels: Record<string, string> | undefined;
  const warnings: string[] = [];
  if (pod !== undefined && !podDecidesAlone(pod) && namespace !== '') {
    try {
      namespaceLabels = await deps.namespaceLabels.get(namespace);
    } catch (error) {
      const message = `llm-fallback: could not read the labels of namespace ${namespace} (${(error as Error).message}); decided on the pod's annotation alone, so the sidecar may be missing`;
      logger.warn({ err: error, namespace }, 'webhook: could not read the namespace labels; deciding on the pod annotation alone');
      metrics.namespaceLookupFailures.inc();
      warnings.push(message);
      if (!dryRun) void events.record({ namespace, pod, type: 'Warning', reason: WEBHOOK_EVENT.namespaceLookupFailed, message });
    }
  }
  const admitted = admit(request, (p) => injectPod(p, deps.settings, namespaceLabels === undefined ? {} : { namespaceLabels }));
  const podName = pod?.metadata?.name ?? pod?.metadata?.generateName ?? request.name ?? '';
  if (admitted.error !== undefined) {
    logger.error({ err: admitted.error, namespace, pod: podName }, 'webhook: injection failed; pod admitted unchanged');
    metrics.admissions.inc({ outcome: 'error' });
    if (pod !== undefined && !dryRun)
      void events.record({
        namespace,
        pod,
        type: 'Warning',
        reason: WEBHOOK_EVENT.injectionFailed,
        message: `llm-fallback sidecar not injected: ${admitted.error.message}`,
      });
  } else if (admitted.result !== undefined) {
    const { outcome, reason, skipCode } = admitted.result;
    const level = outcome === 'injected' || outcome === 'skipped' ? 'info' : 'debug';
    logger[level]({ namespace, pod: podName, outcome, reason, skipCode, dryRun }, `webhook: ${outcome}`);
    metrics.admissions.inc({ outcome });
    if (!dryRun && outcome === 'injected') metrics.injections.inc();
    if (!dryRun && outcome === 'skipped' && skipCode !== undefined && pod !== undefined) {
      metrics.skips.inc({ reason: skipCode });
      void events.record({ namespace, pod, type: 'Warning', reason: skipCode, message: `llm-fallback sidecar not injected: ${reason}` });
    }
  } else {
    metrics.admissions.inc({ outcome: 'not-a-pod-create' });
  }
  if (warnings.length > 0) admitted.review.response.warnings = [...(admitted.review.response.warnings ?? []), ...warnings];
  return { status: 200, body: admitted.review };
}
