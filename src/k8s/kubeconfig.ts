// How the controller reaches the API server with @kubernetes/client-node: a kubeconfig file
// for local runs, else the pod's service account (in-cluster).
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { inClusterServer, KubeAccessError, serviceAccountFiles, SERVICE_ACCOUNT_DIR, type KubeConfigSources } from './kube-access.ts';
import { RememberedTokenFile, TOKEN_FILE_PROVIDER } from './service-account-token.ts';

// The sidecar reaches the API server through src/k8s/api-endpoint.ts instead: client-node
// would add ~44 MB to every pod's idle memory (docs/bench/findings.md).
export { KubeAccessError, resolveNamespace, SERVICE_ACCOUNT_DIR, type KubeConfigSources } from './kube-access.ts';

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
  const server = inClusterServer(env);
  const { tokenFile, caFile } = serviceAccountFiles(dir, existsSync);
  // Before loading the user that names it (client-node's rule for added authenticators).
  kc.addAuthenticator(new RememberedTokenFile());
  kc.loadFromClusterAndUser(
    { name: 'inCluster', server, caFile, skipTLSVerify: false },
    // Re-read every minute (projected tokens rotate) and given to the redactor when read.
    { name: 'inClusterUser', authProvider: { name: TOKEN_FILE_PROVIDER, config: { path: tokenFile } } },
  );
  return kc;
}
