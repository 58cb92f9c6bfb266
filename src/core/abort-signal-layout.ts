// Why two AbortSignals are aborted at start and kept for the process's life.
//
// V8 records, for each object layout, whether a field still holds the value it was created with
// and what type of value it holds, and optimised code that reads the field depends on both. An
// AbortSignal's aborted flag and reason change only when it aborts, so until some signal in the
// process has aborted, every optimised function that reads one (the request path reads the
// caller's and the attempt's, undici its request's) depends on "never aborted". The first abort,
// a caller gone mid-request or an attempt timed out, then deoptimises them all at once, and they
// compile again on the request's thread (the image's --no-concurrent-recompilation). In three
// replays of the bench's slices with the image's flags this burst came after the warm-up, among
// 57–71 deoptimisations in all; in three with the signals below, 8–16 and none of a signal's
// getters (docs/bench/findings.md, "Targets, seventeenth sitting").
//
// Aborted here, the fields have changed before any code is optimised. Two reasons of two types
// (an Error, as the attempt's scope gives; the DOMException abort() makes without one, as the
// request's handler does) widen the reason's recorded type at once instead of at the first abort
// of each kind. Kept, they keep the layout alive: a layout no object uses dies in a collection,
// and the next signal would start afresh with what V8 records.
let kept: readonly AbortSignal[] = [];

/** Aborts two signals and keeps them, so that later aborts change nothing V8 relies on. Idempotent. */
export function settleAbortSignalLayout(): void {
  if (kept.length > 0) return;
  const withError = new AbortController();
  withError.abort(new Error('settles the AbortSignal layout at start'));
  const withDefault = new AbortController();
  withDefault.abort();
  kept = [withError.signal, withDefault.signal];
}
