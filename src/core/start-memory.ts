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
} as const;

export type StartMemoryRelease =
  | { outcome: typeof START_MEMORY_OUTCOME.released; heapTotalMB: { before: number; after: number }; rssMB: { before: number; after: number }; ms: number }
  | { outcome: typeof START_MEMORY_OUTCOME.unavailable };

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
