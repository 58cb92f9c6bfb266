// A list+watch cache of one namespaced resource (the sidecar's FallbackChains), the part of
// client-node's informer the sidecar uses:
//
// - start(): list (the cache becomes the list: add/update/delete for what differs), then watch
//   from the list's resourceVersion with bookmarks, in the background;
// - a watch the server ends (its timeoutSeconds), that reaches the client-side deadline, that
//   was silent for the idle timeout (a half-open connection: no event, not even the server's
//   roughly minutely bookmark) or whose connection was cut is opened again from the last
//   resourceVersion seen (an event's or a bookmark's), as client-go's reflector does;
// - 410 Gone (as the HTTP status or an ERROR event) lists again; a second 410 with no event
//   since that relist is an 'error' (listing again at once would loop: the owner's backoff takes over);
// - watches that end without progress (no ADDED/MODIFIED/DELETED event, open shorter than the
//   longest wait) are reopened after a capped, jittered, doubling wait, announced as 'backoff'
//   (a proxy or server ending every watch at once would otherwise make a tight request loop);
// - any other failure emits 'error' and stops: the owner restarts it with its backoff
//   (ChainWatcher), and start() lists afresh.
import { backoffDelay } from '../core/backoff.ts';
import { isGone, WatchInterruptedError, type WatchEvent } from './api-client.ts';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ObjectList<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

export type InformerVerb = 'add' | 'update' | 'delete' | 'error' | 'connect' | 'backoff';

/** Why the next watch waits: the argument of 'backoff'. */
export interface ReconnectBackoff {
  /** Watches in a row that ended without progress. */
  attempt: number;
  delayMs: number;
  /** How the last one ended. */
  ended: 'ended' | 'silent' | 'interrupted' | 'gone';
}

