// api: azure-openai against a strict Azure mock (test/support/azure-mock.ts): the deployment
// path and api-version, the key in api-key and never in Authorization, the v1 path, both
// SDKs as callers with and without streams, Azure's 429 retry-after-ms honoured over its
// retry-after, and its content_filter 400 classified as a refusal (not routed around unless
// the chain opts in).
import { test, before, after } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startAzureMock, type AzureMock } from '../support/azure-mock.ts';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const KEY = 'azure-resource-key-0123456789abcdef';
let azure: AzureMock;
let proxy: ProxyHarness;
let openai: OpenAI;
let anthropic: Anthropic;
let tokenDir: string;
const ENTRA = {
  tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  clientId: '00000000-1111-2222-3333-444444444444',
  federatedToken: 'eyJhbGciOiJSUzI1NiJ9.aks-projected-token.sig',
};

function chain(name: string, models: string[], options: { baseURL?: string; fallbackOn?: string[]; apiVersion?: string; entra?: boolean } = {}): object {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [
        {
          name: 'azure',
          api: 'azure-openai',
          baseURL: options.baseURL ?? azure.endpoint,
          ...(options.entra ? { auth: { azureWorkloadIdentity: true } } : { apiKey: { env: 'AZURE_OPENAI_KEY' } }),
          ...(options.apiVersion ? { apiVersion: options.apiVersion } : {}),
        },
      ],
      steps: models.map((model) => ({ provider: 'azure', model, retries: 1 })),
      policy: { backoff: { baseMs: 1, maxMs: 1000 }, deadlineMs: 10000, ...(options.fallbackOn ? { fallbackOn: options.fallbackOn } : {}) },
    },
  };
}

before(async () => {
  azure = await startAzureMock(KEY, 150, ENTRA);
  tokenDir = await mkdtemp(path.join(tmpdir(), 'llmfb-aks-'));
  await writeFile(path.join(tokenDir, 'azure-identity-token'), `${ENTRA.federatedToken}\n`);
  const docs = [
    chain('az-plain', ['ok-gpt4o']),
    chain('az-preview', ['ok-preview'], { apiVersion: '2025-01-01-preview' }),
    chain('az-v1', ['ok-v1-deployment'], { baseURL: `${azure.endpoint}/openai/v1` }),
    chain('az-throttled', ['throttled-1', 'ok-next']),
    chain('az-filtered', ['filtered-1', 'ok-after-filter']),
    chain('az-entra', ['ok-entra'], { entra: true }),
    chain('az-filtered-opted-in', ['filtered-2', 'ok-after-filter-2'], {
      fallbackOn: ['rateLimited', 'serverError', 'timeout', 'connection', 'contentFiltered'],
    }),
  ];
  proxy = await startProxy({
    config: docs.map((d) => JSON.stringify(d)).join('\n---\n'),
    env: {
      AZURE_OPENAI_KEY: KEY,
      AZURE_TENANT_ID: ENTRA.tenantId,
      AZURE_CLIENT_ID: ENTRA.clientId,
      AZURE_FEDERATED_TOKEN_FILE: path.join(tokenDir, 'azure-identity-token'),
      AZURE_AUTHORITY_HOST: azure.authorityHost,
    },
  });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await azure.close();
  await rm(tokenDir, { recursive: true, force: true });
});

const lastRequest = (deployment: string) => {
  const found = azure.requests.filter((r) => r.deployment === deployment);
  assert.ok(found.length > 0, `azure saw ${deployment}`);
  return found[found.length - 1]!;
};

