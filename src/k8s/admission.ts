// AdmissionReview v1 in, AdmissionReview v1 out. Pure: the injection decision is passed in.
// The patch is the diff of the pod the API server sent and its injected copy, so it holds
// exactly what injectPod changed and never touches other webhooks' containers.
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { InjectResult } from './inject.ts';
import { isJsonObject } from '../core/json.ts';
import type { PodLike } from './pod-types.ts';

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  namespace?: string;
  name?: string;
  operation?: string;
  object?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch document. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; error: string };

export function parseAdmissionReview(body: unknown): ParsedReview {
  if (!isJsonObject(body)) return { ok: false, error: 'body is not a JSON object' };
  if (body['apiVersion'] !== 'admission.k8s.io/v1' || body['kind'] !== 'AdmissionReview') {
    return { ok: false, error: 'expected apiVersion admission.k8s.io/v1, kind AdmissionReview' };
  }
  const request = body['request'];
  if (!isJsonObject(request) || typeof request['uid'] !== 'string' || request['uid'] === '') {
    return { ok: false, error: 'AdmissionReview has no request.uid' };
  }
  return { ok: true, request: request as unknown as AdmissionRequest };
}

/** The pod to consider: only pods being created (the pod spec is immutable after that). */
export function podToInject(request: AdmissionRequest): PodLike | undefined {
  const isPod = request.kind?.kind === 'Pod' && (request.kind.group ?? '') === '';
  if (!isPod || request.operation !== 'CREATE' || (request.subResource ?? '') !== '') return undefined;
  return isJsonObject(request.object) ? request.object : undefined;
}

export function jsonPatchFor(original: PodLike, mutated: PodLike): Operation[] {
  return jsonpatch.compare(original, mutated);
}

export interface Admitted {
  review: AdmissionReview;
  /** Undefined when the request was not a pod creation or the injector failed. */
  result?: InjectResult;
  /** The injector's own error, if it threw: the pod is admitted untouched anyway. */
  error?: Error;
}

/**
 * Answer one request. Never refuses the pod: an error of the injector admits it unchanged
 * with a warning (whether a broken webhook blocks pods is the failurePolicy's business).
 */
export function admit(request: AdmissionRequest, decide: (pod: PodLike) => InjectResult): Admitted {
  const pod = podToInject(request);
  if (pod === undefined) return { review: reviewOf({ uid: request.uid, allowed: true }) };
  let result: InjectResult;
  let patch: Operation[];
  try {
    result = decide(pod);
    patch = jsonPatchFor(pod, result.pod);
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    return { review: reviewOf({ uid: request.uid, allowed: true, warnings: [`llm-fallback: sidecar not injected: ${err.message}`] }), error: err };
  }
  const response: AdmissionResponse = { uid: request.uid, allowed: true };
  if (patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
  }
  if (result.outcome === 'skipped') response.warnings = [`llm-fallback: sidecar not injected: ${result.reason}`];
  return { review: reviewOf(response), result };
}

function reviewOf(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
