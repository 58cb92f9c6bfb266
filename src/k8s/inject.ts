// The injection itself: a pure function from a Pod (or a pod template seen as a Pod) to the
// Pod with the llm-fallback native sidecar. The webhook diffs input and output into a JSON
// Patch; `llm-fallback inject` prints the output. Same code, same result.
import type { Container, EnvVar, ObjectMeta, PodLike, PodSpec, Volume, VolumeMount } from './pod-types.ts';
import { isImageReference, isQuantity, type SidecarSettings } from './sidecar-settings.ts';

export const ANNOTATION = {
  /** "true": inject; "false": never inject, even in a labelled namespace. */
  inject: 'llmfallback.io/inject',
  /** What the injector did: "injected" (the idempotency marker) or "skipped: <reason>". */
  status: 'llmfallback.io/status',
  credentialsSecret: 'llmfallback.io/credentials-secret',
  image: 'llmfallback.io/sidecar-image',
  cpu: 'llmfallback.io/sidecar-cpu',
  memory: 'llmfallback.io/sidecar-memory',
} as const;

/** Namespace label that turns injection on for every pod of the namespace. */
export const NAMESPACE_LABEL = 'llmfallback.io/inject';
export const NAMESPACE_LABEL_VALUE = 'enabled';
/** Pod label set on injection, so the controller can find namespaces with injected pods. */
export const INJECTED_LABEL = 'llmfallback.io/injected';
export const STATUS_INJECTED = 'injected';

export const SIDECAR_NAME = 'llm-fallback';
export const CREDENTIALS_VOLUME = 'llm-fallback-credentials';
export const CREDENTIALS_PATH = '/etc/llm-fallback/credentials';
export const TOKEN_VOLUME = 'llm-fallback-token';
export const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InjectContext {
  /** Labels of the pod's namespace, when known (the webhook looks them up). */
  namespaceLabels?: Readonly<Record<string, string>>;
  /** Inject unless the pod says "false" (`llm-fallback inject`, like istioctl kube-inject). */
  force?: boolean;
}

export type InjectOutcome = 'injected' | 'already-injected' | 'skipped' | 'not-requested';

/** Why an injection that was asked for did not happen: Event reasons and the skips metric's label. */
export const INJECT_SKIP = {
  noSpec: 'NoPodSpec',
  sidecarNameTaken: 'SidecarNameTaken',
  hostNetwork: 'HostNetwork',
  windows: 'WindowsPod',
  noContainers: 'NoContainers',
  portTaken: 'PortTaken',
  volumeNameTaken: 'VolumeNameTaken',
  invalidAnnotation: 'InvalidAnnotation',
} as const;
export type InjectSkipCode = (typeof INJECT_SKIP)[keyof typeof INJECT_SKIP];

interface SkipWhy {
  code: InjectSkipCode;
  reason: string;
}

export interface InjectResult {
  /** A deep copy: the input is never modified. Equal to the input unless something was written. */
  pod: PodLike;
  injected: boolean;
  outcome: InjectOutcome;
  /** Why: for logs, the `llmfallback.io/status` annotation and `inject`'s stderr. */
  reason: string;
  /** For outcome "skipped": the constant behind the reason. */
  skipCode?: InjectSkipCode;
}

/** The pod decides when it says "true" or "false"; otherwise the namespace label does. */
export function podDecidesAlone(pod: PodLike): boolean {
  const value = pod.metadata?.annotations?.[ANNOTATION.inject];
  return value === 'true' || value === 'false';
}

export function injectPod(input: PodLike, settings: SidecarSettings, context: InjectContext = {}): InjectResult {
  const pod = structuredClone(input);
  const requested = injectionRequested(pod, context);
  if (!requested.yes) return { pod, injected: false, outcome: 'not-requested', reason: requested.reason };

  const spec = pod.spec;
  if (hasSidecar(spec) && pod.metadata?.annotations?.[ANNOTATION.status] === STATUS_INJECTED) {
    return { pod, injected: false, outcome: 'already-injected', reason: 'already injected' };
  }
  if (spec === undefined) return skip(pod, { code: INJECT_SKIP.noSpec, reason: 'pod has no spec' });
  const resolved = whyNotInject(spec, settings) ?? resolveSettings(settings, pod.metadata?.annotations ?? {});
  if ('code' in resolved) return skip(pod, resolved);

  const secretName = pod.metadata?.annotations?.[ANNOTATION.credentialsSecret];
  const needsToken = spec.automountServiceAccountToken === false;
  const mounts: VolumeMount[] = [];
  const volumes: Volume[] = [];
  if (secretName !== undefined) {
    volumes.push({ name: CREDENTIALS_VOLUME, secret: { secretName } });
    mounts.push({ name: CREDENTIALS_VOLUME, mountPath: CREDENTIALS_PATH, readOnly: true });
  }
  if (needsToken) {
    // The app opted out of the API token; the sidecar still needs one to read FallbackChains,
    // so it gets its own projected token, mounted into the sidecar only.
    volumes.push(tokenVolume());
    mounts.push({ name: TOKEN_VOLUME, mountPath: TOKEN_PATH, readOnly: true });
  }
  if (volumes.length > 0) spec.volumes = [...(spec.volumes ?? []), ...volumes];
  spec.initContainers = [...(spec.initContainers ?? []), sidecarContainer(resolved, mounts)];
  const baseEnv = appEnv(resolved);
  for (const container of spec.containers ?? []) addMissingEnv(container, baseEnv);

  annotations(pod)[ANNOTATION.status] = STATUS_INJECTED;
  labels(pod)[INJECTED_LABEL] = 'true';
  return { pod, injected: true, outcome: 'injected', reason: requested.reason };
}

