// The webhook needs a pod's namespace labels (llmfallback.io/inject=enabled) only when the
// pod's own annotation does not decide. A small TTL cache keeps that to about one API read
// per namespace per TTL; concurrent lookups of one namespace share a request.
export type LabelFetcher = (namespace: string) => Promise<Record<string, string> | undefined>;

interface Entry {
  at: number;
  labels: Promise<Record<string, string> | undefined>;
}

export class NamespaceLabelCache {
  private readonly fetch: LabelFetcher;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();

  constructor(fetch: LabelFetcher, ttlMs: number, now: () => number = Date.now) {
    this.fetch = fetch;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  /** The labels, or undefined if the namespace does not exist. Rejects when the lookup failed (not cached). */
  get(namespace: string): Promise<Record<string, string> | undefined> {
    const now = this.now();
    const cached = this.entries.get(namespace);
    if (cached !== undefined && now - cached.at < this.ttlMs) return cached.labels;
    if (this.entries.size > 1000) this.sweep(now);
    const labels = this.fetch(namespace);
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
