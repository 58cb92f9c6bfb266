// The wire registry is the one list of formats: the schema's `api` enum is generated from it
// (npm run gen:crd), the API serves exactly its caller routes, errors take the shape of the
// codec that claims the path, and redaction covers every upstream codec's credential headers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import schema from '../../src/chain/fallbackchain.schema.json' with { type: 'json' };
import { API_PROPERTY_PATH, renderSchema } from '../../src/chain/schema-apis.ts';
import { schemaFile } from '../../scripts/gen-crd.ts';
import { CALLER_ROUTES, callerForPath, SECRET_HEADERS, UPSTREAM_APIS, WIRE_FORMATS } from '../../src/wire/registry.ts';
import { anthropic } from '../../src/wire/anthropic/index.ts';
import { openAIChat } from '../../src/wire/openai-chat/index.ts';
import { openAIResponses } from '../../src/wire/openai-responses/index.ts';

function at(node: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((n, key) => (n as Record<string, unknown>)[key], node);
}

describe('wire registry', () => {
  test("the schema's api enum is the registered upstream formats, and the schema file is what gen:crd writes", () => {
    assert.deepEqual(at(schema, API_PROPERTY_PATH), { ...(at(schema, API_PROPERTY_PATH) as object), enum: [...UPSTREAM_APIS] });
    assert.deepEqual(UPSTREAM_APIS, ['openai', 'anthropic', 'gemini', 'openai-responses', 'azure-openai', 'bedrock', 'vertex']);
    assert.ok(readFileSync(schemaFile, 'utf8') === renderSchema(schema), 'fallbackchain.schema.json is stale: run `npm run gen:crd` and commit the result');
  });

  test('a format registered later is in the generated enum', () => {
    const rendered = JSON.parse(renderSchema(schema)) as unknown;
    assert.deepEqual(
      (at(rendered, API_PROPERTY_PATH) as { enum: unknown })['enum'],
      WIRE_FORMATS.flatMap((f) => ('upstream' in f ? [f.api] : [])),
    );
  });

  test("the caller routes are every caller codec's, each path and operation once", () => {
    assert.deepEqual(
      CALLER_ROUTES.map((r) => [r.path, r.operation]),
      [
        ['/v1/chat/completions', 'chat'],
        ['/v1/completions', 'completions'],
        ['/v1/embeddings', 'embeddings'],
        ['/v1/messages', 'messages'],
        ['/v1/responses', 'responses'],
      ],
    );
    for (const route of CALLER_ROUTES)
      assert.ok(route.caller === openAIChat.caller || route.caller === anthropic.caller || route.caller === openAIResponses.caller);
  });

  test("errors take the shape of the codec claiming the path (the longest prefix), OpenAI's by default", () => {
    assert.equal(callerForPath('/v1/messages'), anthropic.caller);
    assert.equal(callerForPath('/v1/messages/count_tokens'), anthropic.caller);
    assert.equal(callerForPath('/v1/chat/completions'), openAIChat.caller);
    assert.equal(callerForPath('/v1/anything/else'), openAIChat.caller);
  });

  test("every upstream codec's credential headers are redacted", () => {
    assert.deepEqual([...SECRET_HEADERS].sort(), ['api-key', 'authorization', 'x-amz-security-token', 'x-api-key', 'x-goog-api-key']);
  });
});
