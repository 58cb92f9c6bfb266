// Every credential the process has loaded, for redacting whatever it writes: log lines at
// every level, caller answers, /config and /metrics. Keys that a config change replaced are
// kept (a request that started before the change still uses the old key, and a rotated key
// may not be revoked yet), up to a bound so a churning config cannot grow it forever.
import { NO_SECRETS, Redactor } from '../core/redact.ts';

const MAX_SECRETS = 256;

export class KnownSecrets {
  // Insertion order is recency: the oldest entries go first when the bound is reached.
  readonly #values = new Map<string, true>();
  #redactor: Redactor = NO_SECRETS;

  /** Adds the values (a config snapshot's secrets); the redactor is rebuilt only when something is new. */
  remember(values: Iterable<string>): void {
    let changed = false;
    for (const value of values) {
      if (this.#values.has(value)) this.#values.delete(value);
      else changed = true;
      this.#values.set(value, true);
    }
    while (this.#values.size > MAX_SECRETS) {
      const oldest = this.#values.keys().next().value;
      if (oldest === undefined) break;
      this.#values.delete(oldest);
      changed = true;
    }
    if (changed) this.#redactor = new Redactor(this.#values.keys());
  }

  get redactor(): Redactor {
    return this.#redactor;
  }

  redact(text: string): string {
    return this.#redactor.redact(text);
  }
}
