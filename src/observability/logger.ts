import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/options.ts';

export type { Logger };

// Header and field names that may carry keys, wherever they appear in a log object.
const REDACT_PATHS = [
  'apiKey', '*.apiKey', '*.*.apiKey',
  'authorization', '*.authorization', '*.*.authorization',
  'headers["x-api-key"]', '*.headers["x-api-key"]', 'headers["x-goog-api-key"]', '*.headers["x-goog-api-key"]',
];

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'llm-fallback' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
  }, destination);
}
