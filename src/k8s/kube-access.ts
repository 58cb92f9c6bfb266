// What both the controller and the sidecar need to reach the API server, without loading
// @kubernetes/client-node: the error for an API server that cannot be addressed, where a pod's
// service account is mounted, and the namespace a sidecar serves.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Where Kubernetes mounts a pod's service account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class KubeAccessError extends Error {
  readonly code = 'KUBE_ACCESS';
}

export interface KubeConfigSources {
  /** --kubeconfig PATH; unset: in-cluster. */
  kubeconfigPath?: string;
  /** KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, which the kubelet sets in every pod. */
  env: Readonly<Record<string, string | undefined>>;
  serviceAccountDir?: string;
}

/** --namespace (or LLM_FALLBACK_NAMESPACE, set by the injector from the downward API), else the service account's. */
export function resolveNamespace(given: string | undefined, serviceAccountDir = SERVICE_ACCOUNT_DIR): string {
  const fromFile = (): string | undefined => {
    try {
      return readFileSync(path.join(serviceAccountDir, 'namespace'), 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const namespace = given?.trim() || fromFile();
  if (!namespace) throw new KubeAccessError(`no namespace: pass --namespace NS (or LLM_FALLBACK_NAMESPACE); ${serviceAccountDir}/namespace is not readable`);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63)
    throw new KubeAccessError(`namespace "${namespace}" is not a valid namespace name`);
  return namespace;
}

/** `https://HOST:PORT` of the API service a pod's environment names, or a KubeAccessError saying what is missing. */
export function inClusterServer(env: Readonly<Record<string, string | undefined>>): string {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) throw new KubeAccessError('not running in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset): pass --kubeconfig PATH');
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The mounted service account's token and CA files; a KubeAccessError when the pod mounts none. */
export function serviceAccountFiles(dir: string, exists: (file: string) => boolean): { tokenFile: string; caFile: string } {
  const tokenFile = path.join(dir, 'token');
  const caFile = path.join(dir, 'ca.crt');
  for (const file of [tokenFile, caFile]) {
    if (!exists(file))
      throw new KubeAccessError(`no service account mounted (${file} missing): pass --kubeconfig PATH, or let the pod mount its service account token`);
  }
  return { tokenFile, caFile };
}
