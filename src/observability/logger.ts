import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/options.ts';

export type { Logger };

// Fixed paths only: wildcard paths cost ~7% of the hop's CPU on every log line (profiled
// in docs/bench/findings.md). Keys never enter logged objects by construction; free text
// that can quote an upstream (attempt reasons) is redacted with the known keys before
// logging (request-report.ts). These paths are the last line of defence.
const REDACT_PATHS = [
  'apiKey', 'authorization', 'headers.authorization', 'headers["x-api-key"]', 'headers["x-goog-api-key"]',
];

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'llm-fallback' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
  }, destination);
}
