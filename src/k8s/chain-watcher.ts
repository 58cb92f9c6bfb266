// `serve --kubernetes`: FallbackChains of the sidecar's own namespace, listed and watched
// with the sidecar's own list+watch client (src/k8s/list-watch.ts; client-node stays with the
// controller: it would add ~44 MB to every pod) and pushed into the ConfigStore as complete
// snapshots.
//
// - The first snapshot is applied after the first successful list (/readyz waits for it).
// - A burst of events makes one snapshot (applied ~50 ms after the first event).
// - The informer watches again by itself, from the last resourceVersion, after a watch ends,
//   goes silent or is cut (waiting, with a warning, when watches keep ending without
//   progress), and lists again on 410 Gone; on any other error it stops: we restart it with
//   capped exponential backoff and jitter (no request flood while the API server is away).
// - A list has a time limit and a size limit, and stop() aborts it: no socket outlives it.
//   Requests keep being served from the last snapshot meanwhile.
// - API keys (`secretKey`) are files of the mounted credentials Secret: the folder is
//   watched and every served chain re-resolved when it changes. No RBAC on Secrets.
//   apiKey.file / apiKey.env are refused (the step is skipped with local_credentials_refused)
//   unless the operator runs the sidecar with --allow-local-credentials.
import { ConfigError, type ConfigSource, type Rejection } from '../chain/config-source.ts';
import { backoffDelay } from '../core/backoff.ts';
import { watchDirs } from '../chain/file-source.ts';
import { resolveChain, type KeySources } from '../chain/resolve.ts';
import type { ServeOptions } from '../config/options.ts';
import type { Chain } from '../core/types.ts';
import type { Logger } from '../observability/logger.ts';
import { CHAIN_GROUP, CHAIN_VERSION, CHAIN_PLURAL } from './chain-resource.ts';
import { computeChainSet, refusalKey, servedKey, type ServedChain } from './chain-set.ts';
import { getJson, watchEvents } from './api-client.ts';
import { loadApiEndpoint, type ApiEndpoint } from './api-endpoint.ts';
import { KubeAccessError, resolveNamespace } from './kube-access.ts';
import { ListWatch, type Informer, type KubeObject, type ObjectList, type ReconnectBackoff } from './list-watch.ts';

export type FallbackChainObject = KubeObject & { apiVersion?: string; kind?: string; spec?: unknown; status?: unknown };
export type ChainInformer = Informer<FallbackChainObject>;
export type ChainList = ObjectList<FallbackChainObject>;
type ListFn = () => Promise<ChainList>;
/** One list request; `signal` aborts it (the list timeout, stop()). */
type ServerListFn = (signal: AbortSignal) => Promise<ChainList>;

export interface RestartBackoff {
  baseMs: number;
  maxMs: number;
}

