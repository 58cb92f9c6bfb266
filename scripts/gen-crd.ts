// Writes the `api` enum of src/chain/fallbackchain.schema.json from the wire registry
// (src/wire/registry.ts), then manifests/crds/fallbackchains.llmfallback.io.yaml from
// buildCrd() (which reads that schema). Run with `npm run gen:crd` after changing the schema
// or registering a wire format; test/chain/crd-drift.test.ts and test/wire/registry.test.ts
// fail while either file is stale.
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { renderSchema } from '../src/chain/schema-apis.ts';
import { buildCrd, CRD_NAME } from '../src/k8s/crd.ts';

export const CRD_HEADER = '# generated from src/chain/fallbackchain.schema.json by npm run gen:crd — do not edit\n';
export const crdManifestFile = fileURLToPath(new URL(`../manifests/crds/${CRD_NAME}.yaml`, import.meta.url));
export const schemaFile = fileURLToPath(new URL('../src/chain/fallbackchain.schema.json', import.meta.url));

/** The exact text of the manifest file (of buildCrd(), or of the CRD given). */
export function renderCrdManifest(crd: object = buildCrd()): string {
  return CRD_HEADER + stringify(crd, { lineWidth: 0 });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // The schema first, and the manifest from the schema just written (the imported one is the old text).
  const schemaText = renderSchema(JSON.parse(await readFile(schemaFile, 'utf8')) as object);
  await writeFile(schemaFile, schemaText);
  console.log(`wrote ${path.relative(process.cwd(), schemaFile)}`);
  await mkdir(path.dirname(crdManifestFile), { recursive: true });
  await writeFile(crdManifestFile, renderCrdManifest(buildCrd(JSON.parse(schemaText) as object)));
  console.log(`wrote ${path.relative(process.cwd(), crdManifestFile)}`);
}
