// How the e2e reaches the one-node cluster of scripts/cluster/up.sh: every command runs through
// $CLUSTER_EXEC (inside the node's namespaces, where the API server, Service and pod IPs are),
// with the cluster's kubectl and the repo's pinned helm on PATH.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { eventually as pollUntil } from '../support/eventually.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function clusterExec(): string {
  const exec = process.env['CLUSTER_EXEC'];
  if (exec === undefined || exec === '') throw new Error('CLUSTER_EXEC is not set: run through `npm run e2e` (or `npm run cluster:up` first)');
  return exec;
}

/** Runs `CMD ARGS…` in the node's namespaces; never throws for a non-zero exit. */
export function run(args: string[], input?: string, timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(clusterExec(), args, { cwd: repoRoot, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr: stderr + (error !== null && typeof error.code !== 'number' ? `\n${error.message}` : '') });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs and fails with the command's output when it exits non-zero. */
export async function must(args: string[], input?: string, timeoutMs?: number): Promise<string> {
  const result = await run(args, input, timeoutMs);
  if (result.code !== 0) throw new Error(`\`${args.join(' ')}\` exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

export const kubectl = (...args: string[]): Promise<string> => must(['kubectl', ...args]);
export const apply = (yaml: string): Promise<string> => must(['kubectl', 'apply', '-f', '-'], yaml);

export async function json<T>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl(...args, '-o', 'json')) as T;
}

/** GET over the pod network (curl in the node's namespaces), parsed as JSON. */
export async function getJson<T>(url: string, timeoutSeconds = 60): Promise<T> {
  const body = await must(['curl', '-sS', '--fail-with-body', '--max-time', String(timeoutSeconds), url], undefined, (timeoutSeconds + 10) * 1000);
  return JSON.parse(body) as T;
}

/**
 * The project's poll-until (test/support/eventually.ts), with a default that fits a cluster:
 * each check is a real API call through kubectl, and controllers on a loaded node take their time.
 */
export function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  return pollUntil(what, check, timeoutMs);
}

export interface PodJson {
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    deletionTimestamp?: string;
  };
  spec: {
    containers: { name: string; env?: { name: string; value?: string }[] }[];
    initContainers?: { name: string; restartPolicy?: string; startupProbe?: { httpGet?: { path: string; port: number } } }[];
    nodeName?: string;
  };
  status: {
    phase?: string;
    podIP?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  containerID?: string;
  state?: { running?: { startedAt: string }; terminated?: { exitCode: number } };
}

export async function podsOf(namespace: string, selector: string): Promise<PodJson[]> {
  return (await json<{ items: PodJson[] }>('get', 'pods', '-n', namespace, '-l', selector)).items;
}

/** What to print when a test fails: pods, events and container logs of the namespaces that matter. */
export async function diagnostics(namespaces: string[]): Promise<string> {
  const parts: string[] = [];
  const show = async (args: string[]): Promise<void> => {
    const result = await run(args, undefined, 60_000);
    parts.push(`$ ${args.join(' ')}\n${result.stdout}${result.stderr}`);
  };
  await show(['kubectl', 'get', 'pods', '-A', '-o', 'wide']);
  for (const ns of namespaces) {
    await show(['kubectl', 'get', 'events', '-n', ns, '--sort-by=.lastTimestamp']);
    const pods = await run(['kubectl', 'get', 'pods', '-n', ns, '-o', 'name']);
    for (const pod of pods.stdout.split('\n').filter(Boolean)) {
      await show(['kubectl', 'logs', '-n', ns, pod, '--all-containers', '--prefix', '--tail=80']);
    }
  }
  return parts.join('\n');
}