/** What ChainWatcher needs of an informer (tests give it a fake one). */
export interface Informer<T> {
  on(verb: InformerVerb, callback: (arg?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The cached objects (of `namespace` when given). */
  list(namespace?: string): T[];
}

export interface WatchRequest {
  resourceVersion: string;
  signal: AbortSignal;
  onEvent: (event: WatchEvent) => void;
}

export interface ListWatchOptions<T> {
  list: () => Promise<ObjectList<T>>;
  /** Opens one watch from `resourceVersion`; resolves when it ends cleanly (or is aborted). */
  watch: (request: WatchRequest) => Promise<void>;
  /** A watch still open after this long is closed and opened again. */
  watchDeadlineMs: number;
  /** A watch with no event or bookmark for this long is closed and opened again; default 90 s. */
  idleTimeoutMs?: number;
  /** The wait before a watch that follows one without progress: doubling from baseMs to maxMs, equal jitter. */
  reconnectBackoff?: { baseMs: number; maxMs: number };
  random?: () => number;
}

/**
 * Longer than the API server's bookmark period (about a minute) for watches that ask for
 * bookmarks: a connection silent this long is dead, not idle.
 */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;
/** client-go's and client-node's reconnect wait: 1 s doubling to 30 s. */
export const DEFAULT_RECONNECT_BACKOFF = { baseMs: 1_000, maxMs: 30_000 };

const keyOf = (object: KubeObject): string => `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

export class ListWatch<T extends KubeObject> implements Informer<T> {
  readonly #o: ListWatchOptions<T>;
  readonly #callbacks = new Map<InformerVerb, Array<(arg?: unknown) => void>>();
  readonly #cache = new Map<string, T>();
  /** Bumped by start() and stop(): a loop of an older generation stops at its next step. */
  #generation = 0;
  #abort: AbortController | undefined;
  #resourceVersion = '';
  /** Watches in a row that ended without progress (kept across start(): see the 410 case). */
  #quiet = 0;

  constructor(options: ListWatchOptions<T>) {
    this.#o = options;
  }

  on(verb: InformerVerb, callback: (arg?: unknown) => void): void {
    this.#callbacks.set(verb, [...(this.#callbacks.get(verb) ?? []), callback]);
  }

  list(namespace?: string): T[] {
    return [...this.#cache.values()].filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
  }

  /** The resourceVersion the next watch starts from (for tests and logs). */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Lists; resolves once the cache holds the list (or the list failed: 'error' was emitted). The watch runs on. */
  async start(): Promise<void> {
    const generation = this.#restart();
    if (!(await this.#relist(generation))) return;
    void this.#watchLoop(generation);
  }

  async stop(): Promise<void> {
    this.#restart();
  }

  #restart(): number {
    this.#abort?.abort();
    this.#abort = undefined;
    return ++this.#generation;
  }

  #emit(verb: InformerVerb, arg?: unknown): void {
    for (const callback of this.#callbacks.get(verb) ?? []) callback(arg);
  }

  /** True when the cache holds a fresh list; false when the list failed ('error' emitted) or this generation ended. */
  async #relist(generation: number): Promise<boolean> {
    this.#emit('connect');
    let list: ObjectList<T>;
    try {
      list = await this.#o.list();
    } catch (error) {
      if (generation === this.#generation) this.#emit('error', error);
      return false;
    }
    if (generation !== this.#generation) return false;
    this.#resourceVersion = list.metadata?.resourceVersion ?? '';
    const seen = new Set<string>();
    for (const object of list.items) {
      const key = keyOf(object);
      seen.add(key);
      const known = this.#cache.get(key);
      this.#cache.set(key, object);
      if (!known) this.#emit('add', object);
      else if (known.metadata?.resourceVersion !== object.metadata?.resourceVersion) this.#emit('update', object);
    }
    for (const [key, object] of this.#cache) {
      if (seen.has(key)) continue;
      this.#cache.delete(key);
      this.#emit('delete', object);
    }
    return true;
  }

  async #watchLoop(generation: number): Promise<void> {
    const backoff = this.#o.reconnectBackoff ?? DEFAULT_RECONNECT_BACKOFF;
    /** Listed again for a 410, and no ADDED/MODIFIED/DELETED since. */
    let relisted = false;
    let ended: ReconnectBackoff['ended'] = 'ended';
    while (generation === this.#generation) {
      if (this.#quiet > 0) {
        const delayMs = backoffDelay(this.#quiet, { ...backoff, jitter: 'equal' }, this.#o.random ?? Math.random);
        this.#emit('backoff', { attempt: this.#quiet, delayMs, ended } satisfies ReconnectBackoff);
        if (!(await this.#pause(delayMs, generation))) return;
      }
      const abort = new AbortController();
      this.#abort = abort;
      // Not errors: a watch this old, or this silent, is closed and opened again from the last resourceVersion.
      const deadline = setTimeout(() => abort.abort(), this.#o.watchDeadlineMs);
      const idle = setTimeout(() => abort.abort(), this.#o.idleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS);
      const openedAt = Date.now();
      let progress = false;
      try {
        await this.#o.watch({
          resourceVersion: this.#resourceVersion,
          signal: abort.signal,
          onEvent: (event) => {
            idle.refresh();
            if (event.type !== 'BOOKMARK') progress = true;
            this.#onEvent(event, generation);
          },
        });
        ended = abort.signal.aborted ? 'silent' : 'ended';
      } catch (error) {
        if (generation !== this.#generation) return;
        if (abort.signal.aborted) ended = 'silent';
        else if (error instanceof WatchInterruptedError) ended = 'interrupted';
        else if (isGone(error) && !(relisted && !progress)) {
          // The resourceVersion was compacted away: what happened since is only in a new list.
          if (!(await this.#relist(generation))) return;
          ended = 'gone';
          relisted = true;
          progress = false;
        } else {
          // Any other failure, or a 410 again right after the relist for one (listing again at once would loop).
          // The owner's restart lists successfully again: the count stays, so that each round of such a loop waits longer.
          if (isGone(error)) this.#quiet++;
          this.#emit('error', error);
          return;
        }
      } finally {
        clearTimeout(deadline);
        clearTimeout(idle);
      }
      if (progress) relisted = false;
      // A watch open as long as the longest wait is no loop to slow down (a quiet namespace's normal watch).
      this.#quiet = progress || Date.now() - openedAt >= backoff.maxMs ? 0 : this.#quiet + 1;
    }
  }

  /** Waits `ms`; false when stop() or start() ended this generation meanwhile. */
  #pause(ms: number, generation: number): Promise<boolean> {
    const abort = new AbortController();
    this.#abort = abort;
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        abort.signal.removeEventListener('abort', onAbort);
        resolve(generation === this.#generation);
      }, ms);
      abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #onEvent(event: WatchEvent, generation: number): void {
    if (generation !== this.#generation) return;
    const object = event.object as T;
    const resourceVersion = object.metadata?.resourceVersion;
    if (resourceVersion) this.#resourceVersion = resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = keyOf(object);
    if (event.type === 'DELETED') {
      if (this.#cache.delete(key)) this.#emit('delete', object);
      return;
    }
    const known = this.#cache.has(key);
    this.#cache.set(key, object);
    this.#emit(known ? 'update' : 'add', object);
  }
}
