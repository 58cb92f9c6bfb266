// Starts the real proxy in-process as `serve --kubernetes` (chains from the API server
// through a kubeconfig), on 127.0.0.1 random ports, with its pino log lines captured
// and a credentials folder laid out the way the kubelet mounts a Secret.
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseServeOptions } from '../../src/config/options.ts';
import { KnownSecrets } from '../../src/observability/known-secrets.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startServe, type RunningServer } from '../../src/serve.ts';
import { captureLogs, type LogLine } from './log-capture.ts';

export interface KubeProxyHarness {
  server: RunningServer;
  apiUrl: string;
  adminUrl: string;
  baseURL: string;
  credentialsDir: string;
  logs: LogLine[];
  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine>;
  /**
   * Replaces the whole credentials Secret the way the kubelet does: the files go into a
   * new hidden folder, then the `..data` symlink is swapped to it in one rename.
   */
  writeCredentials(files: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export interface KubeProxyOptions {
  kubeconfigPath: string;
  namespace: string;
  /** Secret keys present when the proxy starts. */
  credentials?: Record<string, string>;
  extraArgs?: string[];
  /** The sidecar's environment (what apiKey.env would read); default: empty. */
  env?: Record<string, string>;
}

export async function startKubeProxy(options: KubeProxyOptions): Promise<KubeProxyHarness> {
  const root = await mkdtemp(path.join(tmpdir(), 'llmfb-kube-proxy-'));
  const credentialsDir = path.join(root, 'credentials');
  await mkdir(credentialsDir);
  let generation = 0;
  const writeCredentials = async (files: Record<string, string>): Promise<void> => {
    generation++;
    const dataDir = `..${String(Date.now())}_${String(generation)}`;
    await mkdir(path.join(credentialsDir, dataDir));
    for (const [key, value] of Object.entries(files)) await writeFile(path.join(credentialsDir, dataDir, key), value);
    await symlink(dataDir, path.join(credentialsDir, '..data_tmp'));
    await rename(path.join(credentialsDir, '..data_tmp'), path.join(credentialsDir, '..data'));
    for (const key of Object.keys(files)) {
      // The per-key links point through ..data, so they survive every swap.
      await symlink(path.join('..data', key), path.join(credentialsDir, key)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    }
  };
  await writeCredentials(options.credentials ?? {});

  const { sink, logs, waitForLog } = captureLogs();
  const serveOptions = parseServeOptions(
    [
      '--kubernetes',
      '--kubeconfig',
      options.kubeconfigPath,
      '--namespace',
      options.namespace,
      '--port',
      '0',
      '--admin-port',
      '0',
      '--log-level',
      'debug',
      '--credentials-dir',
      credentialsDir,
      ...(options.extraArgs ?? []),
    ],
    options.env ?? {},
  );
  const secrets = new KnownSecrets();
  const server = await startServe(serveOptions, { logger: createLogger('debug', sink, secrets), secrets });
  return {
    server,
    apiUrl: server.apiUrl,
    adminUrl: server.adminUrl,
    baseURL: `${server.apiUrl}/v1`,
    credentialsDir,
    logs,
    waitForLog,
    writeCredentials,
    close: async () => {
      await server.drain();
      await rm(root, { recursive: true, force: true });
    },
  };
}
