// Answers for the chain routes, written on Node's response without Express (these routes
// run on every request; Express serves the rest). Request headers are read with core's header().
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

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
