// The only module that reads process.env or argv: everything else receives typed values.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface ServeOptions {
  configDir?: string;
  kubernetes: boolean;
  host: string;
  port: number;
  adminPort: number;
  logLevel: LogLevel;
  /** Base URL that non-chain /v1/* requests are passed through to, if any. */
  defaultUpstream?: string;
  /** Folder of the mounted credentials Secret: one file per key. */
  credentialsDir: string;
  drainTimeoutMs: number;
  bodyLimitBytes: number;
  /** Environment snapshot for `apiKey: {env}` and `${VAR}` expansion in config files. */
  env: Readonly<Record<string, string | undefined>>;
}

export class UsageError extends Error {
  readonly code = 'USAGE';
}

/** The repo's examples/ folder: `npm start` with no flags serves it. */
export const EXAMPLES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

const SERVE_FLAGS = {
  config: { type: 'string' },
  kubernetes: { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  'admin-port': { type: 'string' },
  'log-level': { type: 'string' },
  'default-upstream': { type: 'string' },
  'credentials-dir': { type: 'string' },
  'drain-timeout-ms': { type: 'string' },
  'body-limit': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type FlagName = keyof typeof SERVE_FLAGS;

/** Flag value, else LLM_FALLBACK_<FLAG> from the environment. */
function pick(values: Partial<Record<FlagName, string | boolean>>, env: NodeJS.ProcessEnv, flag: FlagName): string | undefined {
  const given = values[flag];
  if (given !== undefined) return String(given);
  return env[`LLM_FALLBACK_${flag.toUpperCase().replaceAll('-', '_')}`];
}

export function parseServeOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions & { help: boolean } {
  const { values } = parseArgs({ args: argv, options: SERVE_FLAGS, strict: true, allowPositionals: false });
  const get = (flag: FlagName): string | undefined => pick(values, env, flag);
  const kubernetes = parseBool(get('kubernetes'), 'kubernetes');
  const configDir = get('config') ?? (kubernetes ? undefined : EXAMPLES_DIR);
  if (kubernetes && get('config') !== undefined) throw new UsageError('use either --config DIR or --kubernetes, not both');
  return {
    help: values.help === true,
    configDir,
    kubernetes,
    host: get('host') ?? '127.0.0.1',
    port: parsePort(get('port') ?? '4000', 'port'),
    adminPort: parsePort(get('admin-port') ?? '4001', 'admin-port'),
    logLevel: parseLogLevel(get('log-level') ?? 'info'),
    defaultUpstream: get('default-upstream'),
    credentialsDir: get('credentials-dir') ?? '/etc/llm-fallback/credentials',
    drainTimeoutMs: parseNonNegative(get('drain-timeout-ms') ?? '25000', 'drain-timeout-ms'),
    bodyLimitBytes: parseNonNegative(get('body-limit') ?? String(10 * 1024 * 1024), 'body-limit'),
    env: { ...env },
  };
}

/** Only the environment: `validate` resolves `${VAR}` and `apiKey: {env}` like serve does. */
export function readEnvironment(): Readonly<Record<string, string | undefined>> {
  return { ...process.env };
}

function parseBool(value: string | undefined, flag: string): boolean {
  if (value === undefined || value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new UsageError(`--${flag}: expected true or false, got "${value}"`);
}

function parsePort(value: string, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--${flag}: "${value}" is not a port number`);
  return port;
}

function parseNonNegative(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag}: "${value}" is not a non-negative integer`);
  return n;
}

function parseLogLevel(value: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === value);
  if (!level) throw new UsageError(`--log-level: "${value}" is not one of ${LOG_LEVELS.join(', ')}`);
  return level;
}
