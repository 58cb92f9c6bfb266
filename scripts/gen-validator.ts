// Writes src/chain/fallbackchain.validator.ts: the FallbackChain schema compiled ahead of time
// by Ajv (standalone code), so the sidecar neither loads Ajv's compiler nor compiles the schema
// when it starts. Run with `npm run gen:validator` after changing the schema (npm run gen:crd
// does it too); test/chain/validator-drift.test.ts fails while the file is stale.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderValidator } from '../src/chain/schema-compile.ts';

export const validatorFile = fileURLToPath(new URL('../src/chain/fallbackchain.validator.ts', import.meta.url));
export const schemaFile = fileURLToPath(new URL('../src/chain/fallbackchain.schema.json', import.meta.url));

/** The validator text for the schema file as it is on disk now. */
export async function renderValidatorFile(): Promise<string> {
  return renderValidator(JSON.parse(await readFile(schemaFile, 'utf8')) as object);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await writeFile(validatorFile, await renderValidatorFile());
  console.log(`wrote ${path.relative(process.cwd(), validatorFile)}`);
}
