// The one HTTP client for upstreams: undici with keep-alive. undici's own timeouts
// are disabled because every attempt enforces first-byte/idle/total limits itself.
import { Agent, request, type Dispatcher } from 'undici';

export const upstreamAgent = new Agent({
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 120_000,
  headersTimeout: 0,
  bodyTimeout: 0,
  connect: { timeout: 10_000 },
});

export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

export type UpstreamResponse = Dispatcher.ResponseData;

export function sendUpstream(req: UpstreamRequest): Promise<UpstreamResponse> {
  return request(req.url, {
    method: 'POST',
    headers: req.headers,
    body: req.body,
    signal: req.signal,
    dispatcher: upstreamAgent,
  });
}

/** Reads at most `limit` bytes of a body as text; the rest is discarded (error bodies can be huge). */
export async function readText(body: UpstreamResponse['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size < limit) chunks.push(buf.subarray(0, limit - size));
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
