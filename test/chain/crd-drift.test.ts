// The CRD manifest is generated from the one JSON schema (npm run gen:crd): this fails when
// the committed manifests/crds/fallbackchains.llmfallback.io.yaml is stale, checks what
// buildCrd() must contain, and that every field of the schema is described.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import schema from '../../src/chain/fallbackchain.schema.json' with { type: 'json' };
import { buildCrd } from '../../src/k8s/crd.ts';
import { crdManifestFile, renderCrdManifest } from '../../scripts/gen-crd.ts';

type Json = Record<string, unknown>;

function get(node: unknown, ...keys: Array<string | number>): unknown {
  let at = node;
  for (const key of keys) at = (at as Json | unknown[] | undefined)?.[key as never];
  return at;
}

/** Every entry of a `properties` map (at any depth) that has no description. */
function undescribed(node: unknown, where = ''): string[] {
  if (typeof node !== 'object' || node === null) return [];
  const out: string[] = [];
  const n = node as Json;
  for (const [name, child] of Object.entries((n['properties'] as Json | undefined) ?? {})) {
    const description = (child as Json)['description'];
    if (typeof description !== 'string' || description.trim().length === 0) out.push(`${where}.${name}`);
    out.push(...undescribed(child, `${where}.${name}`));
  }
  if (n['items']) out.push(...undescribed(n['items'], `${where}[]`));
  if (typeof n['additionalProperties'] === 'object') out.push(...undescribed(n['additionalProperties'], `${where}{}`));
  return out;
}

