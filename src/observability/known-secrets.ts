// Every credential the process has loaded, for redacting whatever it writes: log lines at
// every level, caller answers, /config and /metrics. Two kinds, kept apart so that one can
// never push the other out:
// - the credentials of the configuration being served (and those fixed at start, such as
//   --default-upstream's): never forgotten while they are in use, however many there are;
// - everything else: keys a config change replaced (a request that started before the change
//   still uses the old key, and a rotated key may not be revoked yet) and tokens derived at run
//   time (STS sessions, OAuth access tokens, refreshed every hour or so), up to a bound so a
//   churning config or a long uptime cannot grow them forever.
import { NO_SECRETS, Redactor } from '../core/redact.ts';

/** How many replaced keys and derived tokens are kept; the current ones are never counted here. */
const MAX_RECENT = 256;

export class KnownSecrets {
  #current = new Set<string>();
  readonly #pinned = new Set<string>();
  // Insertion order is recency: the oldest entries go first when the bound is reached.
  readonly #recent = new Map<string, true>();
  #redactor: Redactor = NO_SECRETS;

  /**
   * The credentials of the configuration now served (a config snapshot's secrets). The previous
   * configuration's credentials move to the bounded recent set (still redacted for a while).
   */
  setCurrent(values: Iterable<string>): void {
    const next = new Set(values);
    for (const value of this.#current) if (!next.has(value)) this.#addRecent(value);
    for (const value of next) this.#recent.delete(value);
    this.#current = next;
    this.#trim();
    this.#rebuild();
  }

  /** Credentials known for the whole life of the process (e.g. in --default-upstream's URL). */
  pin(values: Iterable<string>): void {
    for (const value of values) this.#pinned.add(value);
    this.#rebuild();
  }

  /** Credentials made or met at run time (derived tokens): kept among the bounded recent ones. */
  remember(values: Iterable<string>): void {
    let changed = false;
    for (const value of values) {
      if (this.#current.has(value) || this.#pinned.has(value)) continue;
      if (!this.#recent.has(value)) changed = true;
      this.#addRecent(value);
    }
    changed = this.#trim() || changed;
    if (changed) this.#rebuild();
  }

  get redactor(): Redactor {
    return this.#redactor;
  }

  redact(text: string): string {
    return this.#redactor.redact(text);
  }

  #addRecent(value: string): void {
    this.#recent.delete(value);
    this.#recent.set(value, true);
  }

  #trim(): boolean {
    let trimmed = false;
    while (this.#recent.size > MAX_RECENT) {
      const oldest = this.#recent.keys().next().value;
      if (oldest === undefined) break;
      this.#recent.delete(oldest);
      trimmed = true;
    }
    return trimmed;
  }

  #rebuild(): void {
    this.#redactor = new Redactor(new Set([...this.#current, ...this.#pinned, ...this.#recent.keys()]));
  }
}
