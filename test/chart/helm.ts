// Shared by the chart tests: render charts/llm-fallback with the repo's pinned helm (from the
// lambda-layer zip, see test/support/kube-harness.ts) and read the output as objects.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { chartDir, helm, KUBE_VERSION } from '../../scripts/gen-manifests.ts';

export { chartDir, helm, KUBE_VERSION };

export const RELEASE = 'llm-fallback';
export const NAMESPACE = 'llm-fallback-system';
export const ciDir = path.join(chartDir, 'ci');

export type Json = Record<string, unknown>;

export interface K8sObject extends Json {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** The values files under charts/llm-fallback/ci/, sorted. */
export function ciValuesFiles(): string[] {
  return readdirSync(ciDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Paths relative to the chart folder (e.g. "ci/dev-url-values.yaml"). */
  values?: string[];
  set?: string[];
  extra?: string[];
}

/** `helm template` with a fixed release, namespace and Kubernetes version. */
export function renderChart(options: RenderOptions = {}): Promise<string> {
  const args = ['template', options.release ?? RELEASE, chartDir, '--namespace', options.namespace ?? NAMESPACE, '--kube-version', KUBE_VERSION];
  for (const file of options.values ?? []) args.push('--values', path.join(chartDir, file));
  for (const assignment of options.set ?? []) args.push('--set', assignment);
  args.push(...(options.extra ?? []));
  return helm(args);
}

export function parseObjects(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    const [firstError] = doc.errors;
    if (firstError) throw firstError;
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value as K8sObject);
  }
  return out;
}

export async function renderObjects(options: RenderOptions = {}): Promise<K8sObject[]> {
  return parseObjects(await renderChart(options));
}

/** The one object of a kind (and name), or a failed assertion naming what was there. */
export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  }
  return found[0] as K8sObject;
}

export function get(node: unknown, ...keys: Array<string | number>): unknown {
  let at = node;
  for (const key of keys) at = (at as Json | unknown[] | undefined)?.[key as never];
  return at;
}

/**
 * Generated certificate material (random on every render: genCA / genSignedCert) replaced by
 * a fixed marker, so golden files compare the rest byte for byte.
 */
export function maskGenerated(text: string): string {
  return text.replace(/^(\s*(ca\.crt|ca\.key|tls\.crt|tls\.key|caBundle): )\S+$/gm, (_line, prefix: string, key: string) => `${prefix}<generated ${key}>`);
}

export function b64(text: unknown): string {
  if (typeof text !== 'string') throw new Error(`not a base64 string: ${String(text)}`);
  return Buffer.from(text, 'base64').toString('utf8');
}
