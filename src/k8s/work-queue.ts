// A keyed work queue: each key is handled by one worker at a time; a key added while it is
// being handled runs once more afterwards (changes are coalesced, never lost); a failure is
// retried with exponential backoff. The controller's reconcilers (status, RBAC) run on it.
import type { Logger } from '../observability/logger.ts';

export interface KeyedQueueOptions {
  logger: Logger;
  /** For log lines, e.g. "status". */
  what: string;
  concurrency?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export class KeyedQueue {
  private readonly handler: (key: string) => Promise<void>;
  private readonly options: Required<KeyedQueueOptions>;
  private readonly pending: string[] = [];
  private readonly pendingSet = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(handler: (key: string) => Promise<void>, options: KeyedQueueOptions) {
    this.handler = handler;
    this.options = { concurrency: 4, retryBaseMs: 500, retryMaxMs: 30_000, ...options };
  }

  add(key: string): void {
    if (this.stopped) return;
    const timer = this.retryTimers.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.retryTimers.delete(key);
    }
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.pendingSet.has(key)) return;
    this.pending.push(key);
    this.pendingSet.add(key);
    this.pump();
  }

  /** Drop what is queued, cancel retries, wait for the handlers in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    this.pending.length = 0;
    this.pendingSet.clear();
    this.dirty.clear();
    await Promise.allSettled([...this.running.values()]);
  }

  /** True when nothing is queued, running or waiting for a retry. */
  get idle(): boolean {
    return this.pending.length === 0 && this.running.size === 0 && this.retryTimers.size === 0;
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency && this.pending.length > 0) {
      const key = this.pending.shift();
      if (key === undefined) break;
      this.pendingSet.delete(key);
      this.running.set(key, this.run(key));
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
      this.failures.delete(key);
    } catch (error) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (failures - 1));
      this.options.logger.warn({ err: error, key, failures, retryInMs: delay }, `${this.options.what}: reconcile failed, will retry`);
      if (!this.stopped && !this.dirty.has(key)) {
        this.retryTimers.set(
          key,
          setTimeout(() => {
            this.retryTimers.delete(key);
            this.add(key);
          }, delay),
        );
      }
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
