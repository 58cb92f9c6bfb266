// The cap on a port's open connections. Node's own `server.maxConnections` closes a new
// connection whenever the cap is reached, even while keep-alive connections that sit idle
// between two requests hold every slot: with the API port keeping those 65 s, one caller's
// burst would lock every other caller out for a minute. Here a new connection takes the place
// of the one idle longest instead (its caller's client opens another when it next needs one),
// if that one has been idle at least MIN_IDLE_TO_EVICT_MS; otherwise the new connection is
// closed at once.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * How long a connection must have been idle before a newcomer may take its place. A client
 * writes its next request into a connection it holds without warning, and no common client
 * sends a POST again when the connection is closed under it (undici, Node's agent and httpx
 * all fail it): a connection idle a moment ago is likely to be written into right now. A churn
 * of new connections at the cap (one client opening them in a loop) cost a caller with 0–3 ms
 * between its POSTs one request in six when any idle connection could be taken, and none with
 * this floor (review of this module, docs/bench/findings.md).
 */
export const MIN_IDLE_TO_EVICT_MS = 1_000;

export interface CapEvents {
  /** A new connection was closed at once: the cap was reached and no connection had idled long enough to give way. */
  onDrop?: () => void;
  /** An idle connection was closed to make room for a new one. */
  onEvict?: () => void;
}

/** A connection counted against the cap: one record for its life, changed in place by its requests. */
interface Counted {
  /**
   * Requests received and not yet answered. Node hands out a pipelined request before the
   * answer to the one ahead of it is written, so the end of one answer does not make the
   * connection idle while another request on it is still being served.
   */
  busy: number;
  /** Since when it has waited for its next request (`now()`); Infinity while serving one or before its first, which no age passes. */
  idleSince: number;
}

export function capConnections(server: Server, max: number, events: CapEvents = {}, now: () => number = () => performance.now()): void {
  // One record per connection, set when it opens and deleted when it closes: a request only
  // changes its record's numbers. Maps of idle and busy connections entered and left on every
  // request grew and shrank their tables each time, and a long-lived Map's new table is made in
  // the old space: half of what a request left there at c=1, the old space's main filler
  // between mark-compacts (docs/bench/findings.md, "Targets, sixteenth sitting").
  const open = new Map<Socket, Counted>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= max) {
      const longestIdle = idleLongest(open);
      if (longestIdle === undefined || now() - longestIdle[1].idleSince < MIN_IDLE_TO_EVICT_MS) {
        socket.destroy();
        events.onDrop?.();
        return;
      }
      // Uncounted now: its 'close' comes later, and the new connection needs the slot at once.
      open.delete(longestIdle[0]);
      longestIdle[0].destroy();
      events.onEvict?.();
    }
    open.set(socket, { busy: 0, idleSince: Number.POSITIVE_INFINITY });
    socket.once('close', () => open.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const counted = open.get(socket);
    if (counted === undefined) return;
    counted.busy++;
    counted.idleSince = Number.POSITIVE_INFINITY;
    // Once the answer is written (or given up), and no other request on it waits for one, the connection waits for its next request.
    res.once('close', () => {
      if (--counted.busy === 0 && !socket.destroyed) counted.idleSince = now();
    });
  });
}

/**
 * The connection idle since the earliest time: a scan, made only when a new connection finds
 * the cap reached. When none is idle it is one whose idleSince is Infinity, which no age passes.
 */
function idleLongest(open: ReadonlyMap<Socket, Counted>): [Socket, Counted] | undefined {
  let longest: [Socket, Counted] | undefined;
  for (const entry of open) if (longest === undefined || entry[1].idleSince < longest[1].idleSince) longest = entry;
  return longest;
}
