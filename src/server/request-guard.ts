// Who may talk to the proxy's ports. The API serves SDKs on this machine (or in this pod),
// never web pages, so a browser must not be able to use it on a visitor's behalf:
// - DNS rebinding: a page on evil.example re-resolves its name to 127.0.0.1 and becomes
//   same-origin with the proxy. Every request from a loopback peer must therefore address
//   the proxy by a name no outsider controls: localhost, an IP literal (127.0.0.1, [::1],
//   the pod IP), the machine's own host name, or a name the operator allowed.
// - Simple cross-site requests (a form or a no-cors fetch with a text/plain body) need no
//   CORS preflight: requests that a browser marks as coming from another site (Origin,
//   Sec-Fetch-Site) are refused, and chain routes accept only application/json bodies,
//   which a browser cannot send cross-site without a preflight we never grant.
// Pure: request facts in, a refusal (status, stable code, message) or undefined out.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

export interface Refusal {
  status: number;
  code: RefusalCode;
  message: string;
}

export const REFUSAL_CODES = ['host_not_allowed', 'cross_site_request', 'unsupported_media_type', 'loopback_only'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface RequestFacts {
  headers: IncomingHttpHeaders;
  /** The peer's address (socket.remoteAddress); undefined once the socket is gone. */
  peer: string | undefined;
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

/**
 * DNS rebinding and cross-site browser requests, for every request on either port.
 * `allowedHosts`: lower-case host names (no port) accepted besides localhost and IP literals.
 */
export function browserRefusal(facts: RequestFacts, allowedHosts: ReadonlySet<string>): Refusal | undefined {
  const site = single(facts.headers['sec-fetch-site']);
  const origin = single(facts.headers['origin']);
  // Browsers mark their requests; SDKs and curl send neither header. `same-origin` and
  // `none` (typed into the address bar) are the proxy's own origin or the user's own act.
  if (origin !== undefined || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
    const what = origin !== undefined ? `Origin ${origin}` : `Sec-Fetch-Site ${site}`;
    return {
      status: 403,
      code: 'cross_site_request',
      message: `browser requests from other sites are refused (${what}): llm-fallback serves SDK clients, not web pages`,
    };
  }
  if (!isLoopback(facts.peer)) return undefined;
  const host = single(facts.headers['host']) ?? '';
  if (hostAllowed(host, allowedHosts)) return undefined;
  return {
    status: 403,
    code: 'host_not_allowed',
    message: `Host "${host.slice(0, 100)}" is not allowed: address the proxy as localhost, 127.0.0.1, [::1] or another IP address, or list the name in --allowed-hosts (protection against DNS rebinding)`,
  };
}

/** Chain routes take JSON only: a form or text/plain body is how a page would send a request without a preflight. */
export function contentTypeRefusal(headers: IncomingHttpHeaders): Refusal | undefined {
  const type = single(headers['content-type']);
  const media = type?.split(';')[0]?.trim().toLowerCase();
  if (media === 'application/json') return undefined;
  return {
    status: 415,
    code: 'unsupported_media_type',
    message: `the request body must be JSON sent with Content-Type: application/json (got ${type === undefined ? 'no Content-Type' : `"${type.slice(0, 100)}"`})`,
  };
}

/** /config shows the whole configuration: only a peer in the same pod (or on the same machine) may read it. */
export function loopbackOnlyRefusal(facts: RequestFacts, what: string): Refusal | undefined {
  if (isLoopback(facts.peer)) return undefined;
  return { status: 403, code: 'loopback_only', message: `${what} is served on loopback only (from inside the pod: kubectl port-forward or kubectl exec)` };
}

/** The host name of a Host header (`name`, `name:port`, `[v6]:port`), lower case; undefined when malformed. */
export function hostName(host: string): string | undefined {
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::\d{1,5})?$/.exec(host);
  if (bracketed) return bracketed[1]?.toLowerCase();
  const plain = /^([^:[\]]+)(?::\d{1,5})?$/.exec(host);
  return plain?.[1]?.toLowerCase();
}

function hostAllowed(host: string, allowedHosts: ReadonlySet<string>): boolean {
  const name = hostName(host);
  if (name === undefined) return false;
  // An IP literal is not a name an attacker's DNS can re-point.
  return name === 'localhost' || isIP(name) !== 0 || allowedHosts.has(name);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
