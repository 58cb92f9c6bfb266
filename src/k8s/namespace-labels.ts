// The webhook needs a pod's namespace labels (llmfallback.io/inject=enabled) only when the
// pod's own annotation does not decide. A small TTL cache keeps that to about one API read
// per namespace per TTL; concurrent lookups of one namespace share a request.
//
// A lookup is bounded (default 2 s, well inside the webhook's own timeout) and a failure is
// never cached: a hung API read once made every later pod of the namespace wait on the same
// promise until the API server's webhook timeout, when failurePolicy Ignore let them start
// without the sidecar and without a word. Now each of them is admitted after at most the
// bound, with a warning and an Event, and the next pod asks the API again.
export type LabelFetcher = (namespace: string) => Promise<Record<string, string> | undefined>;

export const DEFAULT_LOOKUP_TIMEOUT_MS = 2000;

export class NamespaceLookupTimeout extends Error {
  readonly code = 'NAMESPACE_LOOKUP_TIMEOUT';
  constructor(namespace: string, timeoutMs: number) {
    super(`reading namespace ${namespace} took longer than ${timeoutMs} ms`);
  }
}

interface Entry {
  at: number;
  labels: Promise<Record<string, string> | undefined>;
}

export class NamespaceLabelCache {
  private readonly fetch: LabelFetcher;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly entries = new Map<string, Entry>();

  constructor(fetch: LabelFetcher, ttlMs: number, now: () => number = Date.now, timeoutMs = DEFAULT_LOOKUP_TIMEOUT_MS) {
    this.fetch = fetch;
    this.ttlMs = ttlMs;
    this.now = now;
    this.timeoutMs = timeoutMs;
  }

  /** The labels, or undefined if the namespace does not exist. Rejects when the lookup failed or timed out (not cached). */
  get(namespace: string): Promise<Record<string, string> | undefined> {
    const now = this.now();
    const cached = this.entries.get(namespace);
    if (cached !== undefined && now - cached.at < this.ttlMs) return cached.labels;
    if (this.entries.size > 1000) this.sweep(now);
    const labels = bounded(this.fetch(namespace), this.timeoutMs, () => new NamespaceLookupTimeout(namespace, this.timeoutMs));
    const entry = { at: now, labels };
    this.entries.set(namespace, entry);
    labels.catch(() => {
      if (this.entries.get(namespace) === entry) this.entries.delete(namespace);
    });
    return labels;
  }

  private sweep(now: number): void {
    for (const [namespace, entry] of this.entries) if (now - entry.at >= this.ttlMs) this.entries.delete(namespace);
  }
}

function bounded<T>(work: Promise<T>, timeoutMs: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