describe('CRD manifest generation', () => {
  test('the committed manifest is exactly what npm run gen:crd writes (stale-generation check)', () => {
    const committed = readFileSync(crdManifestFile, 'utf8');
    assert.ok(committed === renderCrdManifest(), `${crdManifestFile} is stale: run \`npm run gen:crd\` and commit the result`);
  });

  test('the manifest starts with the do-not-edit header and parses back to buildCrd()', () => {
    const committed = readFileSync(crdManifestFile, 'utf8');
    assert.match(committed, /^# generated from src\/chain\/fallbackchain\.schema\.json by npm run gen:crd — do not edit\n/);
    assert.deepEqual(parseYaml(committed), buildCrd());
  });

  test('the drift check can fail: a schema edit not regenerated makes the manifest differ', () => {
    const committed = readFileSync(crdManifestFile, 'utf8');
    const crd = buildCrd();
    // As if someone edited one description in the schema and forgot npm run gen:crd.
    const spec = get(crd, 'spec', 'versions', 0, 'schema', 'openAPIV3Schema', 'properties', 'spec') as Json;
    spec['description'] = `${String(spec['description'])} (edited)`;
    assert.notEqual(renderCrdManifest(crd), committed);
    assert.equal(renderCrdManifest(), committed, 'buildCrd() hands out fresh copies: the edit did not leak');
  });
});

function withoutHeaderUnion(spec: unknown): unknown {
  const copy = structuredClone(spec) as Json;
  const value = get(copy, 'properties', 'providers', 'items', 'properties', 'headers', 'additionalProperties') as Json;
  delete value['anyOf'];
  return copy;
}

describe('buildCrd()', () => {
  const crd = buildCrd();
  const version = get(crd, 'spec', 'versions', 0) as Json;
  const openAPI = get(version, 'schema', 'openAPIV3Schema') as Json;
  const rows: Array<{ proves: string; actual: unknown; expected: unknown }> = [
    // The object the API server registers.
    {
      proves: 'apiextensions.k8s.io/v1 CustomResourceDefinition',
      actual: [crd['apiVersion'], crd['kind']],
      expected: ['apiextensions.k8s.io/v1', 'CustomResourceDefinition'],
    },
    // The name must be <plural>.<group>.
    { proves: 'name is plural.group', actual: get(crd, 'metadata', 'name'), expected: 'fallbackchains.llmfallback.io' },
    // The shared group and scope.
    { proves: 'group llmfallback.io, Namespaced', actual: [get(crd, 'spec', 'group'), get(crd, 'spec', 'scope')], expected: ['llmfallback.io', 'Namespaced'] },
    // kubectl names: short name fc, category llmfallback.
    {
      proves: 'names with short name and category',
      actual: get(crd, 'spec', 'names'),
      expected: {
        kind: 'FallbackChain',
        listKind: 'FallbackChainList',
        plural: 'fallbackchains',
        singular: 'fallbackchain',
        shortNames: ['fc'],
        categories: ['llmfallback'],
      },
    },
    // One version, served and stored.
    {
      proves: 'exactly one version v1alpha1, served and storage',
      actual: [get(crd, 'spec', 'versions', 'length'), version['name'], version['served'], version['storage']],
      expected: [1, 'v1alpha1', true, true],
    },
    // The controller writes status through its own subresource.
    { proves: 'status subresource', actual: version['subresources'], expected: { status: {} } },
    // Printer columns READY, MODEL, STEPS, AGE with their paths.
    {
      proves: 'printer columns',
      actual: (version['additionalPrinterColumns'] as Json[]).map((c) => [c['name'], c['type'], c['jsonPath']]),
      expected: [
        ['Ready', 'string', '.status.conditions[?(@.type=="Ready")].status'],
        ['Model', 'string', '.spec.model'],
        ['Steps', 'integer', '.status.steps'],
        ['Age', 'date', '.metadata.creationTimestamp'],
      ],
    },
    // The API server allows nothing but `type: object` on the root metadata.
    { proves: 'root metadata is a plain object', actual: get(openAPI, 'properties', 'metadata'), expected: { type: 'object' } },
    // Single source of truth: spec is the file schema's, but for the header-value union (a string
    // or {valueFrom}), which a structural schema cannot state: the server keeps the value as given.
    {
      proves: 'spec schema is the file schema, the header-value union aside',
      actual: get(openAPI, 'properties', 'spec'),
      expected: withoutHeaderUnion(schema.properties.spec),
    },
    {
      proves: 'a header value is kept as given by the server (string or {valueFrom})',
      actual: get(openAPI, 'properties', 'spec', 'properties', 'providers', 'items', 'properties', 'headers', 'additionalProperties'),
      expected: { description: 'A header value: a string, or {valueFrom: {secretKey}}.', 'x-kubernetes-preserve-unknown-fields': true },
    },
    // Same for status.
    { proves: 'status schema is the file schema', actual: get(openAPI, 'properties', 'status'), expected: schema.properties.status },
    // And the root (required spec, description) apart from metadata.
    { proves: 'root keeps required and description', actual: [openAPI['required'], openAPI['description']], expected: [schema.required, schema.description] },
  ];
  for (const row of rows) {
    test(row.proves, () => assert.deepEqual(row.actual, row.expected));
  }
});

describe('schema documentation', () => {
  test('every field of the file schema has a description', () => {
    assert.deepEqual(undescribed(schema), []);
  });

  test('every field of the CRD schema has a description, except the root metadata the server owns', () => {
    const openAPI = get(buildCrd(), 'spec', 'versions', 0, 'schema', 'openAPIV3Schema');
    assert.deepEqual(undescribed(openAPI), ['.metadata']);
  });

  test('the description check can fail: a field without one is reported with its path', () => {
    assert.deepEqual(undescribed({ properties: { a: { type: 'object', properties: { b: { type: 'string' } } } } }), ['.a', '.a.b']);
  });

  test('every CEL rule has a readable message', () => {
    const rules: Json[] = [];
    const collect = (node: unknown): void => {
      if (typeof node !== 'object' || node === null) return;
      const found = (node as Json)['x-kubernetes-validations'];
      if (Array.isArray(found)) rules.push(...(found as Json[]));
      for (const child of Object.values(node as Json)) collect(child);
    };
    collect(schema);
    assert.equal(
      rules.length,
      18,
      'steps (and step targets) name declared providers, unique provider names, one apiKey source, a Secret key name, baseMs <= maxMs, provider+model or targets, no target twice in a step; auth.aws: one source and a Secret key name for each of its three credentials, and a key pair or webIdentity; auth.gcpServiceAccount: one source and a Secret key name; auth: one kind',
    );
    for (const rule of rules) assert.match(String(rule['message']), /^[a-z].{20,}$/, JSON.stringify(rule));
  });
});
