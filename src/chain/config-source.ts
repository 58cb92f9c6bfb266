// Where `serve` gets its chains from: a folder of YAML files or the Kubernetes API.
// Both push complete chain sets into the ConfigStore through the same two callbacks.
import type { Chain } from '../core/types.ts';
import { formatProblem, loadChainsFromDir, watchDirs } from './file-source.ts';
import type { KeySources } from './resolve.ts';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`configuration is invalid:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export interface Rejection {
  /** Readable reasons, one per line. */
  problems: string[];
  /** The one refused object ("namespace/name"), when the source refuses object by object. */
  object?: string;
  /** Whether that object's last good version keeps serving. */
  lastGoodKept?: boolean;
}

export interface ConfigSource {
  /**
   * Starts delivering chain sets. May resolve before the first set (the Kubernetes
   * source applies its first snapshot after its first successful list: /readyz waits for it).
   * Rejects with ConfigError when the source cannot start at all.
   */
  start(onChains: (chains: Chain[]) => void, onRejected: (rejection: Rejection) => void): Promise<void>;
  /** Reads the configuration again now; true when a set was delivered. */
  reload(): Promise<boolean>;
  stop(): void;
}

/** `serve --config DIR`: the folder (and the credentials folder) are watched; a bad change is refused as a whole. */
export function fileConfigSource(dir: string, keys: KeySources): ConfigSource {
  let stopWatching = (): void => {};
  let deliver: ((chains: Chain[]) => void) | undefined;
  let refuse: ((rejection: Rejection) => void) | undefined;
  const reload = async (): Promise<boolean> => {
    const next = await loadChainsFromDir(dir, keys);
    if (!next.ok) {
      refuse?.({ problems: next.problems.map(formatProblem) });
      return false;
    }
    deliver?.(next.chains);
    return true;
  };
  return {
    async start(onChains, onRejected) {
      const first = await loadChainsFromDir(dir, keys);
      // A config that does not validate at start-up stops the process with the reasons.
      if (!first.ok) throw new ConfigError(first.problems.map(formatProblem));
      deliver = onChains;
      refuse = onRejected;
      onChains(first.chains);
      stopWatching = watchDirs([dir, keys.credentialsDir], () => void reload());
    },
    reload,
    stop: () => stopWatching(),
  };
}