function skip(pod: PodLike, why: SkipWhy): InjectResult {
  annotations(pod)[ANNOTATION.status] = `skipped: ${why.reason}`;
  return { pod, injected: false, outcome: 'skipped', reason: why.reason, skipCode: why.code };
}

function injectionRequested(pod: PodLike, context: InjectContext): { yes: boolean; reason: string } {
  const value = pod.metadata?.annotations?.[ANNOTATION.inject];
  if (value === 'false') return { yes: false, reason: `pod annotation ${ANNOTATION.inject} is "false"` };
  if (value === 'true') return { yes: true, reason: `pod annotation ${ANNOTATION.inject} is "true"` };
  if (context.namespaceLabels?.[NAMESPACE_LABEL] === NAMESPACE_LABEL_VALUE) {
    return { yes: true, reason: `namespace label ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}` };
  }
  if (context.force === true) return { yes: true, reason: 'injection forced' };
  return { yes: false, reason: `neither pod annotation ${ANNOTATION.inject}="true" nor namespace label ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}` };
}

function hasSidecar(spec: PodSpec | undefined): boolean {
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].some((c) => c.name === SIDECAR_NAME);
}

/** Settings with the pod's image/cpu/memory annotations applied, or the reason they are unusable. */
function resolveSettings(settings: SidecarSettings, podAnnotations: Record<string, string>): SidecarSettings | SkipWhy {
  const invalid = (reason: string): SkipWhy => ({ code: INJECT_SKIP.invalidAnnotation, reason });
  const out = structuredClone(settings);
  const image = podAnnotations[ANNOTATION.image];
  if (image !== undefined) {
    if (!isImageReference(image)) return invalid(`annotation ${ANNOTATION.image}: "${image}" is not an image reference`);
    out.image = image;
  }
  for (const [annotation, resource] of [
    [ANNOTATION.cpu, 'cpu'],
    [ANNOTATION.memory, 'memory'],
  ] as const) {
    const quantity = podAnnotations[annotation];
    if (quantity === undefined) continue;
    if (!isQuantity(quantity)) return invalid(`annotation ${annotation}: "${quantity}" is not a quantity (e.g. 100m, 128Mi)`);
    // The annotation sets the request, and the limit too when the defaults have one for it.
    out.resources.requests = { ...out.resources.requests, [resource]: quantity };
    if (out.resources.limits?.[resource] !== undefined) out.resources.limits = { ...out.resources.limits, [resource]: quantity };
  }
  const secretName = podAnnotations[ANNOTATION.credentialsSecret];
  if (secretName !== undefined && !isDnsSubdomain(secretName)) {
    return invalid(`annotation ${ANNOTATION.credentialsSecret}: "${secretName}" is not a valid Secret name`);
  }
  return out;
}

/** Why this pod cannot take the sidecar at all, whatever its annotations say. */
function whyNotInject(spec: PodSpec, settings: SidecarSettings): SkipWhy | undefined {
  if (hasSidecar(spec)) return { code: INJECT_SKIP.sidecarNameTaken, reason: `pod already has a container named ${SIDECAR_NAME}` };
  if (spec.hostNetwork === true) {
    return {
      code: INJECT_SKIP.hostNetwork,
      reason: `hostNetwork pods share the node's network, where 127.0.0.1:${settings.ports.api} would clash between pods`,
    };
  }
  if (spec.os?.name === 'windows') return { code: INJECT_SKIP.windows, reason: 'Windows pods are not supported' };
  if ((spec.containers ?? []).length === 0) return { code: INJECT_SKIP.noContainers, reason: 'pod has no containers' };
  for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const port of container.ports ?? []) {
      if (port.containerPort === settings.ports.api || port.containerPort === settings.ports.admin) {
        return { code: INJECT_SKIP.portTaken, reason: `port ${port.containerPort} is already declared by container ${container.name}` };
      }
    }
  }
  for (const volume of spec.volumes ?? []) {
    if (volume.name === CREDENTIALS_VOLUME || volume.name === TOKEN_VOLUME)
      return { code: INJECT_SKIP.volumeNameTaken, reason: `pod already has a volume named ${volume.name}` };
  }
  return undefined;
}

