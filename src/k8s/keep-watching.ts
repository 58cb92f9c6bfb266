// The client-node informer stops for good on most errors (list failed, watch refused,
// connection lost for longer than its own retries): restart it, with backoff, until stopped.
import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';

export interface KeepWatchingOptions {
  logger: Logger;
  what: string;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface Watching {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function keepWatching<T extends KubernetesObject>(informer: Informer<T>, options: KeepWatchingOptions): Watching {
  const base = options.baseDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 30_000;
  let stopped = true;
  let delay = base;
  let lastErrorAt = 0;
  let timer: NodeJS.Timeout | undefined;
  informer.on('error', (error: unknown) => {
    if (stopped) return;
    const now = Date.now();
    // A long quiet spell since the last error means the informer had recovered: start over small.
    if (now - lastErrorAt > 2 * max) delay = base;
    lastErrorAt = now;
    options.logger.warn({ err: error, retryInMs: delay }, `${options.what}: watch failed, restarting`);
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!stopped) void informer.start();
    }, delay);
    delay = Math.min(max, delay * 2);
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
