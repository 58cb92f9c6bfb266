// The cap on a port's open connections. Node's own `server.maxConnections` closes a new
// connection whenever the cap is reached, even while keep-alive connections that sit idle
// between two requests hold every slot: with the API port keeping those 65 s, one caller's
// burst would lock every other caller out for a minute. Here a new connection takes the place
// of the one idle longest instead (its caller's client opens another when it next needs one);
// only when every connection is busy, or has not finished a first request yet, is the new one
// closed at once.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export function capConnections(server: Server, max: number, onDrop?: () => void): void {
  /** Every connection counted against the cap. */
  const open = new Set<Socket>();
  /** Connections between two requests, the one idle longest first (a Set keeps insertion order). */
  const idle = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= max) {
      const longestIdle = idle.values().next().value;
      if (longestIdle === undefined) {
        socket.destroy();
        onDrop?.();
        return;
      }
      // Uncounted now: its 'close' comes later, and the new connection needs the slot at once.
      open.delete(longestIdle);
      idle.delete(longestIdle);
      longestIdle.destroy();
    }
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      idle.delete(socket);
    });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    idle.delete(socket);
    // Once the answer is written (or given up), the connection waits for its next request.
    res.once('close', () => {
      if (!socket.destroyed && open.has(socket)) idle.add(socket);
    });
  });
}