export interface ChainWatcherOptions {
  endpoint: ApiEndpoint;
  namespace: string;
  keys: KeySources;
  logger: Logger;
  /** Events within this window after the first one make one snapshot. */
  debounceMs?: number;
  restartBackoff?: RestartBackoff;
  /** A list that has not answered by then counts as failed (the informer has no list timeout). */
  listTimeoutMs?: number;
  /**
   * The server ends each watch after this long to twice this (`timeoutSeconds`, random per
   * watch); it is opened again from the last resourceVersion.
   */
  watchTimeoutSeconds?: number;
  /** A watch with no event or bookmark for this long is opened again (a half-open connection). */
  watchIdleTimeoutMs?: number;
  /** The wait between watches that end without progress. */
  reconnectBackoff?: RestartBackoff;
  random?: () => number;
  /** Tests replace the informer; default: a ListWatch on the namespace's fallbackchains. */
  createInformer?: (path: string, list: ListFn) => ChainInformer;
  /** Tests replace the list call; default: GET of the namespace's fallbackchains. */
  listFromServer?: ServerListFn;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoff = { baseMs: 500, maxMs: 30_000 };
/**
 * Five minutes at least, as client-go's reflectors ask (5 to 10, random: sidecars started
 * together do not reconnect in step): few reconnections, bookmarks keep the resourceVersion fresh.
 */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** A watch the server has not ended this long after its timeoutSeconds is taken for a dead connection. */
const WATCH_DEADLINE_GRACE_MS = 30_000;

/**
 * Delay before restart number `failures` (1 = first): the retry backoff's ceiling with
 * equal jitter, so that the sidecars of many pods do not come back in step.
 */
export function restartDelay(failures: number, backoff: RestartBackoff, random: () => number): number {
  return backoffDelay(failures, { ...backoff, jitter: 'equal' }, random);
}

export function fallbackChainsPath(namespace: string): string {
  return `/apis/${CHAIN_GROUP}/${CHAIN_VERSION}/namespaces/${encodeURIComponent(namespace)}/${CHAIN_PLURAL}`;
}

/** A watch of `listPath` from `resourceVersion`, with bookmarks, that the server ends after `timeoutSeconds`. */
export function watchPath(listPath: string, resourceVersion: string, timeoutSeconds: number): string {
  const query = new URLSearchParams({ watch: '1', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) });
  return `${listPath}?${query.toString()}`;
}

export class ChainWatcher implements ConfigSource {
  readonly #o: Required<Omit<ChainWatcherOptions, 'createInformer' | 'listFromServer' | 'watchIdleTimeoutMs' | 'reconnectBackoff'>> &
    Pick<ChainWatcherOptions, 'watchIdleTimeoutMs' | 'reconnectBackoff'>;
  readonly #listFromServer: ServerListFn;
  /** Aborts the list in flight (stop()). */
  #listAbort: AbortController | undefined;
  readonly #informer: ChainInformer;
  #onChains: (chains: Chain[]) => void = () => {};
  #onRejected: (rejection: Rejection) => void = () => {};
  #stopped = false;
  #listed = false;
  #failures = 0;
  #lastStartAt = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #applyTimer: NodeJS.Timeout | undefined;
  #stopCredentialsWatch = (): void => {};
  #served = new Map<string, ServedChain>();
  #reported = new Set<string>();
  #appliedKey: string | undefined;

