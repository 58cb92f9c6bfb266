// One SSE event as text, for every caller codec that writes an upstream's event as it came.
// A parsed event's data joins its `data:` lines with "\n"; written back as one `data:` line,
// an event whose data spanned several lines would end at the first line break and break the
// caller's parser. Each line gets its own field, as the SSE specification reads them.

import { rewrittenJson } from '../core/json.ts';

/** `event: NAME` (when given) and the data, one `data:` line per line of it, ending the event. */
export function sseEvent(data: string, event?: string): string {
  const head = event === undefined ? '' : `event: ${event}\n`;
  if (!data.includes('\n')) return `${head}data: ${data}\n\n`;
  return `${head}${data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

/**
 * The SSE text with each `data:` line that holds JSON parsed and written again: what a
 * re-encoding caller codec would have written. Undoes one level of JSON escapes (`\\u0025`
 * becomes `%`), so that an escaped key becomes one the redactor's escape rules recognise.
 * Lines that are not JSON on their own (a multi-line event's parts) keep their text.
 */
export function rewrittenSseData(text: string): string {
  return text.replace(/^data: ?(.*)$/gm, (_line: string, data: string) => `data: ${rewrittenJson(data)}`);
}
