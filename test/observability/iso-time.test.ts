import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, isoTime } from '../../src/observability/logger.ts';

describe("a log line's time", () => {
  // Proves the kept second never leaks into the next one: each millisecond around second,
  // minute, day and year boundaries, in order and out of order, reads as Date#toISOString.
  test('is the text Date#toISOString makes, across boundaries and in any order', () => {
    const edges = [0, 999, 1000, Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2024, 1, 29, 12, 0, 0, 5), Date.now()];
    const times = edges.flatMap((t) => Array.from({ length: 40 }, (_, i) => t + i * 7));
    for (const t of [...times, ...times.reverse()]) assert.equal(isoTime(t), new Date(t).toISOString(), String(t));
  });

  // Proves pino's own lines carry the same field, as JSON pino would write it.
  test("pino's lines carry it as their time field", () => {
    let written = '';
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString();
        done();
      },
    });
    const before = Date.now();
    createLogger('info', out).info('hello');
    const line = JSON.parse(written) as { time: string; msg: string };
    assert.equal(line.msg, 'hello');
    assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(line.time) >= before && Date.parse(line.time) <= Date.now());
  });
});
