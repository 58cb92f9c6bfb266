// The FallbackChain resource's identity in the Kubernetes API: one place for its group,
// version and plural (the CRD, the watchers, the status writer and the RBAC rules all use it).

export const CHAIN_GROUP = 'llmfallback.io';
export const CHAIN_VERSION = 'v1alpha1';
export const CHAIN_PLURAL = 'fallbackchains';
/** The CRD's metadata.name. */
export const CHAIN_CRD_NAME = `${CHAIN_PLURAL}.${CHAIN_GROUP}`;
/** The object the client's custom-object calls take: `{ ...CHAIN_RESOURCE, namespace, … }`. */
export const CHAIN_RESOURCE = Object.freeze({ group: CHAIN_GROUP, version: CHAIN_VERSION, plural: CHAIN_PLURAL });
