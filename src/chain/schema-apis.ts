// The schema's `api` enum is generated from the wire registry (npm run gen:crd writes it into
// fallbackchain.schema.json, and the CRD from that): a format registered in src/wire/ is a
// valid `api:` everywhere without editing the schema by hand.
import type { JsonObject } from '../core/json.ts';
import { UPSTREAM_APIS } from '../wire/registry.ts';

/** Where the provider's `api` lives in the schema. */
export const API_PROPERTY_PATH = ['properties', 'spec', 'properties', 'providers', 'items', 'properties', 'api'] as const;

/** A copy of `schema` whose `api` enum lists the registered upstream formats. */
export function withRegisteredApis(schema: object): JsonObject {
  const copy = structuredClone(schema) as JsonObject;
  let node: JsonObject = copy;
  for (const key of API_PROPERTY_PATH) node = node[key] as JsonObject;
  node['enum'] = [...UPSTREAM_APIS];
  return copy;
}

/** The schema file's text, as gen:crd writes it. */
export function renderSchema(schema: object): string {
  return `${JSON.stringify(withRegisteredApis(schema), null, 2)}\n`;
}
