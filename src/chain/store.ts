// The active configuration. A request takes `current` once and keeps that snapshot to
// the end, so a swap never changes a chain under an in-flight request.
import type { Chain } from '../core/types.ts';

export interface ConfigSnapshot {
  /** Chains by the model name the app asks for. */
  chains: ReadonlyMap<string, Chain>;
  version: number;
  loadedAt: Date;
  /** Every resolved credential (provider keys, header values from the Secret), for redacting text that leaves the process. */
  secrets: readonly string[];
}

export class ConfigStore {
  #current: ConfigSnapshot | undefined;
  readonly #listeners: Array<(snapshot: ConfigSnapshot) => void> = [];

  get current(): ConfigSnapshot | undefined {
    return this.#current;
  }

  apply(chains: Chain[]): ConfigSnapshot {
    const secrets = new Set<string>();
    for (const chain of chains) {
      for (const { provider } of chain.steps) {
        if (provider.apiKey) secrets.add(provider.apiKey);
        for (const name of provider.secretHeaders ?? []) {
          const value = provider.headers[name];
          if (value) secrets.add(value);
        }
      }
    }
    const snapshot: ConfigSnapshot = {
      chains: new Map(chains.map((c) => [c.model, c])),
      version: (this.#current?.version ?? 0) + 1,
      loadedAt: new Date(),
      secrets: [...secrets],
    };
    this.#current = snapshot;
    for (const listener of this.#listeners) listener(snapshot);
    return snapshot;
  }

  onApply(listener: (snapshot: ConfigSnapshot) => void): void {
    this.#listeners.push(listener);
  }
}

/** Every upstream target the snapshot uses: the breakers of all others can go. */
export function targetsOf(snapshot: ConfigSnapshot): Set<string> {
  const targets = new Set<string>();
  for (const chain of snapshot.chains.values()) for (const step of chain.steps) targets.add(step.target);
  return targets;
}
