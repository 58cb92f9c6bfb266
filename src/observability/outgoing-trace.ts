// The trace context an upstream request carries (traceparent, tracestate). Tracing runs each
// attempt inside `withTraceHeaders`, and the one upstream HTTP client adds what it finds; with
// tracing off nothing ever enters the storage and the client adds nothing.
import { AsyncLocalStorage } from 'node:async_hooks';

let storage: AsyncLocalStorage<Readonly<Record<string, string>>> | undefined;

/** Runs `run` (an attempt) so that the upstream requests it sends carry `headers`. */
export function withTraceHeaders<R>(headers: Readonly<Record<string, string>>, run: () => R): R {
  storage ??= new AsyncLocalStorage();
  return storage.run(headers, run);
}

/** The trace headers of the attempt this code runs for, if it is traced. */
export function currentTraceHeaders(): Readonly<Record<string, string>> | undefined {
  return storage?.getStore();
}
