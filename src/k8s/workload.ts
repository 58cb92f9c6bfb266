// `llm-fallback inject` works on whole manifests: a Pod is injected as the webhook would,
// a workload has its pod template injected (the pods it creates then arrive already
// injected, and the webhook leaves them alone), a List has each item handled.
import { parseAllDocuments, stringify } from 'yaml';
import { injectPod, type InjectContext, type InjectOutcome } from './inject.ts';
import { isJsonObject, type JsonObject } from '../core/json.ts';
import type { PodLike } from './pod-types.ts';
import type { SidecarSettings } from './sidecar-settings.ts';

export interface InjectReport {
  /** Kind/name of the object, e.g. "Deployment/web". */
  ref: string;
  outcome: InjectOutcome | 'unsupported';
  reason: string;
}

/** Where each kind keeps its pod template. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
  PodTemplate: ['template'],
};

export function injectManifest(input: unknown, settings: SidecarSettings, context: InjectContext = {}): { object: unknown; reports: InjectReport[] } {
  if (!isJsonObject(input)) return { object: input, reports: [{ ref: '(not an object)', outcome: 'unsupported', reason: 'not a Kubernetes object' }] };
  const kind = typeof input['kind'] === 'string' ? input['kind'] : '';
  const ref = `${kind || '(no kind)'}/${nameOf(input)}`;
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(input['items']))) {
    const reports: InjectReport[] = [];
    const items = Array.isArray(input['items']) ? input['items'] : [];
    const injected = items.map((item) => {
      const one = injectManifest(item, settings, context);
      reports.push(...one.reports);
      return one.object;
    });
    return { object: { ...input, items: injected }, reports };
  }
  if (kind === 'Pod') {
    const result = injectPod(input, settings, context);
    return { object: result.pod, reports: [{ ref, outcome: result.outcome, reason: result.reason }] };
  }
  const path = TEMPLATE_PATHS[kind];
  if (path === undefined)
    return { object: input, reports: [{ ref, outcome: 'unsupported', reason: `a ${kind || 'document without kind'} has no pod template` }] };
  const object = structuredClone(input);
  const template = at(object, path);
  if (template === undefined) return { object: input, reports: [{ ref, outcome: 'unsupported', reason: `no ${path.join('.')}` }] };
  // A template is a pod without apiVersion/kind: inject it as one and put metadata and spec back.
  const asPod: PodLike = { metadata: template['metadata'] as PodLike['metadata'], spec: template['spec'] as PodLike['spec'] };
  const result = injectPod(asPod, settings, context);
  if (result.pod.metadata !== undefined) template['metadata'] = result.pod.metadata;
  if (result.pod.spec !== undefined) template['spec'] = result.pod.spec;
  return { object, reports: [{ ref, outcome: result.outcome, reason: result.reason }] };
}

function at(object: JsonObject, path: readonly string[]): JsonObject | undefined {
  let node: unknown = object;
  for (const key of path) {
    if (!isJsonObject(node)) return undefined;
    node = node[key];
  }
  return isJsonObject(node) ? node : undefined;
}

function nameOf(object: JsonObject): string {
  const meta = object['metadata'];
  if (!isJsonObject(meta)) return '(no name)';
  const name = meta['name'] ?? meta['generateName'];
  return typeof name === 'string' ? name : '(no name)';
}

/**
 * `llm-fallback inject`: every document of a (multi-document) YAML stream, injected with
 * force (like istioctl kube-inject: only `llmfallback.io/inject: "false"` opts out).
 */
export function injectYaml(text: string, settings: SidecarSettings): { output: string; reports: InjectReport[] } {
  const documents = parseAllDocuments(text);
  const reports: InjectReport[] = [];
  const outputs: string[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`YAML: ${document.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    const one = injectManifest(value, settings, { force: true });
    reports.push(...one.reports);
    outputs.push(stringify(one.object, { lineWidth: 0 }));
  }
  return { output: outputs.join('---\n'), reports };
}
