// The shape of a JSON text, read from its bytes before it is parsed: how deeply it nests and
// how much memory parsing it will take. Both decide whether a body may be parsed at all.
//
// - Depth: JSON.parse copes with any nesting, but the code after it (JSON.stringify of the
//   upstream request, the translators, redaction) recurses, and 10 000 levels overflow the
//   stack. A caller's error must be a 400, not a 5xx counted against an upstream.
// - Memory: what JSON.parse allocates depends on the shape, not on the byte count alone. A
//   base64 image costs about its length; `[{},{},…]` costs ~21 bytes of heap per byte of
//   text (a 10 MB body becomes 211 MB of objects), which would crash a 128 MB heap before
//   any limit on bytes noticed.

/** Deepest nesting of objects and arrays a request body may have. Real requests (tool schemas included) stay far below it. */
export const MAX_JSON_DEPTH = 128;

// Heap bytes JSON.parse takes per object or array and per member or element, beyond the text
// itself (V8, 64-bit, no pointer compression; measured: `[{},{},…]` 21.3 bytes per byte of text,
// `[[],[],…]` 13.3, `[0,0,…]` 4.0, a long string 1.0).
const BYTES_PER_CONTAINER = 64;
const BYTES_PER_MEMBER = 8;

export type JsonShape = { kind: 'ok'; depth: number; containers: number; members: number } | { kind: 'tooDeep'; limit: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * One pass over the bytes (strings are skipped with indexOf, so a body that is mostly one
 * long string costs next to nothing). Malformed JSON is not judged here: JSON.parse does
 * that; the counts are then merely approximate.
 */
export function jsonShape(buffer: Buffer, maxDepth = MAX_JSON_DEPTH): JsonShape {
  let depth = 0;
  let deepest = 0;
  let containers = 0;
  let members = 0;
  const end = buffer.length;
  for (let i = 0; i < end; i++) {
    const byte = buffer[i];
    if (byte === QUOTE) {
      i = closingQuote(buffer, i);
      continue;
    }
    if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth++;
      containers++;
      // An empty container has no member; a non-empty one has one more than its commas.
      const next = nextNonSpace(buffer, i + 1);
      if (next !== CLOSE_BRACE && next !== CLOSE_BRACKET) members++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > maxDepth) return { kind: 'tooDeep', limit: maxDepth };
      }
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    } else if (byte === COMMA) {
      members++;
    }
  }
  return { kind: 'ok', depth: deepest, containers, members };
}

/** What parsing a body of this shape will take on the heap, beyond its text. */
export function parsedBytes(shape: Extract<JsonShape, { kind: 'ok' }>, textBytes: number): number {
  return textBytes + shape.containers * BYTES_PER_CONTAINER + shape.members * BYTES_PER_MEMBER;
}

/** Index of the quote that closes the string opened at `open` (or the last index when it never closes). */
function closingQuote(buffer: Buffer, open: number): number {
  let at = open;
  for (;;) {
    const quote = buffer.indexOf(QUOTE, at + 1);
    if (quote === -1) return buffer.length - 1;
    // Escaped when an odd number of backslashes precede it.
    let slashes = 0;
    for (let j = quote - 1; j > open && buffer[j] === BACKSLASH; j--) slashes++;
    if (slashes % 2 === 0) return quote;
    at = quote;
  }
}

function nextNonSpace(buffer: Buffer, from: number): number | undefined {
  for (let i = from; i < buffer.length; i++) {
    const byte = buffer[i] as number;
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return byte;
  }
  return undefined;
}
