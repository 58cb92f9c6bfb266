// Kubernetes Events from the controller, so that `kubectl describe` and `kubectl get events`
// say why a pod that asked for the sidecar did not get it (an injection skip, a namespace
// lookup that failed). Best effort and never awaited by the webhook: an Event that cannot be
// written is logged and counted, and the pod's admission does not wait for it.
import type { CoreV1Event, V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';
import type { InjectSkipCode } from './inject.ts';
import type { PodLike } from './pod-types.ts';

/** Event reasons: the injector's skip codes, plus the webhook's own troubles. */
export const WEBHOOK_EVENT = {
  namespaceLookupFailed: 'NamespaceLookupFailed',
  injectionFailed: 'InjectionFailed',
} as const;
export type EventReason = InjectSkipCode | (typeof WEBHOOK_EVENT)[keyof typeof WEBHOOK_EVENT];

export const EVENT_COMPONENT = 'llm-fallback-controller';
const MAX_MESSAGE = 1024;
/** Events in flight beyond this are dropped (a crash-looping workload must not queue thousands). */
const MAX_IN_FLIGHT = 32;

export interface PodEvent {
  namespace: string;
  pod: PodLike;
  type: 'Normal' | 'Warning';
  reason: EventReason;
  message: string;
}

/** Where Events go: the API in the controller, a list in tests. */
export type CreateEvent = (namespace: string, body: CoreV1Event) => Promise<unknown>;

export class EventRecorder {
  readonly #create: CreateEvent;
  readonly #logger: Logger;
  readonly #instance: string;
  readonly #onResult: (reason: EventReason, result: 'created' | 'failed' | 'dropped') => void;
  #inFlight = 0;

  constructor(
    create: CreateEvent,
    logger: Logger,
    instance: string,
    onResult: (reason: EventReason, result: 'created' | 'failed' | 'dropped') => void = () => {},
  ) {
    this.#create = create;
    this.#logger = logger;
    this.#instance = instance;
    this.#onResult = onResult;
  }

  /** Starts writing the Event; the promise (for tests) never rejects. */
  record(event: PodEvent): Promise<void> {
    if (this.#inFlight >= MAX_IN_FLIGHT) {
      this.#onResult(event.reason, 'dropped');
      return Promise.resolve();
    }
    this.#inFlight++;
    return this.#create(event.namespace, eventBody(event, this.#instance, new Date()))
      .then(
        () => this.#onResult(event.reason, 'created'),
        (error: unknown) => {
          this.#onResult(event.reason, 'failed');
          this.#logger.warn({ err: error, namespace: event.namespace, reason: event.reason }, 'could not write a Kubernetes Event');
        },
      )
      .finally(() => {
        this.#inFlight--;
      });
  }
}

/**
 * The pod does not exist yet when the webhook sees it: the Event is about its controlling
 * owner (the ReplicaSet, Job…) when it has one, else about the pod by name.
 */
export function involvedObjectOf(pod: PodLike, namespace: string): V1ObjectReference {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller === true) ?? pod.metadata?.ownerReferences?.[0];
  if (owner !== undefined) return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid, namespace };
  return { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? pod.metadata?.generateName ?? '', namespace };
}

export function eventBody(event: PodEvent, instance: string, now: Date): CoreV1Event {
  const involved = involvedObjectOf(event.pod, event.namespace);
  const message = event.message.length > MAX_MESSAGE ? `${event.message.slice(0, MAX_MESSAGE - 1)}…` : event.message;
  return {
    metadata: { generateName: `${nameBase(involved.name ?? '')}.llm-fallback.`, namespace: event.namespace },
    involvedObject: involved,
    type: event.type,
    reason: event.reason,
    message,
    source: { component: EVENT_COMPONENT },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** A DNS-label-shaped start for the Event's name ("web-" gives "web"), whatever the pod's name or generateName. */
function nameBase(name: string): string {
  const base = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .slice(0, 200)
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return base === '' ? 'pod' : base;
}
