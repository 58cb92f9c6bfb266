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
const REDACT_PATHS = [
  'apiKey', 'authorization',
  ...SECRET_HEADERS.map((name) => (/^[a-z]+$/.test(name) ? `headers.${name}` : `headers["${name}"]`)),
];

/** A JSON logger; with `secrets`, every line is redacted with the credentials known when it is written. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream, secrets?: KnownSecrets): Logger {
  return pino({
    level,
    base: { service: 'llm-fallback' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    hooks: { streamWrite: (line) => (secrets?.redactor ?? NO_SECRETS).redact(line) },
  }, destination);
}

/** stdout for the request log: buffered and asynchronous, so a log line costs no syscall on the request path. */
export interface LogOutput {
  stream: pino.DestinationStream;
  /** Writes what is buffered and closes stdout's stream; the process may then exit. */
  close(): Promise<void>;
}

// Lines are written once 12 KiB have gathered (the profile showed one write syscall per
// request costing ~10% of the hop; 12 KiB is ~25 request lines, below sonic-boom's 16 KiB
// largest write) or at the latest after FLUSH_MS, so a quiet sidecar's log is never more
// than that behind.
const FLUSH_MS = 500;

export function bufferedStdout(): LogOutput {
  const stream = pino.destination({ dest: 1, sync: false, minLength: 12 * 1024 });
  const timer = setInterval(() => stream.flush(), FLUSH_MS);
  timer.unref();
  return {
    stream,
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      stream.once('close', () => resolve());
      stream.end();
    }),
  };
}
