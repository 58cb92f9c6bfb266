// The client-node informer stops for good on most errors (list failed, watch refused,
// connection lost for longer than its own retries): restart it, with backoff, until stopped.
import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import { backoffDelay } from '../core/backoff.ts';
import type { Logger } from '../observability/logger.ts';

export interface KeepWatchingOptions {
  logger: Logger;
  what: string;
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

export interface Watching {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function keepWatching<T extends KubernetesObject>(informer: Informer<T>, options: KeepWatchingOptions): Watching {
  const base = options.baseDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 30_000;
  const random = options.random ?? Math.random;
  let stopped = true;
  let failures = 0;
  let lastErrorAt = 0;
  let timer: NodeJS.Timeout | undefined;
  informer.on('error', (error: unknown) => {
    if (stopped) return;
    const now = Date.now();
    // A long quiet spell since the last error means the informer had recovered: start over small.
    if (now - lastErrorAt > 2 * max) failures = 0;
    lastErrorAt = now;
    failures++;
    // Jittered, so that the replicas of the controller do not reconnect in step.
    const delay = backoffDelay(failures, { baseMs: base, maxMs: max, jitter: 'equal' }, random);
    options.logger.warn({ err: error, retryInMs: delay }, `${options.what}: watch failed, restarting`);
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!stopped) void informer.start();
    }, delay);
  });
  return {
    async start() {
      stopped = false;
      await informer.start();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await informer.stop();
    },
  };
}
