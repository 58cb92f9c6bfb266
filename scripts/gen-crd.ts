// Writes manifests/crds/fallbackchains.llmfallback.io.yaml from buildCrd() (which reads
// src/chain/fallbackchain.schema.json). Run with `npm run gen:crd` after changing the schema;
// test/chain/crd-drift.test.ts fails while the committed manifest is stale.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { buildCrd, CRD_NAME } from '../src/k8s/crd.ts';

export const CRD_HEADER = '# generated from src/chain/fallbackchain.schema.json by npm run gen:crd — do not edit\n';
export const crdManifestFile = fileURLToPath(new URL(`../manifests/crds/${CRD_NAME}.yaml`, import.meta.url));

/** The exact text of the manifest file (of buildCrd(), or of the CRD given). */
export function renderCrdManifest(crd: object = buildCrd()): string {
  return CRD_HEADER + stringify(crd, { lineWidth: 0 });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await mkdir(path.dirname(crdManifestFile), { recursive: true });
  await writeFile(crdManifestFile, renderCrdManifest());
  console.log(`wrote ${path.relative(process.cwd(), crdManifestFile)}`);
}
