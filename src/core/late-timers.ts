// Time-outs decided only after the I/O that arrived in time has been read.
//
// When the event loop resumes after a freeze (a stopped or migrated VM, a debugger, a long
// synchronous stretch), libuv runs every timer that fell due before it polls the sockets. An
// upstream's answer that arrived during the freeze, within its time-out, would lose to the
// time-out: the attempt counted as a timeout and a breaker failure. A sidecar stopped for 70 s
// just after 128 requests were answered opened the circuit of its one healthy step that way,
// and failed every request for the cooldown (docs/bench/findings.md, "tenth sitting"). So the
// timer only schedules the decision with setImmediate, which runs after the loop's poll phase:
// an answer already in a socket is read first, and the callback, which checks whether it is
// still waiting, finds it no longer is. A time-out that is not preceded by such an answer is
// decided less than a turn of the loop later than before.

/**
 * Like `setTimeout(callback, ms, arg)`, but `callback(arg)` runs in the check phase of the loop
 * turn in which the timer fell due, after that turn has read the sockets. `clearTimeout` on the
 * result cancels it until it falls due; after that, `callback` must see for itself that it is no
 * longer wanted.
 */
export function timeOutAfterArrivedIo<T>(callback: (arg: T) => void, ms: number, arg: T): NodeJS.Timeout {
  return setTimeout(decideAfterIo<T>, ms, callback, arg);
}

function decideAfterIo<T>(callback: (arg: T) => void, arg: T): void {
  setImmediate(callback, arg);
}
