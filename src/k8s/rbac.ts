// RBAC objects, built purely. The chain reader is what an injected sidecar may do (read the
// FallbackChains of its own namespace, nothing else); the controller binds it per namespace.
import type { V1ClusterRole, V1PolicyRule, V1RoleBinding } from '@kubernetes/client-node';
import { CHAIN_GROUP, CHAIN_PLURAL } from './chain-resource.ts';

export const CHAIN_READER = 'llm-fallback-chain-reader';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'llm-fallback-controller' } as const;

export function chainReaderClusterRole(): V1ClusterRole {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: CHAIN_READER },
    rules: [{ apiGroups: [CHAIN_GROUP], resources: [CHAIN_PLURAL], verbs: ['get', 'list', 'watch'] }],
  };
}

/**
 * Every ServiceAccount of the namespace (the injected pods' accounts are not known in advance).
 * Owned by the chain-reader ClusterRole when its uid is known: the bindings live in the apps'
 * namespaces, outside any Helm release, and the garbage collector removes them with the role
 * (`helm uninstall`). A cluster-scoped owner is the one kind a namespaced object may have
 * across namespaces.
 */
export function chainReaderRoleBinding(namespace: string, ownerUid?: string): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {
      name: CHAIN_READER,
      namespace,
      labels: { ...MANAGED_BY },
      ...(ownerUid ? { ownerReferences: [{ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: CHAIN_READER, uid: ownerUid }] } : {}),
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CHAIN_READER },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `system:serviceaccounts:${namespace}` }],
  };
}

/**
 * What to do with an existing RoleBinding: nothing, replace it (subjects differ), or delete and
 * create it (roleRef is immutable).
 */
export function roleBindingAction(existing: V1RoleBinding | undefined, desired: V1RoleBinding): 'create' | 'none' | 'update' | 'recreate' {
  if (existing === undefined) return 'create';
  const ref = existing.roleRef;
  if (ref.apiGroup !== desired.roleRef.apiGroup || ref.kind !== desired.roleRef.kind || ref.name !== desired.roleRef.name) return 'recreate';
  const key = (s: { kind: string; name: string; namespace?: string }): string => `${s.kind}/${s.namespace ?? ''}/${s.name}`;
  const have = (existing.subjects ?? []).map(key).sort().join(',');
  const want = (desired.subjects ?? []).map(key).sort().join(',');
  const owners = (b: V1RoleBinding): string =>
    (b.metadata?.ownerReferences ?? [])
      .map((o) => `${o.kind}/${o.name}/${o.uid}`)
      .sort()
      .join(',');
  // The owner is added to bindings made before it was known (or before the role was re-created).
  const ownerWanted = desired.metadata?.ownerReferences !== undefined && owners(existing) !== owners(desired);
  return have === want && !ownerWanted ? 'none' : 'update';
}

/** What the controller itself needs (the chart renders the same rules). */
export function controllerRules(): V1PolicyRule[] {
  return [
    { apiGroups: [CHAIN_GROUP], resources: [CHAIN_PLURAL], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [CHAIN_GROUP], resources: [`${CHAIN_PLURAL}/status`], verbs: ['get', 'patch', 'update'] },
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    // The chain-reader RoleBinding: read, replaced and re-created by name only. `create` cannot
    // be narrowed by name (the object does not exist yet), but what a created binding may
    // grant is bounded by the RBAC escalation check: roles whose permissions the controller
    // holds, and the chain reader through the `bind` rule below.
    { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create'] },
    { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['get', 'update', 'delete'], resourceNames: [CHAIN_READER] },
    // Events for pods that asked for the sidecar and did not get it.
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    // Binding a ClusterRole needs `bind` on it (or holding all its permissions).
    // `get` for its uid: the RoleBindings name it as their owner.
    { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind', 'get'], resourceNames: [CHAIN_READER] },
  ];
}

export function controllerClusterRole(name = 'llm-fallback-controller'): V1ClusterRole {
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: controllerRules() };
}
