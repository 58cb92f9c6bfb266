// The status a FallbackChain should carry, computed from the object and its validation.
// Pure: the adapter writes it only when it differs from what the object already has, so a
// status write (which comes back as a watch event) never causes another write.
import type { ValidationResult } from '../chain/validate.ts';
import { isJsonObject, type JsonObject } from '../core/json.ts';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface ChainStatus {
  observedGeneration?: number;
  conditions: Condition[];
  /** Number of spec.steps: the STEPS printer column (a JSONPath column cannot count). */
  steps?: number;
}

/** Longest condition message written; the problems list is cut with a count of what was left out. */
export const MAX_MESSAGE_CHARS = 4096;

/** The object without its status: what validation should look at. */
export function chainDocumentOf(object: JsonObject): JsonObject {
  const { status: _status, ...rest } = object;
  return rest;
}

/** Ready=False reasons: the document does not validate, or names credentials sidecars refuse. */
export const NOT_READY_REASON = { invalid: 'Invalid', credentialsRefused: 'CredentialsRefused' } as const;
export type NotReadyReason = (typeof NOT_READY_REASON)[keyof typeof NOT_READY_REASON];

export function desiredStatus(
  object: JsonObject,
  validation: ValidationResult,
  now: Date,
  notReadyReason: NotReadyReason = NOT_READY_REASON.invalid,
): ChainStatus {
  const current = currentStatus(object);
  const ready: Condition = validation.ok
    ? { type: 'Ready', status: 'True', reason: 'Valid', message: '' }
    : { type: 'Ready', status: 'False', reason: notReadyReason, message: problemsMessage(validation.problems) };
  const previous = current.conditions.find((c) => c.type === 'Ready');
  // Kubernetes convention: the transition time moves only when the status value changes.
  ready.lastTransitionTime =
    previous !== undefined && previous.status === ready.status && previous.lastTransitionTime !== undefined
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const others = current.conditions.filter((c) => c.type !== 'Ready');
  const status: ChainStatus = { conditions: [ready, ...others] };
  const generation = generationOf(object);
  if (generation !== undefined) status.observedGeneration = generation;
  const steps = stepCountOf(object);
  if (steps !== undefined) status.steps = steps;
  return status;
}

/** The merge patch for /status, or undefined when the object already carries the desired status. */
export function statusPatch(object: JsonObject, desired: ChainStatus): { status: ChainStatus } | undefined {
  return sameStatus(currentStatus(object), desired) ? undefined : { status: desired };
}

export function problemsMessage(problems: ReadonlyArray<{ path: string; message: string }>): string {
  const budget = MAX_MESSAGE_CHARS - 40;
  const kept: string[] = [];
  let length = 0;
  for (const problem of problems) {
    const part = problem.path ? `${problem.path}: ${problem.message}` : problem.message;
    if (length + part.length + 2 > budget) {
      if (kept.length === 0) kept.push(`${part.slice(0, budget - 1)}…`);
      const left = problems.length - kept.length;
      return left > 0 ? `${kept.join('; ')}; …and ${left} more problem(s)` : kept.join('; ');
    }
    kept.push(part);
    length += part.length + 2;
  }
  return kept.join('; ');
}

function currentStatus(object: JsonObject): ChainStatus {
  const status = object['status'];
  if (!isJsonObject(status)) return { conditions: [] };
  const conditions = Array.isArray(status['conditions']) ? status['conditions'].filter(isCondition) : [];
  const generation = status['observedGeneration'];
  const current: ChainStatus = typeof generation === 'number' ? { observedGeneration: generation, conditions } : { conditions };
  if (typeof status['steps'] === 'number') current.steps = status['steps'];
  return current;
}

function stepCountOf(object: JsonObject): number | undefined {
  const spec = object['spec'];
  const steps = isJsonObject(spec) ? spec['steps'] : undefined;
  return Array.isArray(steps) ? steps.length : undefined;
}

function isCondition(value: unknown): value is Condition {
  return isJsonObject(value) && typeof value['type'] === 'string' && typeof value['status'] === 'string';
}

function generationOf(object: JsonObject): number | undefined {
  const metadata = object['metadata'];
  const generation = isJsonObject(metadata) ? metadata['generation'] : undefined;
  return typeof generation === 'number' ? generation : undefined;
}

function sameStatus(a: ChainStatus, b: ChainStatus): boolean {
  if (a.observedGeneration !== b.observedGeneration || a.steps !== b.steps || a.conditions.length !== b.conditions.length) return false;
  return a.conditions.every((c, i) => {
    const d = b.conditions[i];
    return (
      d !== undefined &&
      c.type === d.type &&
      c.status === d.status &&
      (c.reason ?? '') === (d.reason ?? '') &&
      (c.message ?? '') === (d.message ?? '') &&
      c.lastTransitionTime === d.lastTransitionTime
    );
  });
}
