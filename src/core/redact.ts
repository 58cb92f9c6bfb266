// Secrets (provider keys, header values, URL credentials) must never leave the process:
// not to callers, not to logs, not to /config or /metrics. Upstreams echo what they were
// sent, and not always verbatim: "Incorrect API key provided: sk-…" in a JSON string may be
// written `\u0073k-…` or with `\/`, a URL may carry it percent-encoded, a Basic
// authorization or a debug dump base64'd. A Redactor compiles every secret, in every such
// form, into one regular expression and replaces each occurrence with [REDACTED]. Pure.

export const REDACTED = '[REDACTED]';

// Short strings would blank out ordinary words; real credentials are long.
export const MIN_SECRET_LENGTH = 8;
// A base64 fragment shorter than this could occur by chance in other base64 text.
const MIN_BASE64_FRAGMENT = 8;

// Any bearer token, known or not (a caller's or an upstream's own), in text we write.
const BEARER = /(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g;
// Searches (is it there at all?) use patterns without the g flag: test() on a global pattern
// takes V8's slow path through lastIndex (~850 against ~560 ns on a 600-character log line).
const BEARER_PROBE = new RegExp(BEARER.source);

// Escapes an echo may use (JSON `\uXXXX` and `\/`, URL `%XX`, HTML `&#…;`): text without
// any is searched for the plain forms only.
const ESCAPE = /\\[u/]|%[0-9a-fA-F]{2}|&#/;
// Escapes within escapes looked through by mentions(): JSON over URL or HTML encoding, and once more.
const MAX_ESCAPE_DEPTH = 3;
const DECODE = /\\u([0-9a-fA-F]{4})|\\\/|%([0-9a-fA-F]{2})|&#(?:[xX]([0-9a-fA-F]+)|(\d+));/g;

export class Redactor {
  /** Every form as a plain literal: fast to search (V8 compiles a literal alternation well). */
  readonly #plain: RegExp | undefined;
  /** #plain without the g flag, for searches. */
  readonly #plainProbe: RegExp | undefined;
  /** Every form with any character escaped: slow with many secrets, so used only to replace once a match is known. */
  readonly #escaped: RegExp | undefined;
  readonly size: number;

  constructor(secrets: Iterable<string>) {
    const unique = [...new Set([...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH))];
    this.size = unique.length;
    const forms = [...new Set(unique.flatMap(echoForms))].sort((a, b) => b.length - a.length);
    if (forms.length > 0) {
      this.#plain = new RegExp(forms.map(escapeRegExp).join('|'), 'g');
      this.#plainProbe = new RegExp(this.#plain.source);
      this.#escaped = new RegExp(forms.map(tolerantPattern).join('|'), 'g');
    }
  }

  /**
   * The text with every secret, in any of the encodings an echo may use, and any bearer token
   * replaced by [REDACTED]: for errors, logs, headers — text about a request, not an answer.
   */
  redact(text: string): string {
    const out = this.redactKnown(text);
    return BEARER_PROBE.test(out) ? out.replace(BEARER, `$1${REDACTED}`) : out;
  }

  /**
   * Whether the text holds a known secret in any form, escapes within escapes included (a
   * JSON-escaped `%XX` or `&#…;`: `\\u002573k-…` is `%73k-…` once the caller parses the JSON).
   * Text passed on as it came (an upstream's own bytes) must not mention one; text that does
   * is parsed and written again, which undoes the outer escape, and then redacted.
   */
  mentions(text: string): boolean {
    if (!this.#plain) return false;
    if (found(this.#plainProbe, text)) return true;
    let view = text;
    for (let depth = 0; depth < MAX_ESCAPE_DEPTH && ESCAPE.test(view); depth++) {
      const next = decodeEscapes(view);
      if (next === view) break;
      if (found(this.#plainProbe, next)) return true;
      view = next;
    }
    return false;
  }

  /**
   * Answer text on its way to a caller: the text itself when no known key is mentioned in it at
   * any escape depth (one scan: the common case, and then redactKnown would change nothing);
   * otherwise `rewritten()`, the same content written again (which undoes the outer escape), with
   * the known keys taken out.
   */
  redactAnswer(text: string, rewritten: () => string): string {
    return this.mentions(text) ? this.redactKnown(rewritten()) : text;
  }

  /**
   * Only the known secrets: for answers, whose content is the model's (a code sample saying
   * `Bearer YOUR_TOKEN` is not a leak and must reach the caller as written).
   */
  redactKnown(text: string): string {
    let out = text;
    if (this.#plain && this.#escaped) {
      if (found(this.#plainProbe, out)) out = out.replace(this.#plain, replacement);
      // An escaped echo decodes to a plain form: decode (cheap) to learn whether the slow pattern is needed.
      if (ESCAPE.test(out) && found(this.#plainProbe, decodeEscapes(out))) out = out.replace(this.#escaped, replacement);
    }
    return out;
  }
}

function found(pattern: RegExp | undefined, text: string): boolean {
  return pattern !== undefined && pattern.test(text);
}

/** Every escape an echo may use, decoded at whatever position it starts (as tolerantPattern matches). */
function decodeEscapes(text: string): string {
  return text.replace(DECODE, (_all: string, u?: string, pct?: string, hex?: string, dec?: string) => {
    const code = u ?? pct ?? hex;
    if (code !== undefined) return String.fromCharCode(Number.parseInt(code, 16) & 0xffff);
    if (dec !== undefined) return String.fromCharCode(Number(dec) & 0xffff);
    return '/';
  });
}

export const NO_SECRETS = new Redactor([]);

/** One-off redaction (tests, and callers that hold a plain list). Prefer a Redactor built once. */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  return new Redactor(secrets).redact(text);
}

/**
 * A match that starts right after an unpaired backslash began inside a JSON escape
 * (`\\u0073k-…` is a backslash followed by the escaped key, `\nsk-…` a newline before it):
 * keep that first character, so the escape stays whole and the JSON stays valid.
 */
function replacement(match: string, offset: number, whole: string): string {
  let backslashes = 0;
  for (let i = offset - 1; i >= 0 && whole.charCodeAt(i) === 92; i--) backslashes++;
  return backslashes % 2 === 1 ? `${match[0] ?? ''}${REDACTED}` : REDACTED;
}

/**
 * The literal strings an echo of the secret can contain: the secret itself and the parts of
 * its base64 (standard and URL-safe alphabets) that do not depend on the bytes around it, at
 * each of the three offsets a base64 encoder can meet it (the secret may sit anywhere in
 * the encoded text, e.g. `Basic base64(user:secret)`). Escaping (JSON, URL, HTML) is handled
 * per character by tolerantPattern, so every combination is covered.
 */
export function echoForms(secret: string): string[] {
  const forms = [secret];
  const bytes = Buffer.from(secret, 'utf8');
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // Character i of the encoding covers bits [6i, 6i + 6); only those entirely inside the
    // secret's bits [8·offset, 8·(offset + length)) are the same wherever it sits.
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    const fragment = encoded.slice(first, end);
    if (fragment.length < MIN_BASE64_FRAGMENT) continue;
    forms.push(fragment, fragment.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return forms;
}

/** A pattern for the literal in which any character may also be JSON-, URL- or HTML-escaped. */
function tolerantPattern(literal: string): string {
  let out = '';
  for (const char of literal) out += charPattern(char);
  return out;
}

const ESCAPED_CACHE = new Map<string, string>();

function charPattern(char: string): string {
  const cached = ESCAPED_CACHE.get(char);
  if (cached !== undefined) return cached;
  const code = char.codePointAt(0) ?? 0;
  const alternatives = [escapeRegExp(char)];
  if (code <= 0xffff) alternatives.push(`\\\\u${hexPattern(code, 4)}`);
  if (code < 0x80) {
    alternatives.push(`%${hexPattern(code, 2)}`, `&#0*${code};`, `&#[xX]0*${hexPattern(code, 0)};`);
    // `\/` is what PHP and others write for every slash in JSON.
    if (char === '/') alternatives.push('\\\\\\/');
  }
  const pattern = alternatives.length === 1 ? (alternatives[0] ?? '') : `(?:${alternatives.join('|')})`;
  ESCAPED_CACHE.set(char, pattern);
  return pattern;
}

/** Hex digits of n (at least `width` of them; 0: as few as needed), letters in either case. */
function hexPattern(n: number, width: number): string {
  const hex = n.toString(16).padStart(width, '0');
  let out = '';
  for (const digit of hex) out += /[a-f]/.test(digit) ? `[${digit}${digit.toUpperCase()}]` : digit;
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
