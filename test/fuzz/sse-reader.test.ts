// Property tests of the SSE reader (src/upstream/sse.ts) over arbitrary chunk splits: a valid
// event stream comes out exactly as sent, one message per event, whatever the byte boundaries
// (inside a UTF-8 character, between \r and \n, …); garbage never crashes it, and garbage
// between two valid parts never merges their events.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { SseReader } from '../../src/upstream/sse.ts';

const RUNS = 200;

interface SentEvent {
  event?: string;
  id?: string;
  dataLines: string[];
  /** Comment lines (": …") before the event: keep-alives, which must not produce messages. */
  comments: string[];
  /** Write `data:x` instead of `data: x` (the space is optional in SSE). */
  tight: boolean;
}

interface Received {
  data: string;
  event: string | null;
  id: string | null;
}

type Eol = '\n' | '\r\n' | '\r';

const noLineBreak = (s: string): boolean => !/[\r\n]/.test(s);

// Field values: any Unicode (multi-byte characters get split across chunks), JSON like an
// upstream's chunks, and tricky prefixes (colons, leading spaces, "data:" inside a value).
const valueArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 24 }),
    fc.json({ maxDepth: 2 }),
    fc.constantFrom('', ' ', '  leading spaces', ':', 'data: inner', '[DONE]', '{"error":{"message":"x"}}', 'é漢字🙂'),
  )
  .filter(noLineBreak);

const nameArb = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }).filter((s) => noLineBreak(s) && !s.startsWith(' '));
const idArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => noLineBreak(s) && !s.includes('\0') && !s.startsWith(' '));

const eventArb: fc.Arbitrary<SentEvent> = fc.record({
  event: fc.option(nameArb, { nil: undefined }),
  id: fc.option(idArb, { nil: undefined }),
  dataLines: fc.array(valueArb, { minLength: 1, maxLength: 4 }),
  comments: fc.array(fc.string({ maxLength: 10 }).filter(noLineBreak), { maxLength: 2 }),
  tight: fc.boolean(),
});

const eventsArb = fc.array(eventArb, { minLength: 1, maxLength: 12 });
const eolArb = fc.constantFrom<Eol>('\n', '\r\n', '\r');
// Cut positions as fractions of the byte length, so any byte boundary can be hit.
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

function serialize(events: readonly SentEvent[], eol: Eol): string {
  let out = '';
  for (const e of events) {
    for (const c of e.comments) out += `:${c}${eol}`;
    if (e.event !== undefined) out += `event: ${e.event}${eol}`;
    if (e.id !== undefined) out += `id: ${e.id}${eol}`;
    for (const line of e.dataLines) {
      // Without the space, a value that itself starts with a space would lose nothing, but
      // one with a leading space would be read differently: only tighten safe values.
      out += e.tight && !line.startsWith(' ') ? `data:${line}${eol}` : `data: ${line}${eol}`;
    }
    out += eol; // the blank line that dispatches the event
  }
  return out;
}

function expected(events: readonly SentEvent[]): Received[] {
  return events.map((e) => ({ data: e.dataLines.join('\n'), event: e.event ?? null, id: e.id ?? null }));
}

function chunksOf(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  return chunks;
}

/**
 * Feeds the chunks through a PassThrough into a reader and collects messages until the end.
 * `early` chunks are already waiting in the body when the reader is made (an upstream's
 * answer that arrived with its headers); `endEarly`: so is the body's end.
 */
async function readAll(chunks: readonly Buffer[], early = 0, endEarly = false): Promise<{ messages: Received[]; end: string }> {
  const body = new PassThrough();
  for (const c of chunks.slice(0, early)) body.write(c);
  if (endEarly) body.end();
  const reader = new SseReader(body);
  for (const c of chunks.slice(early)) body.write(c);
  if (!endEarly) body.end();
  const messages: Received[] = [];
  // Bounded: every read either returns a message or ends; a generous limit catches a hang.
  for (let i = 0; i < 100_000; i++) {
    const read = await reader.next(5000);
    if (read.kind !== 'event') {
      reader.close();
      return { messages, end: read.kind };
    }
    const { data, event, id } = read.message;
    messages.push({ data, event: event ?? null, id: id ?? null });
  }
  reader.close();
  return { messages, end: 'too many messages' };
}

