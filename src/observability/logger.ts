import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/options.ts';
import { NO_SECRETS } from '../core/redact.ts';
import { SECRET_HEADERS } from '../wire/registry.ts';
import type { KnownSecrets } from './known-secrets.ts';

export type { Logger };

// Fixed paths only: wildcard paths cost ~7% of the hop's CPU on every log line (profiled
// in docs/bench/findings.md). Keys never enter logged objects by construction, and every
// line, whatever its level, passes the known secrets' redactor on its way out (streamWrite),
// which finds a key in any encoding anywhere in the line. These paths only blank fields
// named like credentials whose values are not known secrets (e.g. a caller's own); the
// header names are every upstream codec's secretHeaders (src/wire/registry.ts).
const REDACT_PATHS = ['apiKey', 'authorization', ...SECRET_HEADERS.map((name) => (/^[a-z]+$/.test(name) ? `headers.${name}` : `headers["${name}"]`))];

const SERVICE = 'llm-fallback';

/** A JSON logger; with `secrets`, every line is redacted with the credentials known when it is written. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream, secrets?: KnownSecrets): Logger {
  const redact = (line: string): string => (secrets?.redactor ?? NO_SECRETS).redact(line);
  const logger = pino(
    {
      level,
      base: { service: SERVICE },
      timestamp: () => `,"time":"${isoTime(Date.now())}"`,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: { streamWrite: redact },
    },
    destination,
  );
  PREFORMATTED.set(logger, { stream: (logger as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym] as pino.DestinationStream, redact });
  return logger;
}

// The request line is the one line written per request; pino's generic object serialiser
// (every key stringified on its own, then its path redaction) made it ~11% of a request's
// instructions (callgrind, docs/bench/findings.md). Its fields are plain data with no
// credential-named key, so it is serialised with one JSON.stringify and written to the
// logger's own destination in pino's line format, through the same known-secrets redaction.
const PREFORMATTED = new WeakMap<Logger, { stream: pino.DestinationStream; redact: (line: string) => string }>();

/**
 * Logs `fields` (a flat JSON-safe object: no key pino's path redaction would blank) with message
 * `msg`, as pino would write it; cheaper than `logger[level](fields, msg)` for loggers made by createLogger.
 */
export function logFields(logger: Logger, level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void {
  if (!logger.isLevelEnabled(level)) return;
  const direct = PREFORMATTED.get(logger);
  if (!direct) {
    logger[level](fields, msg);
    return;
  }
  const body = JSON.stringify(fields);
  const head = `{"level":${logger.levels.values[level]},"time":"${isoTime(Date.now())}","service":"${SERVICE}"`;
  const tail = `,"msg":${JSON.stringify(msg)}}\n`;
  direct.stream.write(direct.redact(body.length > 2 ? `${head},${body.slice(1, -1)}${tail}` : `${head}${tail}`));
}

// A line's time as Date#toISOString writes it. Making a Date and formatting it took ~480 ns
// a line (a third of the request line's serialisation); within one second only the
// milliseconds change, so the rest of the text is made once a second.
let secondStartMs = Number.NaN;
let secondText = '';

/** `ms` (since the epoch, not negative) as `YYYY-MM-DDTHH:mm:ss.sssZ`, the same text as `new Date(ms).toISOString()`. */
export function isoTime(ms: number): string {
  const withinSecond = ms % 1000;
  const secondStart = ms - withinSecond;
  if (secondStart !== secondStartMs) {
    secondStartMs = secondStart;
    secondText = new Date(secondStart).toISOString().slice(0, 20);
  }
  return `${secondText}${withinSecond < 10 ? '00' : withinSecond < 100 ? '0' : ''}${withinSecond}Z`;
}

/** stdout for the request log: lines gathered, then written in one synchronous write per batch. */
export interface LogOutput {
  stream: pino.DestinationStream;
  /** Writes what is gathered and closes stdout's stream; the process may then exit. */
  close(): Promise<void>;
}

// Lines are written once ~12 KiB have gathered (~25 request lines, below sonic-boom's 16 KiB
// largest write) or at the latest after FLUSH_MS, so a quiet sidecar's log is never more than
// that behind. The lines are gathered here, not in sonic-boom: its own buffer appends each
// line to one string and measures that string's byte length on every write, which copies the
// whole buffer per line (~6 KB allocated per request at 12 KiB; docs/bench/findings.md).
// The batch is written synchronously, as pino's default destination writes: an asynchronous
// write hands each batch to a libuv pool thread and back, two thread switches that on a
// sidecar's one core cost more than the write itself (12 KiB to a file: ~8 µs written at
// once, ~49 µs there and back through the pool; docs/bench/findings.md). A reader of stdout
// that stops reading (the container runtime's log pipe full) would make the write wait, as it
// does for any process that logs to stdout synchronously.
const FLUSH_MS = 500;
const BATCH_CHARS = 12 * 1024;

/** Gathers log lines and hands them to the destination as one string per batch. */
class LineBatch implements pino.DestinationStream {
  #lines: string[] = [];
  #chars = 0;
  readonly #out: pino.DestinationStream;

  constructor(out: pino.DestinationStream) {
    this.#out = out;
  }

  write(line: string): void {
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= BATCH_CHARS) this.flush();
  }

  flush(): void {
    if (this.#lines.length === 0) return;
    const batch = this.#lines.length === 1 ? (this.#lines[0] as string) : this.#lines.join('');
    this.#lines = [];
    this.#chars = 0;
    this.#out.write(batch);
  }
}

export function bufferedStdout(): LogOutput {
  const out = pino.destination({ dest: 1, sync: true });
  const stream = new LineBatch(out);
  const timer = setInterval(() => stream.flush(), FLUSH_MS);
  timer.unref();
  return {
    stream,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        stream.flush();
        out.once('close', () => resolve());
        out.end();
      }),
  };
}