test('OpenAI SDK -> deployment path with the default api-version, key in api-key only', async () => {
  const answer = await openai.chat.completions.create({ model: 'az-plain', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.choices[0]?.message.content, 'Hello from azure ok-gpt4o');
  const seen = lastRequest('ok-gpt4o');
  assert.equal(seen.path, '/openai/deployments/ok-gpt4o/chat/completions');
  assert.equal(seen.query.get('api-version'), '2024-10-21');
  assert.equal(seen.headers['api-key'], KEY);
  assert.equal(seen.headers['authorization'], undefined, 'the key never goes out as a bearer token');
});

test('the provider apiVersion is sent; the /openai/v1 baseURL uses the v1 path with the deployment as model', async () => {
  await openai.chat.completions.create({ model: 'az-preview', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(lastRequest('ok-preview').query.get('api-version'), '2025-01-01-preview');
  const answer = await openai.chat.completions.create({ model: 'az-v1', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.choices[0]?.message.content, 'Hello from azure ok-v1-deployment');
  const seen = lastRequest('ok-v1-deployment');
  assert.equal(seen.path, '/openai/v1/chat/completions');
  assert.equal(seen.query.get('api-version'), null);
});

test('OpenAI SDK stream through Azure (prompt_filter_results chunk first), usage included', async () => {
  const stream = await openai.chat.completions.create({
    model: 'az-plain',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi' }],
  });
  let text = '';
  let usage: unknown;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Hello from azure ok-gpt4o');
  assert.deepEqual(usage, { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 });
});

test('Anthropic SDK, JSON and stream, translated to Azure and back', async () => {
  const message = await anthropic.messages.create({ model: 'az-plain', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(message.content[0]?.type === 'text' ? message.content[0].text : '', 'Hello from azure ok-gpt4o');
  const seen = lastRequest('ok-gpt4o');
  assert.equal(seen.headers['api-key'], KEY);
  assert.equal(seen.headers['x-api-key'], undefined);
  const stream = anthropic.messages.stream({ model: 'az-plain', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  const final = await stream.finalMessage();
  assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', 'Hello from azure ok-gpt4o');
  assert.equal(final.stop_reason, 'end_turn');
});

test('a 429 with retry-after-ms: the same deployment is retried after that many ms, not after retry-after: 60', async () => {
  const { response } = await openai.chat.completions.create({ model: 'az-throttled', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'azure/throttled-1=rateLimited, azure/throttled-1=ok');
  assert.equal(azure.requests.filter((r) => r.deployment === 'ok-next').length, 0);
});

test("Azure's content_filter 400 is a refusal: it goes back to the caller unless contentFiltered is opted in", async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'az-filtered', messages: [{ role: 'user', content: 'bad' }] }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.APIError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'content_filter');
    return true;
  });
  assert.equal(azure.requests.filter((r) => r.deployment === 'filtered-1').length, 1, 'a refusal is not retried');
  assert.equal(azure.requests.filter((r) => r.deployment === 'ok-after-filter').length, 0, 'nor routed around');
  const { response } = await openai.chat.completions.create({ model: 'az-filtered-opted-in', messages: [{ role: 'user', content: 'bad' }] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'azure/filtered-2=contentFiltered, azure/ok-after-filter-2=ok');
});

test('the Azure key is redacted in /config', async () => {
  const config = await (await fetch(`${proxy.adminUrl}/config`)).text();
  assert.ok(!config.includes(KEY));
  assert.ok(config.includes('azure-openai'));
});

test('workload identity: the federated token exchanged at Entra once, the bearer token sent instead of api-key, and redacted', async () => {
  for (let i = 0; i < 2; i++) {
    const answer = await openai.chat.completions.create({ model: 'az-entra', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(answer.choices[0]?.message.content, 'Hello from azure ok-entra');
  }
  assert.deepEqual(azure.entraGrants, [{ ok: true }], 'one exchange, accepted (tenant, client, scope, assertion)');
  const seen = lastRequest('ok-entra');
  assert.equal(seen.headers['authorization'], `Bearer ${azure.issued[0]}`);
  assert.equal(seen.headers['api-key'], undefined);
  const config = await (await fetch(`${proxy.adminUrl}/config`)).text();
  const logs = JSON.stringify(proxy.logs);
  assert.ok(!config.includes(azure.issued[0]!) && !logs.includes(azure.issued[0]!));
});

// The review: the pod's federated token (its projected service-account token) was not given to
// the redactor, so a token endpoint that quoted the presented assertion put it in the caller's
// error and the log.
test("workload identity: the pod's federated token is a secret: a token endpoint quoting it is redacted from the caller and the logs", async () => {
  const rotated = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDp3ZWIifQ.unmatched-federated-token-signature-Qm9Xc2';
  await writeFile(path.join(tokenDir, 'unmatched-token'), `${rotated}\n`);
  const other = await startProxy({
    config: JSON.stringify(chain('az-entra-unmatched', ['ok-never'], { entra: true })),
    env: {
      AZURE_TENANT_ID: ENTRA.tenantId,
      AZURE_CLIENT_ID: ENTRA.clientId,
      AZURE_FEDERATED_TOKEN_FILE: path.join(tokenDir, 'unmatched-token'),
      AZURE_AUTHORITY_HOST: azure.authorityHost,
    },
  });
  try {
    const response = await fetch(`${other.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'az-entra-unmatched', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await response.text();
    assert.ok(response.status >= 400, text);
    assert.ok(
      azure.entraGrants.some((g) => g.why?.includes(rotated)),
      'the mock quoted the token it was sent',
    );
    assert.match(text, /presented assertion \[REDACTED\]/, text);
    const logs = JSON.stringify(other.logs);
    assert.match(logs, /presented assertion \[REDACTED\]/);
    for (const piece of [rotated, 'unmatched-federated-token-signature']) {
      assert.ok(!text.includes(piece), `the caller never sees the token: ${text}`);
      assert.ok(!logs.includes(piece), 'nor the log');
    }
  } finally {
    await other.close();
  }
});
