// The HTTP servers of both ports, with limits that hold against a caller who connects and
// then sends nothing, trickles its headers or body, or opens connections without end:
// Node's defaults (no request timeout on the API port, 300 s on the admin port, no cap on
// connections) let any of these hold the sidecar's sockets and memory for as long as it likes.
import type { IncomingMessage, RequestListener, Server } from 'node:http';
import { http } from '../core/node-http.ts';
import type { Socket } from 'node:net';
import { capConnections, type CapEvents } from './connection-cap.ts';

export interface ServerLimits {
  /** A request's headers, and (admin port) its whole request, must arrive within this time; 0: no limit. */
  requestTimeoutMs: number;
  /**
   * API port: the chain routes end a body that has not arrived within `requestTimeoutMs` of
   * its headers themselves (a 408 in the caller's shape); Node's own limit then only backs
   * them up, for the other routes, well after theirs.
   */
  routesTimeBodies: boolean;
  /** Most open connections (0: no cap): a new one beyond them replaces the connection idle longest (if idle a second), or is closed at once. */
  maxConnections: number;
  /** How long an idle keep-alive connection is kept open. */
  idleKeepAliveMs: number;
  /** What the cap did: a new connection closed at once, or an idle one closed to make room. */
  capEvents?: CapEvents;
}

export function limitedServer(listener: RequestListener, limits: ServerLimits): Server {
  const timeout = limits.requestTimeoutMs;
  const server = http.createServer(
    {
      headersTimeout: timeout,
      // The chain routes' own limit runs from the headers: twice the time, plus a check, leaves them the first word.
      requestTimeout: timeout === 0 ? 0 : limits.routesTimeBodies ? 2 * timeout + checkEvery(timeout) : timeout,
      keepAliveTimeout: limits.idleKeepAliveMs,
      // Node checks the timeouts above on this interval (30 s by default, which would let a 1 s limit run 31 s).
      connectionsCheckingInterval: checkEvery(timeout),
    },
    listener,
  );
  if (timeout > 0) {
    // Node's header timeout starts with the first byte: a connection that sends nothing at all is closed by this.
    server.on('connection', (socket: Socket) => socket.setTimeout(timeout));
    if (limits.routesTimeBodies) {
      // Once a request has come, the API port's connection may rightly be silent for minutes
      // (an upstream thinking; a stream between events): the chain's own limits bound that.
      server.on('request', (req: IncomingMessage) => req.socket.setTimeout(0));
    } else {
      // Admin answers are immediate: a connection silent this long is dead or hostile.
      server.timeout = timeout;
    }
  }
  if (limits.maxConnections > 0) capConnections(server, limits.maxConnections, limits.capEvents);
  return server;
}

function checkEvery(timeoutMs: number): number {
  if (timeoutMs === 0) return 30_000;
  return Math.max(50, Math.min(1_000, Math.floor(timeoutMs / 4)));
}