describe('SseReader over arbitrary chunk splits (fast-check)', () => {
  test('a valid event stream comes out exactly as sent: same events, same order, none merged or split', async () => {
    await fc.assert(
      fc.asyncProperty(eventsArb, eolArb, cutsArb, async (events, eol, cuts) => {
        const { messages, end } = await readAll(chunksOf(Buffer.from(serialize(events, eol), 'utf8'), cuts));
        assert.equal(end, 'end');
        assert.deepEqual(messages, expected(events));
      }),
      { numRuns: RUNS },
    );
  });

  test('the same when part or all of the stream was already waiting in the body when the reader was made', async () => {
    await fc.assert(
      fc.asyncProperty(eventsArb, eolArb, cutsArb, fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), async (events, eol, cuts, share, whole) => {
        const chunks = chunksOf(Buffer.from(serialize(events, eol), 'utf8'), cuts);
        const early = whole ? chunks.length : Math.floor(share * (chunks.length + 1));
        const { messages, end } = await readAll(chunks, early, whole);
        assert.equal(end, 'end');
        assert.deepEqual(messages, expected(events));
      }),
      { numRuns: RUNS },
    );
  });

  test('a final event without its blank line still comes out, and only once', async () => {
    await fc.assert(
      fc.asyncProperty(eventsArb, eolArb, cutsArb, async (events, eol, cuts) => {
        const text = serialize(events, eol).slice(0, -eol.length); // drop the last dispatching blank line
        const { messages, end } = await readAll(chunksOf(Buffer.from(text, 'utf8'), cuts));
        assert.equal(end, 'end');
        assert.deepEqual(messages, expected(events));
      }),
      { numRuns: RUNS },
    );
  });

  test('arbitrary bytes never crash the reader: it hands out string messages and then ends', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), cutsArb, async (bytes, cuts) => {
        const { messages, end } = await readAll(chunksOf(Buffer.from(bytes), cuts));
        assert.equal(end, 'end');
        for (const m of messages) assert.equal(typeof m.data, 'string');
      }),
      { numRuns: RUNS },
    );
  });

  // Garbage shaped like SSE is likelier to confuse a parser than random bytes.
  const sseLikeGarbage = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          'data:',
          'data: ',
          'event:',
          'id:',
          'retry:',
          'retry: x',
          ':',
          'data',
          'dat',
          '\r',
          '\n',
          '\r\n',
          '\uFEFF',
          '\0',
          ' ',
          'field: value',
          '{"choices":[',
        ),
        fc.string({ unit: 'grapheme', maxLength: 8 }),
      ),
      { maxLength: 30 },
    )
    .map((parts) => Buffer.from(parts.join(''), 'utf8'));
  const garbageArb = fc.oneof(
    sseLikeGarbage,
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  );

  test('garbage between two valid parts, once ended by a blank line, never merges their events', async () => {
    await fc.assert(
      fc.asyncProperty(eventsArb, garbageArb, eventsArb, eolArb, cutsArb, async (before, garbage, after, eol, cuts) => {
        const bytes = Buffer.concat([Buffer.from(serialize(before, eol), 'utf8'), garbage, Buffer.from('\n\n'), Buffer.from(serialize(after, eol), 'utf8')]);
        const { messages, end } = await readAll(chunksOf(bytes, cuts));
        assert.equal(end, 'end');
        assert.ok(messages.length >= before.length + after.length, `${messages.length} messages for ${before.length} + ${after.length} valid events`);
        assert.deepEqual(messages.slice(0, before.length), expected(before));
        assert.deepEqual(messages.slice(messages.length - after.length), expected(after));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('SseReader over a body that already holds the answer', () => {
  const event = (i: number): string => `data: {"n":${i}}\n\n`;

  test('the first event is ready at once, without waiting for the body to start flowing', async () => {
    const body = new PassThrough();
    body.end(Buffer.from(event(0) + event(1)));
    const reader = new SseReader(body);
    const first = reader.poll();
    assert.deepEqual(first?.kind === 'event' ? first.message.data : first?.kind, '{"n":0}');
    reader.close();
  });

  test('more events than it queues before pausing the body (64): every one comes out, in order, then the end', async () => {
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const count = 500;
    body.end(Buffer.from(Array.from({ length: count }, (_, i) => event(i)).join('')));
    const reader = new SseReader(body);
    const seen: string[] = [];
    for (;;) {
      const read = await reader.next(5000);
      if (read.kind !== 'event') {
        assert.equal(read.kind, 'end');
        break;
      }
      seen.push(read.message.data);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: count }, (_, i) => `{"n":${i}}`),
    );
    reader.close();
  });
});
