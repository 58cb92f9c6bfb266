// `llm-fallback controller`: the mutating webhook (every replica), and, on the replica that
// holds the Lease, the FallbackChain status writer and the chain-reader RoleBinding binder.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { ApiException, CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ControllerOptions } from './config/options.ts';
import type { Logger } from './observability/logger.ts';
import { ControllerMetrics } from './k8s/controller-metrics.ts';
import { EventRecorder } from './k8s/events.ts';
import { loadKubeConfig, resolveNamespace } from './k8s/kubeconfig.ts';
import { LeaderElector } from './k8s/leader.ts';
import { coordinationLeaseClient } from './k8s/lease-client.ts';
import { NamespaceLabelCache } from './k8s/namespace-labels.ts';
import { ChainReaderBinder } from './k8s/rbac-binder.ts';
import { reviewPod } from './k8s/pod-review.ts';
import { loadSidecarSettings } from './k8s/sidecar-settings.ts';
import { ChainStatusController } from './k8s/status-controller.ts';
import { startHealthServer, startWebhookServer } from './k8s/webhook-server.ts';

export interface ControllerDeps {
  logger: Logger;
  /** Tests pass one; otherwise --kubeconfig, else the in-cluster service account. */
  kubeConfig?: KubeConfig;
  /** Tests pass one to read it; otherwise a fresh registry with the process metrics. */
  metrics?: ControllerMetrics;
}

export interface RunningController {
  identity: string;
  /** https://HOST:PORT/mutate-pods */
  webhookUrl: string;
  webhookPort: number;
  healthUrl: string;
  metrics: ControllerMetrics;
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

  const metrics = deps.metrics ?? new ControllerMetrics();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const namespaceLabels = new NamespaceLabelCache(
    async (name) => {
      try {
        return (await core.readNamespace({ name })).metadata?.labels ?? {};
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw error;
      }
    },
    options.namespaceCacheMs,
    Date.now,
    options.namespaceLookupTimeoutMs,
  );
  const events = new EventRecorder(
    (namespace, body) => core.createNamespacedEvent({ namespace, body }),
    logger,
    identity,
    (reason, result) => metrics.events.inc({ reason, result }),
  );

  const webhook = await startWebhookServer({
    host: options.host,
    port: options.port,
    certFile: options.tlsCertFile,
    keyFile: options.tlsKeyFile,
    reloadIntervalMs: options.tlsReloadIntervalMs,
    logger,
    review: (body) => reviewPod(body, { settings, namespaceLabels, logger, metrics, events }),
    onRejected: (reason) => metrics.webhookRejected.inc({ reason }),
    onBodyBytesHeld: (held) => {
      metrics.webhookBodyBytes.set({ class: 'small' }, held.small);
      metrics.webhookBodyBytes.set({ class: 'large' }, held.large);
    },
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
        status: new ChainStatusController({
          kubeConfig,
          logger,
          fieldManager: identity,
          credentialPolicy: { kubernetes: true, allowLocalCredentials: settings.allowLocalCredentials },
          onStatusWrite: (ready) => metrics.statusWrites.inc({ ready }),
        }),
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
      metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
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
    metrics,
    isLeader: () => elector.isLeader,
    reloadCertificate: () => webhook.reloadCertificate(),
    async stop() {
      await elector.stop();
      await Promise.all([webhook.close(), health.close()]);
      logger.info({ identity }, 'controller stopped');
    },
  };
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
