// The only module that reads process.env or argv: everything else receives typed values.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseTracingOptions, type TracingOptions } from './tracing-options.ts';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface ServeOptions {
  configDir?: string;
  kubernetes: boolean;
  /** --kubernetes from a laptop: a kubeconfig file; unset: the pod's service account (in-cluster). */
  kubeconfigPath?: string;
  /** --kubernetes: the namespace whose FallbackChains are served; unset: the service account's. */
  namespace?: string;
  host: string;
  port: number;
  /** Where the admin port listens; in a pod the kubelet probes it on the pod IP, so 0.0.0.0 there. */
  adminHost: string;
  adminPort: number;
  logLevel: LogLevel;
  /** Base URL that non-chain /v1/* requests are passed through to, if any. */
  defaultUpstream?: string;
  /** Folder of the mounted credentials Secret: one file per key. */
  credentialsDir: string;
  /**
   * --kubernetes only: let FallbackChains use apiKey.file / apiKey.env (the sidecar's files and
   * environment). Off by default: a chain author could otherwise send the pod's
   * service-account token or any env value to a baseURL of their choosing.
   */
  allowLocalCredentials: boolean;
  drainTimeoutMs: number;
  /** Largest request body, in bytes after decompression. */
  bodyLimitBytes: number;
  /**
   * Host names (lower case, no port) a request from loopback may address the proxy by, besides
   * localhost and IP literals: the machine's (pod's) own name and --allowed-hosts.
   */
  allowedHosts: string[];
  /** Memory all request bodies in flight may take together: parsed size plus the copies serving them makes (0: no budget). */
  bodyBudgetBytes: number;
  /** Both ports: a request's headers and body must arrive within this time (0: no limit). */
  requestTimeoutMs: number;
  /** Most connections the API port holds open at once; more are refused (0: no cap). */
  maxConnections: number;
  /** Most connections the admin port holds open at once (0: no cap). */
  adminMaxConnections: number;
  /** Environment snapshot for `apiKey: {env}` and `${VAR}` expansion in config files. */
  env: Readonly<Record<string, string | undefined>>;
  /** OpenTelemetry traces, from the standard OTEL_* variables (config/tracing-options.ts); absent or disabled: off. */
  tracing?: TracingOptions;
}

export class UsageError extends Error {
  readonly code = 'USAGE';
}

/** The package root: the nearest folder above this module with a package.json (src/ and dist/src/ alike). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** The repo's examples/ folder: `npm start` with no flags serves it. */
export const EXAMPLES_DIR = path.join(packageRoot(), 'examples');

const SERVE_FLAGS = {
  config: { type: 'string' },
  kubernetes: { type: 'boolean' },
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'admin-port': { type: 'string' },
  'admin-host': { type: 'string' },
  'log-level': { type: 'string' },
  'default-upstream': { type: 'string' },
  'credentials-dir': { type: 'string' },
  'allow-local-credentials': { type: 'boolean' },
  'drain-timeout-ms': { type: 'string' },
  'body-limit': { type: 'string' },
  'allowed-hosts': { type: 'string' },
  'body-budget': { type: 'string' },
  'request-timeout-ms': { type: 'string' },
  'max-connections': { type: 'string' },
  'admin-max-connections': { type: 'string' },
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
  // A mistyped or incomplete flag is a usage error (exit 2), not a crash with a stack trace.
  const values = parseCommandFlags(argv, SERVE_FLAGS);
  const get = (flag: FlagName): string | undefined => pick(values, env, flag);
  const kubernetes = parseBool(get('kubernetes'), 'kubernetes');
  const configDir = get('config') ?? (kubernetes ? undefined : EXAMPLES_DIR);
  if (kubernetes && get('config') !== undefined) throw new UsageError('use either --config DIR or --kubernetes, not both');
  return {
    help: values['help'] === true,
    configDir,
    kubernetes,
    kubeconfigPath: get('kubeconfig'),
    namespace: get('namespace'),
    host: get('host') ?? '127.0.0.1',
    adminHost: get('admin-host') ?? get('host') ?? '127.0.0.1',
    port: parsePort(get('port') ?? '4000', 'port'),
    adminPort: parsePort(get('admin-port') ?? '4001', 'admin-port'),
    logLevel: parseLogLevel(get('log-level') ?? 'info'),
    defaultUpstream: get('default-upstream'),
    credentialsDir: get('credentials-dir') ?? '/etc/llm-fallback/credentials',
    allowLocalCredentials: parseBool(get('allow-local-credentials'), 'allow-local-credentials'),
    drainTimeoutMs: parseNonNegative(get('drain-timeout-ms') ?? '25000', 'drain-timeout-ms'),
    ...bodyLimits(get('body-limit'), get('body-budget')),
    requestTimeoutMs: parseNonNegative(get('request-timeout-ms') ?? String(SERVE_DEFAULTS.requestTimeoutMs), 'request-timeout-ms'),
    maxConnections: parseNonNegative(get('max-connections') ?? String(SERVE_DEFAULTS.maxConnections), 'max-connections'),
    adminMaxConnections: parseNonNegative(get('admin-max-connections') ?? String(SERVE_DEFAULTS.adminMaxConnections), 'admin-max-connections'),
    allowedHosts: parseHostList(get('allowed-hosts') ?? '', hostname()),
    env: { ...env },
    tracing: parseTracingOptions(env),
  };
}

