// The memory the start used, given back once the sidecar is ready.
//
// Loading the bundle, reading the config and building the servers leave V8 with a new space
// grown to its maximum (the start's objects survive its first scavenges, and V8 grows the new
// space when survivors pass its size) and with code for functions that ran once. V8 gives such
// memory back after a full collection made to reduce memory, which it schedules itself only
// after a mark-compact that load caused; an idle process that has just started never runs one,
// so it kept ~4 MB it does not use (docs/bench/findings.md, "tenth sitting"). One such
// collection (V8's last-resort flavour: repeated mark-compacts that shrink the new space and
// flush code that ran once) costs ~25 ms of CPU, once.
//
// It needs the collector exposed (`node --expose-gc`, as the image's ENTRYPOINT and `npm start`
// run it); without the flag there is nothing to call and nothing is done.

export const START_MEMORY_OUTCOME = {
  released: 'released',
  /** Node was started without --expose-gc. */
  unavailable: 'gc-not-exposed',
  /** Requests were in flight at every try: a sidecar under load, whose own collections size its heap. */
  kept: 'kept-requests-in-flight',
} as const;

export type StartMemoryRelease =
  | { outcome: typeof START_MEMORY_OUTCOME.released; heapTotalMB: { before: number; after: number }; rssMB: { before: number; after: number }; ms: number }
  | { outcome: typeof START_MEMORY_OUTCOME.unavailable }
  | { outcome: typeof START_MEMORY_OUTCOME.kept; inflight: number };

/**
 * The release waits this long after ready, not a turn: the collection pauses the process for
 * ~15-25 ms, and the moment a pod turns ready is when the kubelet's probe and the app's first
 * requests arrive. Run on the turn after ready, it held up the very probe that found the
 * sidecar ready, at every start (docs/bench/findings.md, "Start time, twelfth sitting"). Well
 * within the second after which a pod's idle memory is read.
 */
export const RELEASE_AFTER_READY_MS = 250;
/** Tries, RELEASE_AFTER_READY_MS apart, to find the sidecar with no request in flight (5 s). */
export const RELEASE_TRIES = 20;

export interface ReleaseSchedule {
  /** Requests in flight now: a request is never made to wait for the collection. */
  inflight: () => number;
  /** Told the outcome, once. */
  done: (release: StartMemoryRelease) => void;
  gc?: NodeJS.GCFunction | undefined;
}

/**
 * Gives the start's memory back at the first try with nothing in flight, RELEASE_AFTER_READY_MS
 * after the call and then as often apart, at most RELEASE_TRIES times. Returns a cancel (drain).
 */
export function releaseStartMemoryWhenIdle({ inflight, done, gc = globalThis.gc }: ReleaseSchedule): () => void {
  let timer: NodeJS.Timeout | undefined;
  const attempt = (triesLeft: number): void => {
    timer = setTimeout(() => {
      const busy = inflight();
      if (busy === 0) return done(releaseStartMemory(gc));
      if (triesLeft > 1) return attempt(triesLeft - 1);
      done({ outcome: START_MEMORY_OUTCOME.kept, inflight: busy });
    }, RELEASE_AFTER_READY_MS);
    // An idle process with nothing else to do is not kept alive for it.
    timer.unref();
  };
  attempt(RELEASE_TRIES);
  return () => clearTimeout(timer);
}

const MB = 1024 * 1024;
const round = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

export function releaseStartMemory(gc: NodeJS.GCFunction | undefined = globalThis.gc): StartMemoryRelease {
  if (typeof gc !== 'function') return { outcome: START_MEMORY_OUTCOME.unavailable };
  const before = process.memoryUsage();
  const started = performance.now();
  gc({ type: 'major', flavor: 'last-resort', execution: 'sync' });
  const ms = Math.round(performance.now() - started);
  const after = process.memoryUsage();
  return {
    outcome: START_MEMORY_OUTCOME.released,
    heapTotalMB: { before: round(before.heapTotal), after: round(after.heapTotal) },
    rssMB: { before: round(before.rss), after: round(after.rss) },
    ms,
  };
}