function sidecarContainer(settings: SidecarSettings, mounts: VolumeMount[]): Container {
  const { api, admin } = settings.ports;
  const probe = (path: string, periodSeconds: number, failureThreshold: number): Record<string, unknown> => ({
    httpGet: { path, port: admin },
    periodSeconds,
    failureThreshold,
  });
  const container: Container = {
    name: SIDECAR_NAME,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy,
    // A native sidecar: started before the app containers, kept running, stopped after them.
    restartPolicy: 'Always',
    args: ['serve', '--kubernetes'],
    env: [
      { name: 'LLM_FALLBACK_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'LLM_FALLBACK_PORT', value: String(api) },
      { name: 'LLM_FALLBACK_ADMIN_PORT', value: String(admin) },
      // The API stays on 127.0.0.1; the admin port must answer the kubelet's probes on the pod IP.
      { name: 'LLM_FALLBACK_ADMIN_HOST', value: '0.0.0.0' },
      { name: 'LLM_FALLBACK_LOG_LEVEL', value: settings.logLevel },
    ],
    ports: [
      { name: 'llm-api', containerPort: api, protocol: 'TCP' },
      { name: 'llm-admin', containerPort: admin, protocol: 'TCP' },
    ],
    // The app starts only once the proxy has its chains (startup probe on /readyz).
    startupProbe: probe('/readyz', 1, 120),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    resources: structuredClone(settings.resources),
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  // Only when the operator chose it (sidecar defaults): chains may then read the sidecar's files and env.
  if (settings.allowLocalCredentials) container.env?.push({ name: 'LLM_FALLBACK_ALLOW_LOCAL_CREDENTIALS', value: 'true' });
  container.env?.push(...otelEnv(settings.otelEnv));
  if (mounts.length > 0) container.volumeMounts = mounts;
  return container;
}

/**
 * The sidecar defaults' OTEL_* variables, and the pod and namespace as resource attributes so
 * a trace names the pod that sent it (the operator's own OTEL_RESOURCE_ATTRIBUTES come after,
 * and win on a shared key). $(VAR) is expanded by the kubelet from variables defined earlier.
 */
function otelEnv(env: Record<string, string> | undefined): EnvVar[] {
  if (!env || Object.keys(env).length === 0) return [];
  const own = env['OTEL_RESOURCE_ATTRIBUTES'];
  const resource = `k8s.namespace.name=$(LLM_FALLBACK_NAMESPACE),k8s.pod.name=$(LLM_FALLBACK_POD_NAME)${own ? `,${own}` : ''}`;
  return [
    { name: 'LLM_FALLBACK_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ...Object.entries(env)
      .filter(([name]) => name !== 'OTEL_RESOURCE_ATTRIBUTES')
      .map(([name, value]) => ({ name, value })),
    { name: 'OTEL_RESOURCE_ATTRIBUTES', value: resource },
  ];
}

function appEnv(settings: SidecarSettings): EnvVar[] {
  const base = `http://127.0.0.1:${settings.ports.api}`;
  return [
    { name: 'OPENAI_BASE_URL', value: `${base}/v1` },
    { name: 'ANTHROPIC_BASE_URL', value: base },
  ];
}

/** Adds each variable the container does not already set itself (its own value wins). */
function addMissingEnv(container: Container, vars: EnvVar[]): void {
  const present = new Set((container.env ?? []).map((e) => e.name));
  const missing = vars.filter((v) => !present.has(v.name));
  if (missing.length > 0) container.env = [...(container.env ?? []), ...structuredClone(missing)];
}

function tokenVolume(): Volume {
  return {
    name: TOKEN_VOLUME,
    projected: {
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

function metadata(pod: PodLike): ObjectMeta {
  pod.metadata ??= {};
  return pod.metadata;
}

function annotations(pod: PodLike): Record<string, string> {
  const meta = metadata(pod);
  meta.annotations ??= {};
  return meta.annotations;
}

function labels(pod: PodLike): Record<string, string> {
  const meta = metadata(pod);
  meta.labels ??= {};
  return meta.labels;
}

function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name);
}
