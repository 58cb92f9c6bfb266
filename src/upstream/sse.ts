// Server-sent events from an upstream body, parsed (not piped): the reader hands out
// one event at a time and can wait for the next with a time limit, which is how
// first-byte and idle timeouts are enforced.
import type { Readable } from 'node:stream';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { timeOutAfterArrivedIo } from '../core/late-timers.ts';

export type SseRead = { kind: 'event'; message: EventSourceMessage } | { kind: 'end' } | { kind: 'timeout' } | { kind: 'error'; error: unknown };

// Stop reading from the upstream while this many parsed events wait for a slow client.
const HIGH_WATER = 64;

export class SseReader {
  readonly #body: Readable;
  readonly #queue: EventSourceMessage[] = [];
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  constructor(body: Readable) {
    this.#body = body;
    const parser = createParser({ onEvent: (message) => this.#push(message) });
    const decoder = new TextDecoder();
    const feed = (chunk: Buffer): void => parser.feed(decoder.decode(chunk, { stream: true }));
    body.on('end', () => {
      parser.feed(decoder.decode());
      // A final event without its blank line still counts (some upstreams end that way).
      parser.feed('\n\n');
      this.#finish();
    });
    body.on('error', (error) => {
      this.#error = error;
      this.#finish();
    });
    // What already arrived is parsed now: often the whole answer came with the response's
    // headers, and the first event is then ready at once, not after a turn of the event loop
    // (a 'data' listener only starts the flow on the next tick). The response's 'end' may then
    // still be to come when the attempt is over: see sendUpstream's abort (upstream/http.ts).
    for (let chunk: unknown = body.read(); chunk !== null; chunk = body.isPaused() ? null : body.read()) feed(chunk as Buffer);
    body.on('data', feed);
  }

  /**
   * An event already read, or why there will be none (ended, failed); undefined when the next
   * must be waited for. A stream read in one piece is handled without a promise per event.
   */
  poll(): SseRead | undefined {
    return this.#take();
  }

  /** The next event, or why there is none: ended, failed, or nothing within timeoutMs. */
  next(timeoutMs: number): Promise<SseRead> {
    const ready = this.#take();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const wake = (): void => {
        const read = this.#take();
        if (!read) return;
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(read);
      };
      // Decided after the loop has read what arrived in time (core/late-timers.ts): an event
      // that came during a freeze wakes the reader first, and the time-out finds it awake.
      const timer = timeOutAfterArrivedIo(
        (waiting) => {
          if (this.#wake !== waiting) return;
          this.#wake = undefined;
          resolve({ kind: 'timeout' });
        },
        Math.max(0, timeoutMs),
        wake,
      );
      this.#wake = wake;
    });
  }

  /** Stops reading; the upstream connection is closed by the attempt's abort signal. */
  close(): void {
    this.#body.destroy();
  }

  #take(): SseRead | undefined {
    const message = this.#queue.shift();
    if (message) {
      if (this.#queue.length < HIGH_WATER / 2 && this.#body.isPaused()) this.#body.resume();
      return { kind: 'event', message };
    }
    if (this.#error !== undefined) return { kind: 'error', error: this.#error };
    if (this.#ended) return { kind: 'end' };
    return undefined;
  }

  #push(message: EventSourceMessage): void {
    this.#queue.push(message);
    if (this.#queue.length >= HIGH_WATER) this.#body.pause();
    this.#wake?.();
  }

  #finish(): void {
    this.#ended = true;
    this.#wake?.();
  }
}
