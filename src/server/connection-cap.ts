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

export function capConnections(server: Server, max: number, events: CapEvents = {}, now: () => number = () => performance.now()): void {
  /** Every connection counted against the cap. */
  const open = new Set<Socket>();
  /** Connections between two requests and since when, the one idle longest first (a Map keeps insertion order). */
  const idle = new Map<Socket, number>();
  /**
   * Requests received and not yet answered, per connection. Node hands out a pipelined request
   * before the answer to the one ahead of it is written, so the end of one answer does not make
   * the connection idle while another request on it is still being served.
   */
  const busy = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= max) {
      const longest = idle.entries().next().value;
      if (longest === undefined || now() - longest[1] < MIN_IDLE_TO_EVICT_MS) {
        socket.destroy();
        events.onDrop?.();
        return;
      }
      const [longestIdle] = longest;
      // Uncounted now: its 'close' comes later, and the new connection needs the slot at once.
      open.delete(longestIdle);
      idle.delete(longestIdle);
      longestIdle.destroy();
      events.onEvict?.();
    }
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      idle.delete(socket);
      busy.delete(socket);
    });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    idle.delete(socket);
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    // Once the answer is written (or given up), and no other request on it waits for one, the connection waits for its next request.
    res.once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) {
        busy.set(socket, left);
        return;
      }
      busy.delete(socket);
      if (!socket.destroyed && open.has(socket)) idle.set(socket, now());
    });
  });
}
