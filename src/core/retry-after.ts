/** Headers as Node's http gives them: a string, or string[] for a repeated header such as set-cookie. */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** The first value of a header. */
export function header(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const HTTP_DATE_START = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s/;

/**
 * How long the upstream asked us to wait, in ms, or undefined if it did not say.
 * `retry-after-ms` (OpenAI, Azure) is more precise and wins; `retry-after` may be
 * delta-seconds or an HTTP date (RFC 9110 §10.2.3). Garbage is ignored, not trusted.
 */
export function parseRetryAfter(headers: HeaderBag, nowEpochMs: number): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  const value = header(headers, 'retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  // Every HTTP date form starts with a day name; Date.parse alone would read "-5" as 2001.
  if (!HTTP_DATE_START.test(value)) return undefined;
  // HTTP dates are always GMT; asctime() carries no zone and Date.parse would read it as local time.
  const date = Date.parse(/GMT|UTC|[+-]\d{4}$/.test(value) ? value : `${value} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowEpochMs);
}
