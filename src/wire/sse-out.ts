// One SSE event as text, for every caller codec that writes an upstream's event as it came.
// A parsed event's data joins its `data:` lines with "\n"; written back as one `data:` line,
// an event whose data spanned several lines would end at the first line break and break the
// caller's parser. Each line gets its own field, as the SSE specification reads them.

/** `event: NAME` (when given) and the data, one `data:` line per line of it, ending the event. */
export function sseEvent(data: string, event?: string): string {
  const head = event === undefined ? '' : `event: ${event}\n`;
  if (!data.includes('\n')) return `${head}data: ${data}\n\n`;
  return `${head}${data
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}
