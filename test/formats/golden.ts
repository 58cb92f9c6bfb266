// Golden-file runner for the format translators: every `<case>.in.json` (or `.in.sse`) in
// test/fixtures/formats/<direction>/ is translated and compared with `<case>.out.json`
// (or `.out.jsonl`, one JSON value a line). UPDATE_GOLDEN=1 rewrites the outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createParser } from 'eventsource-parser';

export const FIXTURES = fileURLToPath(new URL('../fixtures/formats/', import.meta.url));

/** A fixed `created` timestamp, so golden outputs do not depend on the clock. */
export const CREATED = 1767225600;

export interface SseEvent {
  event: string | undefined;
  data: string;
}

type Kind = 'json' | 'sse';
const EXTENSIONS: Record<Kind, { in: string; out: string }> = {
  json: { in: '.in.json', out: '.out.json' },
  sse: { in: '.in.sse', out: '.out.jsonl' },
};

/** Parses an SSE transcript the way the proxy does (eventsource-parser), CRLF or LF. */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = createParser({ onEvent: (message) => events.push({ event: message.event, data: message.data }) });
  parser.feed(text);
  parser.feed('\n\n');
  return events;
}

function casesOf(direction: string, kind: Kind): { dir: string; inputs: string[]; outputs: string[] } {
  const dir = `${FIXTURES}${direction}/`;
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const { in: inExt, out: outExt } = EXTENSIONS[kind];
  return {
    dir,
    inputs: files
      .filter((f) => f.endsWith(inExt))
      .map((f) => f.slice(0, -inExt.length))
      .sort(),
    outputs: files
      .filter((f) => f.endsWith(outExt))
      .map((f) => f.slice(0, -outExt.length))
      .sort(),
  };
}

/** Registers one test per fixture case, plus the stale-golden check, for one direction. */
export function goldenJson(direction: string, translate: (input: unknown) => unknown): void {
  golden(
    direction,
    'json',
    (text) => `${JSON.stringify(translate(JSON.parse(text)), null, 2)}\n`,
    (text) => JSON.parse(text) as unknown,
  );
}

/** Same for stream directions: the input is an SSE transcript, the output one JSON value per line. */
export function goldenSse(direction: string, translate: (events: SseEvent[]) => unknown[]): void {
  golden(
    direction,
    'sse',
    (text) =>
      translate(parseSse(text))
        .map((value) => `${JSON.stringify(value)}\n`)
        .join(''),
    (text) =>
      text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as unknown),
  );
}

function golden(direction: string, kind: Kind, render: (input: string) => string, parse: (text: string) => unknown): void {
  const { dir, inputs, outputs } = casesOf(direction, kind);
  const update = process.env['UPDATE_GOLDEN'] === '1';

  // A fixture folder whose pairs drifted apart (an input without golden output, or an
  // output whose input was deleted or renamed) fails instead of silently testing less.
  test(`${direction}: every input has a golden output and every output an input`, () => {
    assert.ok(inputs.length > 0, `no ${EXTENSIONS[kind].in} fixtures in ${dir}`);
    const missingOut = update ? [] : inputs.filter((name) => !outputs.includes(name));
    const orphanOut = outputs.filter((name) => !inputs.includes(name));
    assert.deepEqual({ missingOut, orphanOut }, { missingOut: [], orphanOut: [] });
  });

  for (const name of inputs) {
    test(`${direction}: ${name}`, () => {
      const actual = render(readFileSync(`${dir}${name}${EXTENSIONS[kind].in}`, 'utf8'));
      const outFile = `${dir}${name}${EXTENSIONS[kind].out}`;
      if (update) writeFileSync(outFile, actual);
      assert.ok(existsSync(outFile), `missing golden output ${outFile} (run with UPDATE_GOLDEN=1)`);
      assert.deepEqual(parse(actual), parse(readFileSync(outFile, 'utf8')));
    });
  }
}
