// Answers for the chain routes, written on Node's response without Express (these routes
// run on every request; Express serves the rest). Request headers are read with core's header().
// Everything written to a caller passes a Redactor here (and in the stream pump): upstreams
// echo keys in answers and errors, and no credential may reach a caller in any encoding.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Redactor } from '../core/redact.ts';
import { rewrittenJson } from '../core/json.ts';

/**
 * A whole text answer: status, headers, a content-type (UTF-8 unless it names a charset) and a
 * length; redacted first. `answer`: the body is a model's answer, redacted of known secrets
 * only (Redactor.redactKnown); otherwise (errors) any bearer token too.
 */
export function sendText(
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  contentType: string,
  body: string,
  redactor: Redactor,
  answer = false,
): void {
  if (res.headersSent) return;
  // An answer passed on as it came may hide a key under two escapes: it is then parsed and written again (redactAnswer).
  const text = answer ? redactor.redactAnswer(body, () => rewrittenJson(body)) : redactor.redact(body);
  // A flat [name, value, …] list: Node writes it as it is, where an object goes through
  // setHeader() name by name (docs/bench/findings.md).
  const list = headerValues(headers, redactor);
  list.push(
    'content-type',
    /;\s*charset=/i.test(contentType) ? contentType : `${contentType}; charset=utf-8`,
    'content-length',
    String(Buffer.byteLength(text)),
  );
  res.writeHead(status, list);
  res.end(text);
}

/** The headers as a flat list, redacted as redactHeaders does (all values searched at once), without its copy. */
function headerValues(headers: Readonly<Record<string, string>>, redactor: Redactor): string[] {
  const list: string[] = [];
  let joined = '';
  for (const name in headers) {
    const value = headers[name] as string;
    list.push(name, value);
    joined += `${value}\n`;
  }
  if (redactor.redact(joined) === joined) return list;
  for (let i = 1; i < list.length; i += 2) list[i] = redactor.redact(list[i] as string);
  return list;
}

/**
 * Header values (and trailers) for a caller, redacted: all of them are searched at once (no key
 * or escape spans the line breaks between them), and one by one only when that finds something.
 */
export function redactHeaders<T extends OutgoingHttpHeaders | Record<string, string>>(headers: T, redactor: Redactor): T {
  const out: OutgoingHttpHeaders = {};
  let joined = '';
  for (const [name, value] of Object.entries(headers)) {
    out[name] = value;
    if (typeof value === 'string') joined += `${value}\n`;
    else if (Array.isArray(value)) joined += `${value.join('\n')}\n`;
  }
  if (redactor.redact(joined) === joined) return out as T;
  for (const [name, value] of Object.entries(out)) {
    if (typeof value === 'string') out[name] = redactor.redact(value);
    else if (Array.isArray(value)) out[name] = value.map((v) => redactor.redact(v));
  }
  return out as T;
}
