// Keeps RoleBinding llm-fallback-chain-reader in every namespace where injection is enabled
// (namespace label) or happened (pods labelled llmfallback.io/injected=true, which the
// webhook sets on any replica), so injected sidecars can read their namespace's chains.
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  RbacAuthorizationV1Api,
  type V1Namespace,
  type V1Pod,
  type V1RoleBinding,
} from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';
import { INJECTED_LABEL, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from './inject.ts';
import { keepWatching, type Watching } from './keep-watching.ts';
import { CHAIN_READER, chainReaderRoleBinding, roleBindingAction } from './rbac.ts';
import { KeyedQueue } from './work-queue.ts';

export interface RbacBinderOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  fieldManager: string;
  /** Re-check every bound namespace this often (someone may delete a binding). */
  resyncMs?: number;
}

export class ChainReaderBinder {
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly options: RbacBinderOptions;
  private readonly namespaces;
  private readonly pods;
  private readonly watchers: Watching[];
  private readonly queue: KeyedQueue;
  /** Namespaces whose binding was checked since the last resync. */
  private readonly bound = new Set<string>();
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(options: RbacBinderOptions) {
    this.options = options;
    const { kubeConfig, logger } = options;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    this.rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    const nsSelector = `${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}`;
    const podSelector = `${INJECTED_LABEL}=true`;
    this.namespaces = makeInformer<V1Namespace>(kubeConfig, '/api/v1/namespaces', () => core.listNamespace({ labelSelector: nsSelector }), nsSelector);
    this.pods = makeInformer<V1Pod>(kubeConfig, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: podSelector }), podSelector);
    this.queue = new KeyedQueue((namespace) => this.ensure(namespace), { logger, what: 'chain-reader RoleBinding' });
    const byName = (ns: V1Namespace): void => {
      if (ns.metadata?.name) this.queue.add(ns.metadata.name);
    };
    this.namespaces.on('add', byName);
    this.namespaces.on('update', byName);
    this.namespaces.on('delete', (ns) => this.bound.delete(ns.metadata?.name ?? ''));
    this.pods.on('add', (pod) => {
      if (pod.metadata?.namespace) this.queue.add(pod.metadata.namespace);
    });
    this.watchers = [keepWatching(this.namespaces, { logger, what: 'namespace informer' }), keepWatching(this.pods, { logger, what: 'injected-pod informer' })];
  }

  async start(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.start()));
    const resyncMs = this.options.resyncMs ?? 5 * 60_000;
    this.resyncTimer = setInterval(() => this.resync(), resyncMs);
  }

  async stop(): Promise<void> {
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    await Promise.all(this.watchers.map((w) => w.stop()));
    await this.queue.stop();
    this.bound.clear();
  }

  private resync(): void {
    this.bound.clear();
    this.ownerUid = undefined;
    const wanted = new Set<string>();
    for (const ns of this.namespaces.list()) if (ns.metadata?.name) wanted.add(ns.metadata.name);
    for (const pod of this.pods.list()) if (pod.metadata?.namespace) wanted.add(pod.metadata.namespace);
    for (const namespace of wanted) this.queue.add(namespace);
  }

  /** The chain-reader ClusterRole's uid, for the bindings' owner reference; re-read at each resync. */
  private ownerUid: Promise<string | undefined> | undefined;

  private readOwnerUid(): Promise<string | undefined> {
    this.ownerUid ??= this.rbac.readClusterRole({ name: CHAIN_READER }).then(
      (role) => role.metadata?.uid,
      (error: unknown) => {
        this.ownerUid = undefined;
        // No role (yet): bind without an owner; the next resync adds it.
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw error;
      },
    );
    return this.ownerUid;
  }

  private async ensure(namespace: string): Promise<void> {
    if (this.bound.has(namespace)) return;
    const desired = chainReaderRoleBinding(namespace, await this.readOwnerUid());
    const fieldManager = this.options.fieldManager;
    let existing: V1RoleBinding | undefined;
    try {
      existing = await this.rbac.readNamespacedRoleBinding({ name: CHAIN_READER, namespace });
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 404)) throw error;
    }
    const action = roleBindingAction(existing, desired);
    if (action === 'recreate') await this.rbac.deleteNamespacedRoleBinding({ name: CHAIN_READER, namespace });
    if (action === 'create' || action === 'recreate') {
      try {
        await this.rbac.createNamespacedRoleBinding({ namespace, body: desired, fieldManager });
      } catch (error) {
        // Another writer was faster: fine, it is the same binding. Check it again next time round.
        if (error instanceof ApiException && error.code === 409) return;
        // The namespace is gone or going: nothing to bind, and nothing to retry.
        if (error instanceof ApiException && (error.code === 404 || (error.code === 403 && /being terminated/.test(String(error.body))))) {
          this.options.logger.info({ namespace }, 'chain-reader RoleBinding not created: the namespace is gone');
          return;
        }
        throw error;
      }
    }
    if (action === 'update' && existing !== undefined) {
      const body: V1RoleBinding = { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } };
      await this.rbac.replaceNamespacedRoleBinding({ name: CHAIN_READER, namespace, body, fieldManager });
    }
    this.bound.add(namespace);
    if (action !== 'none') this.options.logger.info({ namespace, action }, 'chain-reader RoleBinding ensured');
  }
}
