// A list+watch cache of one namespaced resource (the sidecar's FallbackChains), the part of
// client-node's informer the sidecar uses:
//
// - start(): list (the cache becomes the list: add/update/delete for what differs), then watch
//   from the list's resourceVersion with bookmarks, in the background;
// - a watch the server ends (its timeoutSeconds) or that reaches the client-side deadline
//   is opened again from the last resourceVersion seen (an event's or a bookmark's);
// - 410 Gone (as the HTTP status or an ERROR event) lists again;
// - any other failure emits 'error' and stops: the owner restarts it with its backoff
//   (ChainWatcher), and start() lists afresh.
import { isGone, type WatchEvent } from './api-client.ts';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ObjectList<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

export type InformerVerb = 'add' | 'update' | 'delete' | 'error' | 'connect';

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
  /** A watch still open after this long is closed and opened again (a silent, half-open connection ends). */
  watchDeadlineMs: number;
}

/** A watch that ends cleanly sooner than this, with no event, counts as failed (backoff, not a loop). */
const INSTANT_END_MS = 250;

const keyOf = (object: KubeObject): string => `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

export class ListWatch<T extends KubeObject> implements Informer<T> {
  readonly #o: ListWatchOptions<T>;
  readonly #callbacks = new Map<InformerVerb, Array<(arg?: unknown) => void>>();
  readonly #cache = new Map<string, T>();
  /** Bumped by start() and stop(): a loop of an older generation stops at its next step. */
  #generation = 0;
  #abort: AbortController | undefined;
  #resourceVersion = '';

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
    while (generation === this.#generation) {
      const abort = new AbortController();
      this.#abort = abort;
      // Not an error: a watch this old is closed and opened again from the last resourceVersion.
      const deadline = setTimeout(() => abort.abort(), this.#o.watchDeadlineMs);
      const openedAt = Date.now();
      let events = 0;
      try {
        await this.#o.watch({
          resourceVersion: this.#resourceVersion,
          signal: abort.signal,
          onEvent: (event) => {
            events++;
            this.#onEvent(event, generation);
          },
        });
        // A server (or a proxy in front of it) that ends every watch at once would make this loop spin.
        if (events === 0 && !abort.signal.aborted && Date.now() - openedAt < INSTANT_END_MS) throw new Error('the watch ended as soon as it was opened');
      } catch (error) {
        if (generation !== this.#generation) return;
        if (!abort.signal.aborted) {
          if (!isGone(error)) {
            this.#emit('error', error);
            return;
          }
          // The resourceVersion was compacted away: what happened since is only in a new list.
          if (!(await this.#relist(generation))) return;
        }
      } finally {
        clearTimeout(deadline);
      }
    }
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
