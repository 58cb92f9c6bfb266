// One cache for credentials that expire (STS sessions, OAuth2 access tokens): a value per
// identity, reused until shortly before it expires, fetched by one exchange at a time per
// identity; a failed exchange is not kept (the next attempt tries again).

/** Values are renewed this long before they expire, so an attempt in flight never carries an expired one. */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;

export interface Expiring<T> {
  value: T;
  /** Epoch ms. */
  expiresAt: number;
}

export class ExpiringCache<T> {
  readonly #entries = new Map<string, Promise<Expiring<T>>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async get(key: string, fetch: () => Promise<Expiring<T>>): Promise<T> {
    const cached = this.#entries.get(key);
    if (cached) {
      const entry = await cached.catch(() => undefined);
      if (entry && entry.expiresAt - REFRESH_BEFORE_EXPIRY_MS > this.#now()) return entry.value;
      if (this.#entries.get(key) === cached) this.#entries.delete(key);
    }
    let pending = this.#entries.get(key);
    if (!pending) {
      pending = fetch();
      this.#entries.set(key, pending);
      const settled = pending;
      settled.catch(() => {
        if (this.#entries.get(key) === settled) this.#entries.delete(key);
      });
    }
    return (await pending).value;
  }

  clear(): void {
    this.#entries.clear();
  }
}
