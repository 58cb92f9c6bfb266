// The few things the chain routes need from Node's request and response, without Express
// (these routes run on every request; Express serves the rest).
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** A request header's first value. */
export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A whole text answer: status, headers, a content-type (UTF-8 unless it names a charset) and a length. */
export function sendText(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, contentType: string, body: string): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    ...headers,
    'content-type': /;\s*charset=/i.test(contentType) ? contentType : `${contentType}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
