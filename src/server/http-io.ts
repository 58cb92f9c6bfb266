// Answers for the chain routes, written on Node's response without Express (these routes
// run on every request; Express serves the rest). Request headers are read with core's header().
// Everything written to a caller passes a Redactor here (and in the stream pump): upstreams
// echo keys in answers and errors, and no credential may reach a caller in any encoding.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Redactor } from '../core/redact.ts';

/**
 * A whole text answer: status, headers, a content-type (UTF-8 unless it names a charset) and a
 * length; redacted first. `answer`: the body is a model's answer, redacted of known secrets
 * only (Redactor.redactKnown); otherwise (errors) any bearer token too.
 */
export function sendText(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  contentType: string,
  body: string,
  redactor: Redactor,
  answer = false,
): void {
  if (res.headersSent) return;
  const text = answer ? redactor.redactKnown(body) : redactor.redact(body);
  res.writeHead(status, {
    ...redactHeaders(headers, redactor),
    'content-type': /;\s*charset=/i.test(contentType) ? contentType : `${contentType}; charset=utf-8`,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Header values (and trailers) for a caller, redacted. */
export function redactHeaders<T extends OutgoingHttpHeaders | Record<string, string>>(headers: T, redactor: Redactor): T {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') out[name] = redactor.redact(value);
    else if (Array.isArray(value)) out[name] = value.map((v) => redactor.redact(v));
    else out[name] = value;
  }
  return out as T;
}
