// Starts the real proxy in-process on 127.0.0.1 (random ports) with chains written to
// a temporary config folder, and captures its pino log lines for assertions.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseServeOptions } from '../../src/config/options.ts';
import { KnownSecrets } from '../../src/observability/known-secrets.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startServe, type RunningServer } from '../../src/serve.ts';
import { captureLogs, type LogLine } from './log-capture.ts';

export type { LogLine } from './log-capture.ts';

export interface ProxyHarness {
  server: RunningServer;
  apiUrl: string;
  adminUrl: string;
  /** Base URL for SDK clients: `${apiUrl}/v1`. */
  baseURL: string;
  configDir: string;
  logs: LogLine[];
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine>;
  /** The per-request log line for a request id. */
  requestLog(requestId: string): Promise<LogLine>;
  /** Replaces the config file's contents (the watcher reloads it). */
  writeConfig(yaml: string, file?: string): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** YAML of one or more FallbackChain documents. */
  config: string;
  env?: Record<string, string>;
  extraArgs?: string[];
  random?: () => number;
}

export async function startProxy(options: HarnessOptions): Promise<ProxyHarness> {
  const configDir = await mkdtemp(path.join(tmpdir(), 'llmfb-config-'));
  await writeFile(path.join(configDir, 'chains.yaml'), options.config);
  const { sink, logs, waitForLog } = captureLogs();
  const serveOptions = parseServeOptions(
    [
      '--config',
      configDir,
      '--port',
      '0',
      '--admin-port',
      '0',
      '--log-level',
      'debug',
      '--credentials-dir',
      path.join(configDir, 'no-credentials'),
      ...(options.extraArgs ?? []),
    ],
    { ...(options.env ?? {}) },
  );
  const secrets = new KnownSecrets();
  const server = await startServe(serveOptions, { logger: createLogger('debug', sink, secrets), secrets, random: options.random });
  return {
    server,
    apiUrl: server.apiUrl,
    adminUrl: server.adminUrl,
    baseURL: `${server.apiUrl}/v1`,
    configDir,
    logs,
    waitForLog,
    requestLog: (requestId) => waitForLog((l) => l.msg === 'request' && l['requestId'] === requestId),
    writeConfig: (yaml, file = 'chains.yaml') => writeFile(path.join(configDir, file), yaml),
    close: async () => {
      await server.drain();
      await rm(configDir, { recursive: true, force: true });
    },
  };
}

/** A FallbackChain document whose steps all use one provider (the fault upstream) with the given step models. */
export function chainYaml(o: {
  name: string;
  baseURL: string;
  steps: Array<{
    model: string;
    retries?: number;
    timeouts?: { firstByteMs?: number; idleMs?: number; totalMs?: number };
    price?: { inputPerMTok: number; outputPerMTok: number };
  }>;
  policy?: Record<string, unknown>;
  circuitBreaker?: { failureThreshold?: number; windowSeconds?: number; cooldownSeconds?: number };
  apiKey?: string;
}): string {
  const doc = {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: o.name },
    spec: {
      providers: [{ name: 'mock', api: 'openai', baseURL: o.baseURL, ...(o.apiKey ? { apiKey: { env: o.apiKey } } : {}) }],
      steps: o.steps.map((s) => ({ provider: 'mock', retries: 0, ...s })),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000, ...o.policy },
      ...(o.circuitBreaker ? { circuitBreaker: o.circuitBreaker } : {}),
    },
  };
  return JSON.stringify(doc); // JSON is YAML
}
