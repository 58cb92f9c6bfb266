// How `serve --kubernetes` reaches the API server and which namespace it serves:
// a kubeconfig file for local runs, else the pod's service account (in-cluster).
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { RememberedTokenFile, TOKEN_FILE_PROVIDER } from './service-account-token.ts';

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

export function loadKubeConfig(sources: KubeConfigSources): KubeConfig {
  const kc = new KubeConfig();
  if (sources.kubeconfigPath !== undefined) {
    try {
      kc.loadFromFile(sources.kubeconfigPath);
    } catch (error) {
      throw new KubeAccessError(`--kubeconfig ${sources.kubeconfigPath}: ${(error as Error).message}`);
    }
    if (!kc.getCurrentCluster()) throw new KubeAccessError(`--kubeconfig ${sources.kubeconfigPath}: the current context names no cluster`);
    return kc;
  }
  return inCluster(kc, sources.env, sources.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
}

// Same as KubeConfig.loadFromCluster(), but from the options' environment snapshot
// (only src/config/options.ts reads process.env) and with readable errors.
function inCluster(kc: KubeConfig, env: Readonly<Record<string, string | undefined>>, dir: string): KubeConfig {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) throw new KubeAccessError('not running in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset): pass --kubeconfig PATH');
  const tokenFile = path.join(dir, 'token');
  const caFile = path.join(dir, 'ca.crt');
  for (const file of [tokenFile, caFile]) {
    if (!existsSync(file))
      throw new KubeAccessError(`no service account mounted (${file} missing): pass --kubeconfig PATH, or let the pod mount its service account token`);
  }
  // Before loading the user that names it (client-node's rule for added authenticators).
  kc.addAuthenticator(new RememberedTokenFile());
  kc.loadFromClusterAndUser(
    { name: 'inCluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile, skipTLSVerify: false },
    // Re-read every minute (projected tokens rotate) and given to the redactor when read.
    { name: 'inClusterUser', authProvider: { name: TOKEN_FILE_PROVIDER, config: { path: tokenFile } } },
  );
  return kc;
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
