// api: vertex against a strict Vertex AI mock (test/support/vertex-mock.ts) whose token
// endpoint verifies the JWT bearer grant (signature, audience, scope) and whose model
// endpoints accept only the tokens it issued: Gemini (generateContent, streamGenerateContent
// ?alt=sse) and Claude (rawPredict, streamRawPredict with anthropic_version vertex-2023-10-16)
// from both SDKs, the token cached across requests, GKE workload identity through the
// metadata server, a refused key as an authFailed fallback, and access tokens redacted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startVertexMock, type VertexMock } from '../support/vertex-mock.ts';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

let vertex: VertexMock;
let proxy: ProxyHarness;
let openai: OpenAI;
let anthropic: Anthropic;

type Auth = 'key' | 'revoked' | 'metadata' | 'echoing';
function chain(name: string, steps: Array<{ auth?: Auth; model: string }>): object {
  const auths = [...new Set(steps.map((s) => s.auth ?? 'key'))];
  const auth = (a: Auth): object =>
    a === 'metadata' ? { gcpWorkloadIdentity: true } : { gcpServiceAccount: { env: { key: 'VERTEX_SA', revoked: 'REVOKED_SA', echoing: 'ECHOING_SA' }[a] } };
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: auths.map((a) => ({ name: `vertex-${a}`, api: 'vertex', baseURL: vertex.baseURL, auth: auth(a) })),
      steps: steps.map((s) => ({ provider: `vertex-${s.auth ?? 'key'}`, model: s.model, retries: 0 })),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000 },
    },
  };
}

before(async () => {
  vertex = await startVertexMock();
  const docs = [
    chain('vx-gemini', [{ model: 'gemini-2.5-flash' }]),
    chain('vx-claude', [{ model: 'claude-sonnet-4@20250514' }]),
    chain('vx-revoked', [{ auth: 'revoked', model: 'gemini-revoked' }, { model: 'gemini-after-revoked' }]),
    chain('vx-429', [{ model: 'gemini-429' }, { model: 'claude-next' }]),
    chain('vx-metadata', [{ auth: 'metadata', model: 'gemini-wi' }]),
    chain('vx-echo', [{ model: 'gemini-echo-token' }]),
    chain('vx-assertion-echo', [{ auth: 'echoing', model: 'gemini-never-reached' }]),
  ];
  proxy = await startProxy({
    config: docs.map((d) => JSON.stringify(d)).join('\n---\n'),
    env: {
      VERTEX_SA: vertex.serviceAccountJson,
      REVOKED_SA: vertex.untrustedServiceAccountJson,
      ECHOING_SA: vertex.echoingServiceAccountJson,
      GCE_METADATA_HOST: vertex.metadataHost,
    },
  });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await vertex.close();
});

const user = (content: string) => ({ role: 'user' as const, content });
const lastFor = (model: string) => vertex.requests.filter((r) => r.model === model).at(-1);

