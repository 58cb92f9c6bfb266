// What the injected sidecar looks like before per-pod annotations: built-in defaults, or a
// defaults file (`controller|inject --sidecar-defaults FILE`, YAML or JSON) laid over them.
import { parse as parseYaml } from 'yaml';
import { UsageError, type LogLevel } from '../config/options.ts';
import { parseTracingOptions } from '../config/tracing-options.ts';
import { isJsonObject } from '../core/json.ts';
import type { Resources, ResourceList } from './pod-types.ts';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface SidecarSettings {
  image: string;
  imagePullPolicy: PullPolicy;
  resources: Resources;
  /** api: the port the app calls on 127.0.0.1; admin: /healthz /readyz /metrics (probed by the kubelet). */
  ports: { api: number; admin: number };
  logLevel: LogLevel;
  /**
   * Let FallbackChains use apiKey.file / apiKey.env in the sidecar (`serve
   * --allow-local-credentials`). Off: a chain author could send the pod's token or env
   * values to a server of their choosing. The controller's status follows the same setting.
   */
  allowLocalCredentials: boolean;
  /**
   * OpenTelemetry's standard OTEL_* variables for the sidecar (traces: docs/observability.md#traces); absent
   * or empty: tracing off. Checked here as the sidecar will read them, so a mistake stops the
   * controller at start instead of every injected pod.
   */
  otelEnv?: Record<string, string>;
}

export const DEFAULT_SIDECAR: SidecarSettings = {
  image: 'ghcr.io/llm-fallback/llm-fallback:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  // Requests match the measured idle RSS (~110-130 MB, docs/bench/findings.md); the image caps the heap.
  resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
  ports: { api: 4000, admin: 4001 },
  logLevel: 'info',
  allowLocalCredentials: false,
};

export class SidecarDefaultsError extends Error {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`${source}: invalid sidecar defaults:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

const PULL_POLICIES: readonly PullPolicy[] = ['Always', 'IfNotPresent', 'Never'];
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** A Kubernetes resource quantity as people write them for cpu and memory ("250m", "0.5", "128Mi"). */
export function isQuantity(value: string): boolean {
  return QUANTITY.test(value);
}

/** An image reference: non-empty, no whitespace. The registry decides the rest. */
export function isImageReference(value: string): boolean {
  return value.length > 0 && value.length <= 1024 && !/\s/.test(value);
}

/** Parse a defaults file's text; every field is optional and replaces the built-in value. */
export function parseSidecarDefaults(text: string, source: string): SidecarSettings {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new SidecarDefaultsError(source, [(error as Error).message]);
  }
  if (raw === null || raw === undefined) return structuredClone(DEFAULT_SIDECAR);
  if (!isJsonObject(raw)) throw new SidecarDefaultsError(source, ['must be a mapping']);
  const problems: string[] = [];
  const out = structuredClone(DEFAULT_SIDECAR);
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'image':
        if (typeof value === 'string' && isImageReference(value)) out.image = value;
        else problems.push('image: must be a non-empty image reference without spaces');
        break;
      case 'imagePullPolicy': {
        const policy = PULL_POLICIES.find((p) => p === value);
        if (policy) out.imagePullPolicy = policy;
        else problems.push(`imagePullPolicy: must be one of ${PULL_POLICIES.join(', ')}`);
        break;
      }
      case 'logLevel': {
        const level = LOG_LEVELS.find((l) => l === value);
        if (level) out.logLevel = level;
        else problems.push(`logLevel: must be one of ${LOG_LEVELS.join(', ')}`);
        break;
      }
      case 'allowLocalCredentials':
        if (typeof value === 'boolean') out.allowLocalCredentials = value;
        else problems.push('allowLocalCredentials: must be true or false');
        break;
      case 'ports':
        parsePorts(value, out, problems);
        break;
      case 'resources':
        out.resources = parseResources(value, problems);
        break;
      case 'otelEnv': {
        const env = parseOtelEnv(value, problems);
        if (Object.keys(env).length > 0) out.otelEnv = env;
        break;
      }
      default:
        problems.push(`${key}: unknown field (known: image, imagePullPolicy, resources, ports, logLevel, allowLocalCredentials, otelEnv)`);
    }
  }
  if (problems.length > 0) throw new SidecarDefaultsError(source, problems);
  return out;
}

const OTEL_NAME = /^OTEL_[A-Z0-9_]+$/;

function parseOtelEnv(value: unknown, problems: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  if (value === null || value === undefined) return env;
  if (!isJsonObject(value)) {
    problems.push('otelEnv: must be a mapping of OTEL_* variable to value');
    return env;
  }
  for (const [name, raw] of Object.entries(value)) {
    if (!OTEL_NAME.test(name)) {
      problems.push(`otelEnv.${name}: only OpenTelemetry's OTEL_* variables are set this way`);
      continue;
    }
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      problems.push(`otelEnv.${name}: must be a string, number or boolean`);
      continue;
    }
    env[name] = String(raw);
  }
  try {
    parseTracingOptions(env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    problems.push(`otelEnv: ${error.message}`);
  }
  return env;
}

function parsePorts(value: unknown, out: SidecarSettings, problems: string[]): void {
  if (!isJsonObject(value)) {
    problems.push('ports: must be a mapping {api, admin}');
    return;
  }
  for (const [key, port] of Object.entries(value)) {
    if (key !== 'api' && key !== 'admin') {
      problems.push(`ports.${key}: unknown field (known: api, admin)`);
      continue;
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push(`ports.${key}: must be a port number 1-65535`);
      continue;
    }
    out.ports[key] = port;
  }
  if (out.ports.api === out.ports.admin) problems.push('ports: api and admin must differ');
}

function parseResources(value: unknown, problems: string[]): Resources {
  const resources: Resources = {};
  if (!isJsonObject(value)) {
    problems.push('resources: must be a mapping {requests, limits}');
    return resources;
  }
  for (const [kind, list] of Object.entries(value)) {
    if (kind !== 'requests' && kind !== 'limits') {
      problems.push(`resources.${kind}: unknown field (known: requests, limits)`);
      continue;
    }
    if (!isJsonObject(list)) {
      problems.push(`resources.${kind}: must be a mapping of resource name to quantity`);
      continue;
    }
    const parsed: ResourceList = {};
    for (const [name, quantity] of Object.entries(list)) {
      const text = typeof quantity === 'number' ? String(quantity) : quantity;
      if (typeof text !== 'string' || !isQuantity(text)) {
        problems.push(`resources.${kind}.${name}: "${String(quantity)}" is not a quantity (e.g. 100m, 0.5, 128Mi)`);
        continue;
      }
      parsed[name] = text;
    }
    resources[kind] = parsed;
  }
  return resources;
}

/** The settings for a command: the defaults file if one is given, else the built-in defaults. */
export async function loadSidecarSettings(file: string | undefined): Promise<SidecarSettings> {
  if (file === undefined) return structuredClone(DEFAULT_SIDECAR);
  const { readFile } = await import('node:fs/promises');
  return parseSidecarDefaults(await readFile(file, 'utf8'), file);
}