export interface ValidateOptions {
  files: string[];
  /** --kubernetes: the credential rules of `serve --kubernetes` (and the controller); undefined: files as `serve --config` reads them. */
  kubernetes?: { kubernetes: true; allowLocalCredentials: boolean };
}

/** `validate [--kubernetes [--allow-local-credentials]] FILE…` */
export function parseValidateOptions(argv: string[]): ValidateOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { kubernetes: { type: 'boolean' }, 'allow-local-credentials': { type: 'boolean' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const allowLocal = values['allow-local-credentials'] === true;
  if (allowLocal && values.kubernetes !== true) throw new UsageError('--allow-local-credentials only means something with --kubernetes');
  return { files: positionals, ...(values.kubernetes === true ? { kubernetes: { kubernetes: true, allowLocalCredentials: allowLocal } } : {}) };
}

/**
 * Defaults that fit together: the image's heap flags (Dockerfile NODE_OPTIONS), the injected
 * sidecar's memory limit (chart values and src/k8s/sidecar-settings.ts) and these. The body
 * budget bounds the memory that request bodies take (a JSON body in flight costs several times
 * its size in RSS at its peak: the bytes, the text, the parsed object, the bodies sent
 * upstream, garbage not yet collected);
 * test/integration/memory-limit.test.ts measures the peak RSS of a real proxy process under
 * the worst load these defaults allow and checks it stays under the memory limit.
 */
export const SERVE_DEFAULTS = {
  bodyLimitBytes: 10 * 1024 * 1024,
  /** Counted as each body's parsed size plus one copy per attempt in flight and per translation (body-budget.ts). */
  bodyBudgetBytes: 40 * 1024 * 1024,
  /** Loopback callers send a 10 MiB body in milliseconds: 30 s is generous and still ends a stalled one. */
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
  /** The kubelet's probes and a Prometheus scrape need a handful. */
  adminMaxConnections: 64,
  /** The memory limit of the injected sidecar, in MiB. */
  sidecarMemoryLimitMiB: 256,
} as const;

function bodyLimits(limitFlag: string | undefined, budgetFlag: string | undefined): { bodyLimitBytes: number; bodyBudgetBytes: number } {
  const bodyLimitBytes = parseNonNegative(limitFlag ?? String(SERVE_DEFAULTS.bodyLimitBytes), 'body-limit');
  const bodyBudgetBytes = parseNonNegative(budgetFlag ?? String(Math.max(SERVE_DEFAULTS.bodyBudgetBytes, 4 * bodyLimitBytes)), 'body-budget');
  // A body at the limit must fit parsed, sent upstream and translated: else a request the limit allows is never served.
  if (bodyBudgetBytes > 0 && bodyBudgetBytes < 3 * bodyLimitBytes) {
    throw new UsageError(`--body-budget (${bodyBudgetBytes}) must be at least three times --body-limit (${bodyLimitBytes}), or 0 for no budget`);
  }
  return { bodyLimitBytes, bodyBudgetBytes };
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

function parseHostList(value: string, ownName: string): string[] {
  const names = value
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '');
  const bad = names.find((n) => !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(n));
  if (bad !== undefined) throw new UsageError(`--allowed-hosts: "${bad}" is not a host name (list names without ports, separated by commas)`);
  return [...new Set([ownName.toLowerCase(), ...names])].filter((n) => n !== '');
}

function parsePositive(value: string, flag: string): number {
  const n = parseNonNegative(value, flag);
  if (n === 0) throw new UsageError(`--${flag}: must be at least 1`);
  return n;
}

function parseLogLevel(value: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === value);
  if (!level) throw new UsageError(`--log-level: "${value}" is not one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

// ---- `controller` and `inject` (Kubernetes) ----

type CommandFlags = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type FlagValues = Record<string, string | boolean | undefined>;

function parseCommandFlags(argv: string[], flags: CommandFlags): FlagValues {
  try {
    return parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError((error as Error).message);
    throw error;
  }
}

/** Flag value, else LLM_FALLBACK_<FLAG> from the environment (same rule as serve). */
function flagOrEnv(values: FlagValues, env: NodeJS.ProcessEnv, flag: string): string | undefined {
  const given = values[flag];
  if (given !== undefined) return String(given);
  return env[`LLM_FALLBACK_${flag.toUpperCase().replaceAll('-', '_')}`];
}

export interface ControllerOptions {
  /** Webhook (HTTPS) and health (HTTP) listen address: 0.0.0.0 so the API server and kubelet reach them. */
  host: string;
  port: number;
  healthPort: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** How often the TLS files are checked for rotation (0: never). */
  tlsReloadIntervalMs: number;
  sidecarDefaultsFile?: string;
  /** A kubeconfig file; unset: the pod's service account (in-cluster). */
  kubeconfigPath?: string;
  /** Namespace of the leader Lease; unset: the service account's namespace. */
  namespace?: string;
  leaseName: string;
  /** This replica's name in the Lease; unset: hostname plus a random suffix. */
  identity?: string;
  leaseDurationSeconds: number;
  renewIntervalMs: number;
  namespaceCacheMs: number;
  /** Longest wait for a namespace's labels before the pod is decided on its annotation alone. */
  namespaceLookupTimeoutMs: number;
  logLevel: LogLevel;
  /** Environment snapshot: KUBERNETES_SERVICE_HOST/PORT for the in-cluster config. */
  env: Readonly<Record<string, string | undefined>>;
}

const CONTROLLER_FLAGS: CommandFlags = {
  host: { type: 'string' },
  port: { type: 'string' },
  'health-port': { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  'tls-reload-interval-ms': { type: 'string' },
  'sidecar-defaults': { type: 'string' },
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  'lease-name': { type: 'string' },
  identity: { type: 'string' },
  'lease-duration-seconds': { type: 'string' },
  'renew-interval-ms': { type: 'string' },
  'namespace-cache-ms': { type: 'string' },
  'namespace-lookup-timeout-ms': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export function parseControllerOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ControllerOptions & { help: boolean } {
  const values = parseCommandFlags(argv, CONTROLLER_FLAGS);
  const get = (flag: string): string | undefined => flagOrEnv(values, env, flag);
  const help = values['help'] === true;
  const tlsCertFile = get('tls-cert-file') ?? '';
  const tlsKeyFile = get('tls-key-file') ?? '';
  if (!help && (tlsCertFile === '' || tlsKeyFile === ''))
    throw new UsageError('controller needs --tls-cert-file and --tls-key-file (the webhook serves HTTPS)');
  const leaseDurationSeconds = parseNonNegative(get('lease-duration-seconds') ?? '15', 'lease-duration-seconds');
  const renewIntervalMs = parseNonNegative(get('renew-interval-ms') ?? '2000', 'renew-interval-ms');
  if (leaseDurationSeconds < 1 || renewIntervalMs < 1) throw new UsageError('--lease-duration-seconds and --renew-interval-ms must be at least 1');
  if (renewIntervalMs * 2 >= leaseDurationSeconds * 1000) throw new UsageError('--renew-interval-ms must be well under half of --lease-duration-seconds');
  return {
    help,
    host: get('host') ?? '0.0.0.0',
    port: parsePort(get('port') ?? '9443', 'port'),
    healthPort: parsePort(get('health-port') ?? '8081', 'health-port'),
    tlsCertFile,
    tlsKeyFile,
    tlsReloadIntervalMs: parseNonNegative(get('tls-reload-interval-ms') ?? '10000', 'tls-reload-interval-ms'),
    sidecarDefaultsFile: get('sidecar-defaults'),
    kubeconfigPath: get('kubeconfig'),
    namespace: get('namespace'),
    leaseName: get('lease-name') ?? 'llm-fallback-controller',
    identity: get('identity'),
    leaseDurationSeconds,
    renewIntervalMs,
    namespaceCacheMs: parseNonNegative(get('namespace-cache-ms') ?? '30000', 'namespace-cache-ms'),
    namespaceLookupTimeoutMs: parsePositive(get('namespace-lookup-timeout-ms') ?? '2000', 'namespace-lookup-timeout-ms'),
    logLevel: parseLogLevel(get('log-level') ?? 'info'),
    env: { ...env },
  };
}

export interface InjectOptions {
  /** The manifest to inject; "-" reads standard input. */
  filename: string;
  sidecarDefaultsFile?: string;
}

const INJECT_FLAGS: CommandFlags = {
  filename: { type: 'string', short: 'f' },
  'sidecar-defaults': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export function parseInjectOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): InjectOptions & { help: boolean } {
  const values = parseCommandFlags(argv, INJECT_FLAGS);
  const help = values['help'] === true;
  const filename = typeof values['filename'] === 'string' ? values['filename'] : '';
  if (!help && filename === '') throw new UsageError('inject needs -f FILE (or -f - for standard input)');
  return { help, filename, sidecarDefaultsFile: flagOrEnv(values, env, 'sidecar-defaults') };
}