test('OpenAI SDK -> Vertex Gemini, JSON and stream, with a token from the JWT bearer grant, fetched once', async () => {
  const grantsBefore = vertex.tokenGrants.filter((g) => g.ok).length;
  const answer = await openai.chat.completions.create({ model: 'vx-gemini', messages: [user('hi')] });
  assert.equal(answer.choices[0]?.message.content, 'Hello from vertex gemini-2.5-flash');
  assert.equal(lastFor('gemini-2.5-flash')?.method, 'generateContent');
  const stream = await openai.chat.completions.create({ model: 'vx-gemini', stream: true, messages: [user('hi')] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, 'Hello from vertex gemini-2.5-flash');
  const streamed = lastFor('gemini-2.5-flash')!;
  assert.equal(streamed.method, 'streamGenerateContent');
  assert.equal(streamed.query.get('alt'), 'sse');
  assert.equal(streamed.headers['x-goog-api-key'], undefined);
  assert.ok(vertex.tokenGrants.filter((g) => g.ok).length - grantsBefore <= 1, 'the access token is cached');
});

test('Anthropic SDK -> Claude on Vertex (rawPredict / streamRawPredict), the body with anthropic_version and no model', async () => {
  const message = await anthropic.messages.create({ model: 'vx-claude', max_tokens: 64, messages: [user('hi')] });
  assert.equal(message.content[0]?.type === 'text' ? message.content[0].text : '', 'Hello from vertex claude-sonnet-4@20250514');
  const sent = lastFor('claude-sonnet-4@20250514')!;
  assert.equal(sent.method, 'rawPredict');
  assert.equal(sent.body['anthropic_version'], 'vertex-2023-10-16');
  assert.equal(sent.body['model'], undefined);
  assert.equal(sent.headers['anthropic-version'], undefined);
  const final = await anthropic.messages.stream({ model: 'vx-claude', max_tokens: 64, messages: [user('hi')] }).finalMessage();
  assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', 'Hello from vertex claude-sonnet-4@20250514');
  assert.equal(lastFor('claude-sonnet-4@20250514')?.method, 'streamRawPredict');
});

test('OpenAI SDK -> Claude on Vertex, translated, JSON and stream', async () => {
  const answer = await openai.chat.completions.create({ model: 'vx-claude', messages: [user('hi')] });
  assert.equal(answer.choices[0]?.message.content, 'Hello from vertex claude-sonnet-4@20250514');
  const stream = await openai.chat.completions.create({ model: 'vx-claude', stream: true, messages: [user('hi')] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, 'Hello from vertex claude-sonnet-4@20250514');
});

test('a key the token endpoint refuses is an authFailed failure of its step; the chain falls back', async () => {
  const { response } = await openai.chat.completions.create({ model: 'vx-revoked', messages: [user('hi')] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'vertex-revoked/gemini-revoked=authFailed, vertex-key/gemini-after-revoked=ok');
  assert.ok(vertex.tokenGrants.some((g) => !g.ok && g.why === 'Invalid JWT Signature.'));
  assert.equal(vertex.requests.filter((r) => r.model === 'gemini-revoked').length, 0, 'no model request without a token');
});

test("Vertex's RESOURCE_EXHAUSTED 429 is rateLimited: Gemini falls back to Claude", async () => {
  const { data, response } = await openai.chat.completions.create({ model: 'vx-429', messages: [user('hi')] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'vertex-key/gemini-429=rateLimited, vertex-key/claude-next=ok');
  assert.equal(data.choices[0]?.message.content, 'Hello from vertex claude-next');
});

test('GKE workload identity: the metadata server token (Metadata-Flavor: Google), cached', async () => {
  const before = vertex.metadataCalls;
  for (let i = 0; i < 2; i++) {
    const answer = await openai.chat.completions.create({ model: 'vx-metadata', messages: [user('hi')] });
    assert.equal(answer.choices[0]?.message.content, 'Hello from vertex gemini-wi');
  }
  assert.equal(vertex.metadataCalls - before, 1);
});

test('access tokens and the service-account key are secrets: an echoed token is redacted, neither is in /config or the logs', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'vx-echo', messages: [user('hi')] }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.APIError);
    assert.equal(error.status, 400);
    assert.match(error.message, /token \[REDACTED\] is not allowed/);
    return true;
  });
  const config = await (await fetch(`${proxy.adminUrl}/config`)).text();
  const logs = JSON.stringify(proxy.logs);
  const privateKey = (JSON.parse(vertex.serviceAccountJson) as { private_key: string }).private_key;
  for (const secret of [...vertex.issued, privateKey.split('\n')[1]!]) assert.ok(!config.includes(secret) && !logs.includes(secret));
});

// The review: the signed JWT assertion was not given to the redactor, so a token endpoint
// that quotes it in its refusal put it in the caller's error and the log (replayable at that
// endpoint until it expires, an hour later).
test('the signed JWT assertion is a secret: a token endpoint that quotes it in its refusal is redacted from the caller and the logs', async () => {
  const logsBefore = proxy.logs.length;
  const raw = await fetch(`${proxy.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer caller-key' },
    body: JSON.stringify({ model: 'vx-assertion-echo', messages: [user('hi')] }),
  });
  const text = `${JSON.stringify(Object.fromEntries(raw.headers))}\n${await raw.text()}`;
  assert.ok(raw.status >= 400, text);
  assert.equal(vertex.echoedAssertions.length, 1, 'the request signed and sent an assertion');
  assert.match(text, /Invalid JWT Signature: \[REDACTED\]/, text);
  const logs = JSON.stringify(proxy.logs.slice(logsBefore));
  assert.match(logs, /Invalid JWT Signature: \[REDACTED\]/);
  for (const assertion of vertex.echoedAssertions) {
    const signature = assertion.split('.')[2] ?? '';
    assert.ok(signature.length > 100);
    for (const piece of [assertion, signature.slice(0, 24), signature.slice(-24)]) {
      assert.ok(!text.includes(piece), `the caller never sees the assertion: ${text}`);
      assert.ok(!logs.includes(piece), 'nor the log');
    }
  }
});
