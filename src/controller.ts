// `llm-fallback controller`: the mutating webhook (every replica), and, on the replica that
// holds the Lease, the FallbackChain status writer and the chain-reader RoleBinding binder.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { ApiException, CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ControllerOptions } from './config/options.ts';
import type { Logger } from './observability/logger.ts';
import { admit, parseAdmissionReview, podToInject } from './k8s/admission.ts';
import { injectPod, podDecidesAlone } from './k8s/inject.ts';
import { loadKubeConfig, resolveNamespace } from './k8s/kubeconfig.ts';
import { LeaderElector } from './k8s/leader.ts';
import { coordinationLeaseClient } from './k8s/lease-client.ts';
import { NamespaceLabelCache } from './k8s/namespace-labels.ts';
import { ChainReaderBinder } from './k8s/rbac-binder.ts';
import { loadSidecarSettings, type SidecarSettings } from './k8s/sidecar-settings.ts';
import { ChainStatusController } from './k8s/status-controller.ts';
import { startHealthServer, startWebhookServer } from './k8s/webhook-server.ts';

export interface ControllerDeps {
  logger: Logger;
  /** Tests pass one; otherwise --kubeconfig, else the in-cluster service account. */
  kubeConfig?: KubeConfig;
}

export interface RunningController {
  identity: string;
  /** https://HOST:PORT/mutate-pods */
  webhookUrl: string;
  webhookPort: number;
  healthUrl: string;
  isLeader(): boolean;
  reloadCertificate(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startController(options: ControllerOptions, deps: ControllerDeps): Promise<RunningController> {
  const { logger } = deps;
  const settings = await loadSidecarSettings(options.sidecarDefaultsFile);
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig({ kubeconfigPath: options.kubeconfigPath, env: options.env });
  const identity = options.identity ?? `${os.hostname()}_${randomUUID().slice(0, 8)}`;
  const leaseNamespace = leaseNamespaceOf(options.namespace);

  const core = kubeConfig.makeApiClient(CoreV1Api);
  const namespaceLabels = new NamespaceLabelCache(async (name) => {
    try {
      return (await core.readNamespace({ name })).metadata?.labels ?? {};
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  }, options.namespaceCacheMs);

  const webhook = await startWebhookServer({
    host: options.host,
    port: options.port,
    certFile: options.tlsCertFile,
    keyFile: options.tlsKeyFile,
    reloadIntervalMs: options.tlsReloadIntervalMs,
    logger,
    review: (body) => reviewPod(body, settings, namespaceLabels, logger),
  });

  // Leader-only work; created fresh on every term so no state leaks between terms.
  let leaderWork: { status: ChainStatusController; binder: ChainReaderBinder } | undefined;
  const elector = new LeaderElector(coordinationLeaseClient(kubeConfig.makeApiClient(CoordinationV1Api), leaseNamespace, options.leaseName, identity), {
    identity,
    leaseDurationSeconds: options.leaseDurationSeconds,
    renewIntervalMs: options.renewIntervalMs,
    renewDeadlineMs: Math.floor((options.leaseDurationSeconds * 1000 * 2) / 3),
    logger,
    onStartedLeading: async () => {
      const work = {
        status: new ChainStatusController({ kubeConfig, logger, fieldManager: identity }),
        binder: new ChainReaderBinder({ kubeConfig, logger, fieldManager: identity }),
      };
      leaderWork = work;
      await Promise.all([work.status.start(), work.binder.start()]);
    },
    onStoppedLeading: async () => {
      const work = leaderWork;
      leaderWork = undefined;
      if (work !== undefined) await Promise.all([work.status.stop(), work.binder.stop()]);
    },
  });

  let health;
  try {
    health = await startHealthServer({
      host: options.host,
      port: options.healthPort,
      ready: () => true, // the webhook listens before the health port opens
      details: () => ({ identity, leader: elector.isLeader }),
    });
  } catch (error) {
    await webhook.close();
    throw error;
  }
  elector.start();
  logger.info({ identity, webhook: webhook.url, health: health.url, lease: `${leaseNamespace}/${options.leaseName}` }, 'controller started');

  return {
    identity,
    webhookUrl: webhook.url,
    webhookPort: webhook.port,
    healthUrl: health.url,
    isLeader: () => elector.isLeader,
    reloadCertificate: () => webhook.reloadCertificate(),
    async stop() {
      await elector.stop();
      await Promise.all([webhook.close(), health.close()]);
      logger.info({ identity }, 'controller stopped');
    },
  };
}

/** One AdmissionReview: inject or not, and never fail the pod because of our own trouble. */
async function reviewPod(body: unknown, settings: SidecarSettings, cache: NamespaceLabelCache, logger: Logger): Promise<{ status: number; body: unknown }> {
  const parsed = parseAdmissionReview(body);
  if (!parsed.ok) {
    logger.warn({ error: parsed.error }, 'webhook: unreadable AdmissionReview');
    return { status: 400, body: { error: parsed.error } };
  }
  const { request } = parsed;
  const pod = podToInject(request);
  const namespace = request.namespace ?? pod?.metadata?.namespace ?? '';
  let namespaceLabels: Record<string, string> | undefined;
  const warnings: string[] = [];
  if (pod !== undefined && !podDecidesAlone(pod) && namespace !== '') {
    try {
      namespaceLabels = await cache.get(namespace);
    } catch (error) {
      logger.warn({ err: error, namespace }, 'webhook: could not read the namespace labels; deciding on the pod annotation alone');
      warnings.push(`llm-fallback: could not read namespace ${namespace}: ${(error as Error).message}`);
    }
  }
  const admitted = admit(request, (p) => injectPod(p, settings, namespaceLabels === undefined ? {} : { namespaceLabels }));
  const podName = pod?.metadata?.name ?? pod?.metadata?.generateName ?? request.name ?? '';
  if (admitted.error !== undefined) {
    logger.error({ err: admitted.error, namespace, pod: podName }, 'webhook: injection failed; pod admitted unchanged');
  } else if (admitted.result !== undefined) {
    const { outcome, reason } = admitted.result;
    const level = outcome === 'injected' || outcome === 'skipped' ? 'info' : 'debug';
    logger[level]({ namespace, pod: podName, outcome, reason, dryRun: request.dryRun === true }, `webhook: ${outcome}`);
  }
  if (warnings.length > 0) admitted.review.response.warnings = [...(admitted.review.response.warnings ?? []), ...warnings];
  return { status: 200, body: admitted.review };
}

/** --namespace, else the service account's namespace, else "default" (a laptop run). */
function leaseNamespaceOf(given: string | undefined): string {
  if (given !== undefined) return resolveNamespace(given);
  try {
    return resolveNamespace(undefined);
  } catch {
    return 'default';
  }
}
