// parseRetryAfter: how long an upstream asked us to wait, in ms, from its response headers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryAfter, type HeaderBag } from '../../src/core/retry-after.ts';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

describe('parseRetryAfter', () => {
  const cases: Array<{ name: string; headers: HeaderBag; want: number | undefined }> = [
    // No header: the upstream did not say; backoff decides.
    { name: 'no header', headers: {}, want: undefined },
    // delta-seconds are converted to ms.
    { name: 'seconds', headers: { 'retry-after': '3' }, want: 3000 },
    // Zero seconds means "now", not "unspecified".
    { name: 'zero seconds', headers: { 'retry-after': '0' }, want: 0 },
    // Fractional seconds (sent by some gateways) are honoured, rounded up to whole ms.
    { name: 'fractional seconds', headers: { 'retry-after': '1.5' }, want: 1500 },
    // Rounding goes up so we never come back early.
    { name: 'fractional seconds rounded up', headers: { 'retry-after': '0.0004' }, want: 1 },
    // Surrounding whitespace is tolerated.
    { name: 'seconds with spaces', headers: { 'retry-after': '  2  ' }, want: 2000 },
    // An HTTP date in the future: the time until then.
    { name: 'HTTP date in the future', headers: { 'retry-after': 'Sun, 01 Mar 2026 12:00:05 GMT' }, want: 5000 },
    // An HTTP date already passed: retry at once, never a negative wait.
    { name: 'HTTP date in the past', headers: { 'retry-after': 'Sun, 01 Mar 2026 11:59:00 GMT' }, want: 0 },
    // retry-after-ms is more precise and wins over retry-after.
    { name: 'retry-after-ms wins', headers: { 'retry-after-ms': '250', 'retry-after': '30' }, want: 250 },
    // retry-after-ms alone.
    { name: 'retry-after-ms alone', headers: { 'retry-after-ms': '1200' }, want: 1200 },
    // Fractional retry-after-ms is rounded up.
    { name: 'fractional retry-after-ms', headers: { 'retry-after-ms': '12.2' }, want: 13 },
    // A garbage retry-after-ms is ignored and retry-after is used instead.
    { name: 'garbage retry-after-ms falls back to retry-after', headers: { 'retry-after-ms': 'soon', 'retry-after': '4' }, want: 4000 },
    // Garbage in retry-after is ignored, not trusted.
    { name: 'garbage retry-after', headers: { 'retry-after': 'later please' }, want: undefined },
    // The obsolete RFC 850 date form is still an HTTP date (RFC 9110 §5.6.7).
    { name: 'RFC 850 date', headers: { 'retry-after': 'Sunday, 01-Mar-26 12:00:10 GMT' }, want: 10000 },
    // asctime() dates carry no zone but are GMT by definition; read as local time they would be off by hours.
    { name: 'asctime date is GMT', headers: { 'retry-after': 'Sun Mar  1 12:00:07 2026' }, want: 7000 },
    // A negative number is neither delta-seconds nor a date (V8's Date.parse reads "-5" as 2001, i.e. "retry now").
    { name: 'negative seconds', headers: { 'retry-after': '-5' }, want: undefined },
    // Text with a number in it is not a date either (Date.parse would read "Version 2" as 2001).
    { name: 'text with a number', headers: { 'retry-after': 'Version 2' }, want: undefined },
    // An empty header says nothing.
    { name: 'empty retry-after', headers: { 'retry-after': '' }, want: undefined },
    // A repeated header may come as an array: the first value counts.
    { name: 'array retry-after', headers: { 'retry-after': ['7', '99'] }, want: 7000 },
    // Arrays work for retry-after-ms too.
    { name: 'array retry-after-ms', headers: { 'retry-after-ms': ['300', '5'] }, want: 300 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(parseRetryAfter(c.headers, NOW), c.want);
    });
  }
});
