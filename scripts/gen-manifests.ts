// Plain YAML for `kubectl apply -k manifests/` (or -f) users, generated from the Helm chart:
//   - charts/llm-fallback/crds/fallbackchains.llmfallback.io.yaml: a byte-for-byte copy of
//     manifests/crds/fallbackchains.llmfallback.io.yaml (written by `npm run gen:crd`);
//   - manifests/llm-fallback.yaml: the Namespace plus `helm template` of the chart with the
//     pinned values in scripts/manifests.values.yaml (cert-manager issues the webhook cert);
//   - manifests/kustomization.yaml.
// Run with `npm run gen:manifests` after changing the chart or the CRD;
// test/chart/manifests.test.ts fails while the committed files are stale.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { helmBinary } from '../test/support/kube-harness.ts';

const execFileAsync = promisify(execFile);

export const repoRoot = fileURLToPath(new URL('../', import.meta.url));
export const chartDir = path.join(repoRoot, 'charts', 'llm-fallback');
export const CRD_FILE = 'fallbackchains.llmfallback.io.yaml';
export const manifestsCrdFile = path.join(repoRoot, 'manifests', 'crds', CRD_FILE);
export const chartCrdFile = path.join(chartDir, 'crds', CRD_FILE);
export const manifestsValuesFile = path.join(repoRoot, 'scripts', 'manifests.values.yaml');

export const MANIFESTS_RELEASE = 'llm-fallback';
export const MANIFESTS_NAMESPACE = 'llm-fallback-system';
/** Pinned so the render does not depend on the helm binary's default capabilities. */
export const KUBE_VERSION = '1.35.0';

const HEADER = '# generated from charts/llm-fallback by npm run gen:manifests (scripts/manifests.values.yaml) — do not edit\n';

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: ${MANIFESTS_NAMESPACE}
  labels:
    app.kubernetes.io/name: llm-fallback
    app.kubernetes.io/part-of: llm-fallback
`;

const KUSTOMIZATION = `${HEADER}apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - crds/${CRD_FILE}
  - llm-fallback.yaml
`;

/** Helm's cache/config/data dirs, outside the repo and the user's home. */
export function helmHomes(): Record<string, string> {
  const base = path.join(tmpdir(), 'llm-fallback-helm');
  return {
    HELM_CACHE_HOME: path.join(base, 'cache'),
    HELM_CONFIG_HOME: path.join(base, 'config'),
    HELM_DATA_HOME: path.join(base, 'data'),
  };
}

/** Runs helm with its state dirs pointed away from the user's ~/.config and ~/.cache. */
export async function helm(args: string[], env: Record<string, string> = {}): Promise<string> {
  const binary = await helmBinary();
  const { stdout } = await execFileAsync(binary, args, {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...helmHomes(), ...env },
  });
  return stdout;
}

/** Every generated file, by path relative to the repo root, with its exact text. */
export async function renderManifests(): Promise<Map<string, string>> {
  const crd = await readFile(manifestsCrdFile, 'utf8');
  const rendered = await helm([
    'template',
    MANIFESTS_RELEASE,
    chartDir,
    '--namespace',
    MANIFESTS_NAMESPACE,
    '--kube-version',
    KUBE_VERSION,
    '--skip-tests',
    '--values',
    manifestsValuesFile,
  ]);
  const body = rendered.replace(/^---\n/, '');
  return new Map([
    [path.relative(repoRoot, chartCrdFile), crd],
    ['manifests/llm-fallback.yaml', `${HEADER}${NAMESPACE}---\n${body}`],
    ['manifests/kustomization.yaml', KUSTOMIZATION],
  ]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [file, text] of await renderManifests()) {
    await mkdir(path.dirname(path.join(repoRoot, file)), { recursive: true });
    await writeFile(path.join(repoRoot, file), text);
    console.log(`wrote ${file}`);
  }
}
