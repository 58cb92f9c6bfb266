// The FallbackChain CustomResourceDefinition, built from the one JSON schema
// (src/chain/fallbackchain.schema.json) that the file loader and `validate` use too.
// scripts/gen-crd.ts writes it to manifests/crds/; a test fails when that file is stale.
import schema from '../chain/fallbackchain.schema.json' with { type: 'json' };

import type { JsonObject } from '../core/json.ts';
import { CHAIN_CRD_NAME, CHAIN_GROUP, CHAIN_PLURAL, CHAIN_VERSION } from './chain-resource.ts';

export { CHAIN_CRD_NAME as CRD_NAME };

/**
 * The schema as the API server wants it: identical to the file schema except that the
 * root `metadata` is plain `type: object` (the server owns ObjectMeta's schema and
 * allows nothing else there), and that a union of types (a header value: a string or
 * {valueFrom}) keeps only its x-kubernetes-preserve-unknown-fields: a structural schema
 * cannot state types inside anyOf. validateChainDocument (the controller's status, the
 * sidecar, `validate`) still checks the union.
 */
export function crdSchema(fileSchema: object = schema): JsonObject {
  const copy = withoutTypeUnions(structuredClone(fileSchema)) as JsonObject;
  const properties = copy['properties'] as JsonObject;
  properties['metadata'] = { type: 'object' };
  return copy;
}

function withoutTypeUnions(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutTypeUnions);
  if (typeof node !== 'object' || node === null) return node;
  const out: JsonObject = {};
  const untyped = (node as JsonObject)['x-kubernetes-preserve-unknown-fields'] === true && !('type' in node);
  for (const [key, value] of Object.entries(node)) {
    if (untyped && key === 'anyOf') continue;
    out[key] = withoutTypeUnions(value);
  }
  return out;
}

/** The CRD of the schema file (or of `fileSchema`: gen:crd's freshly generated one). */
export function buildCrd(fileSchema: object = schema): JsonObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CHAIN_CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'llm-fallback', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group: CHAIN_GROUP,
      scope: 'Namespaced',
      names: {
        kind: 'FallbackChain',
        listKind: 'FallbackChainList',
        plural: CHAIN_PLURAL,
        singular: 'fallbackchain',
        shortNames: ['fc'],
        categories: ['llmfallback'],
      },
      versions: [
        {
          name: CHAIN_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Whether the chain validated.' },
            { name: 'Model', type: 'string', jsonPath: '.spec.model', description: 'The model name the application asks for (empty: metadata.name).' },
            // A JSONPath column cannot count (the table printer shows only a path's first match),
            // so the controller writes the count into status.steps.
            { name: 'Steps', type: 'integer', jsonPath: '.status.steps', description: 'Number of steps in the chain.' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: crdSchema(fileSchema) },
        },
      ],
    },
  };
}