  constructor(options: ChainWatcherOptions) {
    this.#o = {
      endpoint: options.endpoint,
      namespace: options.namespace,
      keys: options.keys,
      logger: options.logger,
      debounceMs: options.debounceMs ?? 50,
      restartBackoff: options.restartBackoff ?? DEFAULT_RESTART_BACKOFF,
      listTimeoutMs: options.listTimeoutMs ?? 30_000,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS,
      random: options.random ?? Math.random,
      ...(options.watchIdleTimeoutMs !== undefined ? { watchIdleTimeoutMs: options.watchIdleTimeoutMs } : {}),
      ...(options.reconnectBackoff ? { reconnectBackoff: options.reconnectBackoff } : {}),
    };
    const path = fallbackChainsPath(options.namespace);
    this.#listFromServer = options.listFromServer ?? (async (signal) => chainList(await getJson(options.endpoint, path, { signal }), path));
    const list = this.#list.bind(this);
    this.#informer = options.createInformer ? options.createInformer(path, list) : this.#listWatch(path, list);
    const changed = (): void => {
      this.#recovered();
      this.#scheduleApply();
    };
    this.#informer.on('add', changed);
    this.#informer.on('update', changed);
    this.#informer.on('delete', changed);
    this.#informer.on('error', (error: unknown) => this.#restartLater(error));
    this.#informer.on('connect', () => this.#o.logger.debug({ namespace: this.#o.namespace }, 'FallbackChain watch connecting'));
    this.#informer.on('backoff', (arg: unknown) => {
      const { attempt, delayMs, ended } = arg as ReconnectBackoff;
      this.#o.logger.warn(
        { namespace: this.#o.namespace, ended, attempt, watchInMs: delayMs },
        'FallbackChain watches keep ending without any change; waiting before watching again',
      );
    });
  }

  /** True once a list succeeded: from then on a snapshot is applied. */
  get listed(): boolean {
    return this.#listed;
  }

  async start(onChains: (chains: Chain[]) => void, onRejected: (rejection: Rejection) => void): Promise<void> {
    this.#onChains = onChains;
    this.#onRejected = onRejected;
    this.#stopCredentialsWatch = watchDirs([this.#o.keys.credentialsDir], () => {
      this.#o.logger.info({ credentialsDir: this.#o.keys.credentialsDir }, 'credentials changed; resolving API keys again');
      this.#apply(true);
    });
    this.#o.logger.info({ namespace: this.#o.namespace, path: fallbackChainsPath(this.#o.namespace) }, 'watching FallbackChains');
    // Not awaited: the servers open now, /readyz says 503 until the first list.
    this.#startInformer();
  }

  async reload(): Promise<boolean> {
    return this.#apply(true);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#applyTimer);
    this.#listAbort?.abort();
    this.#stopCredentialsWatch();
    void this.#informer.stop();
  }

  #listWatch(path: string, list: ListFn): ChainInformer {
    const { endpoint, watchTimeoutSeconds, random, watchIdleTimeoutMs, reconnectBackoff } = this.#o;
    return new ListWatch<FallbackChainObject>({
      list,
      watch: ({ resourceVersion, signal, onEvent }) => {
        const timeoutSeconds = Math.floor(watchTimeoutSeconds * (1 + random()));
        return watchEvents(endpoint, watchPath(path, resourceVersion, timeoutSeconds), onEvent, { signal });
      },
      watchDeadlineMs: 2 * watchTimeoutSeconds * 1000 + WATCH_DEADLINE_GRACE_MS,
      random,
      ...(watchIdleTimeoutMs !== undefined ? { idleTimeoutMs: watchIdleTimeoutMs } : {}),
      ...(reconnectBackoff ? { reconnectBackoff } : {}),
    });
  }

  #startInformer(): void {
    this.#lastStartAt = Date.now();
    this.#informer.start().catch((error: unknown) => this.#restartLater(error));
  }

  async #list(): Promise<ChainList> {
    if (this.#stopped) throw new Error('FallbackChain watcher stopped');
    // The timeout and stop() abort the request itself: its socket closes, whatever the server still sends.
    const abort = new AbortController();
    this.#listAbort = abort;
    const timer = setTimeout(() => abort.abort(new Error(`list of FallbackChains timed out after ${this.#o.listTimeoutMs} ms`)), this.#o.listTimeoutMs);
    const aborted = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true });
    });
    try {
      const list = await Promise.race([this.#listFromServer(abort.signal), aborted]);
      // Stopped while listing: fail, so the informer does not open a watch nobody closes.
      if (this.#stopped) throw new Error('FallbackChain watcher stopped');
      if (!this.#listed) this.#o.logger.info({ namespace: this.#o.namespace, count: list.items.length }, 'FallbackChains listed');
      this.#listed = true;
      this.#recovered();
      // The informer updates its cache from this list right after we return; the
      // apply timer fires later, on the updated cache (an empty list has no events).
      this.#scheduleApply();
      return list;
    } finally {
      clearTimeout(timer);
      if (this.#listAbort === abort) this.#listAbort = undefined;
    }
  }

  /** A list or an event got through: the next failure starts the backoff from the bottom. */
  #recovered(): void {
    if (this.#failures > 0) this.#o.logger.info({ namespace: this.#o.namespace, after: this.#failures }, 'FallbackChain watch recovered');
    this.#failures = 0;
  }

  #restartLater(error: unknown): void {
    if (this.#stopped || this.#restartTimer) return;
    const { maxMs } = this.#o.restartBackoff;
    // An informer that ran fine for a while before failing starts the backoff afresh.
    if (Date.now() - this.#lastStartAt >= maxMs) this.#failures = 0;
    this.#failures++;
    const delayMs = restartDelay(this.#failures, this.#o.restartBackoff, this.#o.random);
    this.#o.logger.warn(
      { namespace: this.#o.namespace, error: describeError(error), attempt: this.#failures, restartInMs: delayMs },
      'FallbackChain watch failed; restarting it',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#stopped) this.#startInformer();
    }, delayMs);
  }

  #scheduleApply(): void {
    if (this.#applyTimer || this.#stopped) return;
    this.#applyTimer = setTimeout(() => {
      this.#applyTimer = undefined;
      this.#apply(false);
    }, this.#o.debounceMs);
  }

  /** Computes the snapshot from the informer's cache; `force` re-resolves keys even if no object changed. */
  #apply(force: boolean): boolean {
    if (!this.#listed || this.#stopped) return false;
    const { namespace, logger, keys } = this.#o;
    try {
      const objects = new Map<string, unknown>();
      for (const object of this.#informer.list(namespace)) {
        const name = object.metadata?.name;
        // The path is namespaced already; an object of another namespace is never served.
        if (name && object.metadata?.namespace === namespace) objects.set(name, object);
      }
      const set = computeChainSet(objects, this.#served);
      this.#served = set.served;
      const reported = new Set<string>();
      for (const refusal of set.refusals) {
        const key = refusalKey(refusal);
        reported.add(key);
        if (this.#reported.has(key)) continue;
        this.#onRejected({ object: `${namespace}/${refusal.name}`, problems: refusal.problems, lastGoodKept: refusal.lastGoodKept });
      }
      this.#reported = reported;
      const key = servedKey(set);
      if (!force && key === this.#appliedKey) return true;
      this.#appliedKey = key;
      const chains = [...set.served.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((s) => resolveChain(s.doc, `${namespace}/${s.name}`, keys));
      this.#onChains(chains);
      return true;
    } catch (error) {
      logger.error({ namespace, error: describeError(error) }, 'FallbackChain snapshot failed; the last one stays active');
      return false;
    }
  }
}

function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const e = error as Error & { statusCode?: unknown; code?: unknown; cause?: unknown };
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  return { name: e.name, message: e.message, statusCode: e.statusCode ?? (typeof e.code === 'number' ? e.code : undefined), cause };
}

/** A list answer's shape checked: the informer trusts `items` to be an array. */
function chainList(body: unknown, path: string): ChainList {
  const list = body as Partial<ChainList> | null;
  if (typeof list !== 'object' || list === null || !Array.isArray(list.items)) throw new Error(`GET ${path}: the answer is not a list`);
  return { metadata: { resourceVersion: list.metadata?.resourceVersion ?? '' }, items: list.items };
}

/** The `serve --kubernetes` source from the serve options; ConfigError when the API server cannot be addressed. */
export async function kubernetesConfigSource(options: ServeOptions, logger: Logger): Promise<ChainWatcher> {
  try {
    const endpoint = await loadApiEndpoint({ kubeconfigPath: options.kubeconfigPath, env: options.env });
    const namespace = resolveNamespace(options.namespace);
    const policy = { kubernetes: true, allowLocalCredentials: options.allowLocalCredentials };
    if (options.allowLocalCredentials)
      logger.warn("--allow-local-credentials: FallbackChains may use apiKey.file and apiKey.env (the sidecar's files and environment)");
    logger.debug({ server: endpoint.server, via: endpoint.via }, 'Kubernetes API server');
    return new ChainWatcher({ endpoint, namespace, keys: { env: options.env, credentialsDir: options.credentialsDir, policy }, logger });
  } catch (error) {
    if (error instanceof KubeAccessError) throw new ConfigError([error.message]);
    throw error;
  }
}
