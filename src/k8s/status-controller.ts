// Writes FallbackChain status: a cluster-wide informer feeds a keyed queue; each key is
// validated with the same validateChainDocument as files and the sidecar, and its status
// merge-patched through the /status subresource only when it differs (no hot loop).
import { ApiException, CustomObjectsApi, KubeConfig, makeInformer, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { credentialProblems, KUBERNETES_POLICY, type CredentialPolicy } from '../chain/credential-rules.ts';
import { validateChainDocument, type ValidationResult } from '../chain/validate.ts';
import type { Logger } from '../observability/logger.ts';
import { CHAIN_GROUP, CHAIN_PLURAL, CHAIN_VERSION } from './chain-resource.ts';
import { keepWatching, type Watching } from './keep-watching.ts';
import type { JsonObject } from '../core/json.ts';
import { chainDocumentOf, desiredStatus, NOT_READY_REASON, statusPatch, type NotReadyReason } from './status.ts';
import { KeyedQueue } from './work-queue.ts';

type ChainObject = KubernetesObject & JsonObject;

export interface StatusControllerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Recorded in managedFields: shows which replica wrote the status. */
  fieldManager: string;
  /** The injected sidecars' credential rules (sidecar defaults: allowLocalCredentials); default: Secret keys only. */
  credentialPolicy?: CredentialPolicy;
  now?: () => Date;
  /** Called after each status write (metrics). */
  onStatusWrite?: (ready: string) => void;
}

export class ChainStatusController {
  private readonly api: CustomObjectsApi;
  private readonly options: StatusControllerOptions;
  private readonly informer;
  private readonly watching: Watching;
  private readonly queue: KeyedQueue;
  /** resourceVersion each key's last write was computed from: its watch event is still to come. */
  private readonly writtenFrom = new Map<string, string>();

  constructor(options: StatusControllerOptions) {
    this.options = options;
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.informer = makeInformer<ChainObject>(
      options.kubeConfig,
      `/apis/${CHAIN_GROUP}/${CHAIN_VERSION}/${CHAIN_PLURAL}`,
      async () => this.api.listClusterCustomObject({ group: CHAIN_GROUP, version: CHAIN_VERSION, plural: CHAIN_PLURAL }) as Promise<{ items: ChainObject[] }>,
    );
    this.queue = new KeyedQueue((key) => this.reconcile(key), { logger: options.logger, what: 'FallbackChain status' });
    const enqueue = (object: ChainObject): void => this.queue.add(keyOf(object));
    this.informer.on('add', enqueue);
    this.informer.on('update', enqueue);
    this.informer.on('delete', (object) => this.writtenFrom.delete(keyOf(object)));
    this.watching = keepWatching(this.informer, { logger: options.logger, what: 'FallbackChain status informer' });
  }

  async start(): Promise<void> {
    await this.watching.start();
  }

  async stop(): Promise<void> {
    await this.watching.stop();
    await this.queue.stop();
    this.writtenFrom.clear();
  }

  private async reconcile(key: string): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const object = this.informer.get(name, namespace);
    if (object === undefined) return;
    const resourceVersion = object.metadata?.resourceVersion ?? '';
    if (resourceVersion !== '' && this.writtenFrom.get(key) === resourceVersion) return;
    const { validation, reason } = checkChain(object, this.options.credentialPolicy ?? KUBERNETES_POLICY);
    const desired = desiredStatus(object, validation, (this.options.now ?? (() => new Date()))(), reason);
    const patch = statusPatch(object, desired);
    if (patch === undefined) return;
    try {
      await this.api.patchNamespacedCustomObjectStatus(
        { group: CHAIN_GROUP, version: CHAIN_VERSION, plural: CHAIN_PLURAL, namespace, name, body: patch, fieldManager: this.options.fieldManager },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return; // deleted meanwhile
      throw error;
    }
    this.writtenFrom.set(key, resourceVersion);
    const ready = desired.conditions[0];
    this.options.onStatusWrite?.(ready?.status ?? 'Unknown');
    this.options.logger.info(
      { namespace, name, observedGeneration: desired.observedGeneration, ready: ready?.status, reason: ready?.reason, message: ready?.message || undefined },
      'FallbackChain status written',
    );
  }
}

/** The chain as the sidecars will see it: schema and cross-field rules, then the credential rules. */
export function checkChain(object: JsonObject, policy: CredentialPolicy): { validation: ValidationResult; reason: NotReadyReason } {
  const validation = validateChainDocument(chainDocumentOf(object));
  if (!validation.ok) return { validation, reason: NOT_READY_REASON.invalid };
  const refused = credentialProblems(validation.doc, policy);
  if (refused.length > 0) return { validation: { ok: false, problems: refused }, reason: NOT_READY_REASON.credentialsRefused };
  return { validation, reason: NOT_READY_REASON.invalid };
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}
