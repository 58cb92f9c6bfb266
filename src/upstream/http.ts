// The one HTTP client for upstreams: Node's own http/https with keep-alive agents.
// Node's built-in client rather than undici: the HTTP server already loads it, so the sidecar
// carries one HTTP stack instead of two (undici added ~25 MB of RSS to every pod for no gain
// in per-request CPU on the benchmark; see docs/bench/findings.md). No socket timeouts are
// set here because every attempt enforces its first-byte/idle/total limits itself and aborts
// the request through `signal`, which destroys the connection.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';

const AGENT_OPTIONS = {
  keepAlive: true,
  // Reuse the most recently used connection first: the others can idle out.
  scheduling: 'lifo',
  maxFreeSockets: 256,
} as const;

const httpAgent = new http.Agent(AGENT_OPTIONS);
const httpsAgent = new https.Agent(AGENT_OPTIONS);

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as it arrives; reading it to the end returns the connection to the pool. */
  body: IncomingMessage;
}

/** POSTs the request; resolves when the response headers arrive, rejects on a network error or abort. */
export function sendUpstream(req: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(req.url);
    const secure = url.protocol === 'https:';
    const payload = Buffer.from(req.body, 'utf8');
    const outgoing = (secure ? https : http).request(url, {
      method: 'POST',
      headers: { ...req.headers, 'content-length': String(payload.length) },
      agent: secure ? httpsAgent : httpAgent,
      signal: req.signal,
    }, (response) => resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, body: response }));
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

/** Reads at most `limit` bytes of a body as text; the rest is discarded (error bodies can be huge). */
export async function readText(body: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size < limit) chunks.push(buf.subarray(0, limit - size));
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
