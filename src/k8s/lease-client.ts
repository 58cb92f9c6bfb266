// The LeaseClient of leader.ts over the coordination.k8s.io/v1 API.
import { ApiException, V1MicroTime, type CoordinationV1Api, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import type { LeaseClient, LeaseSpecLike } from './leader.ts';

export function coordinationLeaseClient(api: CoordinationV1Api, namespace: string, name: string, fieldManager: string): LeaseClient {
  const body = (spec: LeaseSpecLike, resourceVersion?: string): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: resourceVersion === undefined ? { name, namespace } : { name, namespace, resourceVersion },
    spec: toApiSpec(spec),
  });
  return {
    async read() {
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        return { spec: fromApiSpec(lease.spec ?? {}), resourceVersion: lease.metadata?.resourceVersion ?? '' };
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw error;
      }
    },
    async create(spec) {
      await api.createNamespacedLease({ namespace, body: body(spec), fieldManager });
    },
    async replace(spec, resourceVersion) {
      await api.replaceNamespacedLease({ name, namespace, body: body(spec, resourceVersion), fieldManager });
    },
  };
}

// MicroTime needs six fractional digits on the wire: V1MicroTime serialises that way.
function toApiSpec(spec: LeaseSpecLike): V1LeaseSpec {
  const out: V1LeaseSpec = {};
  if (spec.holderIdentity !== undefined) out.holderIdentity = spec.holderIdentity;
  if (spec.leaseDurationSeconds !== undefined) out.leaseDurationSeconds = spec.leaseDurationSeconds;
  if (spec.leaseTransitions !== undefined) out.leaseTransitions = spec.leaseTransitions;
  if (spec.acquireTime !== undefined) out.acquireTime = new V1MicroTime(spec.acquireTime.getTime());
  if (spec.renewTime !== undefined) out.renewTime = new V1MicroTime(spec.renewTime.getTime());
  return out;
}

// The generated client hands MicroTime fields back as strings.
function fromApiSpec(spec: V1LeaseSpec): LeaseSpecLike {
  const out: LeaseSpecLike = {};
  if (spec.holderIdentity !== undefined) out.holderIdentity = spec.holderIdentity;
  if (spec.leaseDurationSeconds !== undefined) out.leaseDurationSeconds = spec.leaseDurationSeconds;
  if (spec.leaseTransitions !== undefined) out.leaseTransitions = spec.leaseTransitions;
  const acquire = toDate(spec.acquireTime);
  const renew = toDate(spec.renewTime);
  if (acquire !== undefined) out.acquireTime = acquire;
  if (renew !== undefined) out.renewTime = renew;
  return out;
}

function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  if (typeof value === 'string' && value !== '') {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  return undefined;
}
