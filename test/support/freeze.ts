// A synchronous stretch of the test process: the event loop does nothing for `ms`, as in a
// stopped process (SIGSTOP, a migrated VM), and then finds every timer that fell due meanwhile.
export function freeze(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Nothing: the point is that the loop does not turn.
  }
}
