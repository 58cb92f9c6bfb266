// The worked chain, end to end: Azure OpenAI -> Amazon Bedrock -> Google Vertex AI in
// one FallbackChain, each behind its strict mock (key, SigV4, OAuth2 all verified), falling
// through outages and throttling to the next cloud, from both SDKs, JSON and streamed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startAzureMock, type AzureMock } from '../support/azure-mock.ts';
import { startBedrockMock, type BedrockMock } from '../support/bedrock-mock.ts';
import { startVertexMock, type VertexMock } from '../support/vertex-mock.ts';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const AZURE_KEY = 'azure-key-for-three-clouds-0000000001';
const AWS = { accessKeyId: 'AKIATHREECLOUDS00001', secretAccessKey: 'three/clouds+secret/key000000000000000001' };
let azure: AzureMock;
let bedrock: BedrockMock;
let vertex: VertexMock;
let proxy: ProxyHarness;
let openai: OpenAI;
let anthropic: Anthropic;

function chain(name: string, models: { azure: string; bedrock: string; vertex: string }): object {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [
        { name: 'azure', api: 'azure-openai', baseURL: azure.endpoint, apiKey: { env: 'AZURE_KEY' } },
        {
          name: 'bedrock',
          api: 'bedrock',
          baseURL: bedrock.url,
          auth: { aws: { region: 'us-east-1', accessKeyId: { env: 'AWS_ID' }, secretAccessKey: { env: 'AWS_SECRET' } } },
        },
        { name: 'vertex', api: 'vertex', baseURL: vertex.baseURL, auth: { gcpServiceAccount: { env: 'VERTEX_SA' } } },
      ],
      steps: [
        { provider: 'azure', model: models.azure, retries: 0 },
        { provider: 'bedrock', model: models.bedrock, retries: 0 },
        { provider: 'vertex', model: models.vertex, retries: 0 },
      ],
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000 },
    },
  };
}

before(async () => {
  azure = await startAzureMock(AZURE_KEY);
  bedrock = await startBedrockMock({ region: 'us-east-1', keys: [AWS] });
  vertex = await startVertexMock();
  const docs = [
    chain('to-vertex-gemini', { azure: 'down-gpt-4o', bedrock: 'anthropic.claude-throttled-v1:0', vertex: 'gemini-2.5-pro' }),
    chain('to-vertex-claude', { azure: 'down-gpt-4o-mini', bedrock: 'meta.llama-unavailable-v1:0', vertex: 'claude-opus-4@20250514' }),
    chain('to-bedrock', { azure: 'down-gpt-4.1', bedrock: 'anthropic.claude-ok-v1:0', vertex: 'gemini-unused' }),
  ];
  proxy = await startProxy({
    config: docs.map((d) => JSON.stringify(d)).join('\n---\n'),
    env: { AZURE_KEY, AWS_ID: AWS.accessKeyId, AWS_SECRET: AWS.secretAccessKey, VERTEX_SA: vertex.serviceAccountJson },
  });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await Promise.all([azure.close(), bedrock.close(), vertex.close()]);
});

const user = (content: string) => ({ role: 'user' as const, content });
const GEMINI_ATTEMPTS = 'azure/down-gpt-4o=serverError, bedrock/anthropic.claude-throttled-v1:0=rateLimited, vertex/gemini-2.5-pro=ok';
const CLAUDE_ATTEMPTS = 'azure/down-gpt-4o-mini=serverError, bedrock/meta.llama-unavailable-v1:0=serverError, vertex/claude-opus-4@20250514=ok';

test('OpenAI SDK, JSON: Azure 503 -> Bedrock ThrottlingException -> Vertex Gemini', async () => {
  const { data, response } = await openai.chat.completions.create({ model: 'to-vertex-gemini', messages: [user('hi')] }).withResponse();
  assert.equal(data.choices[0]?.message.content, 'Hello from vertex gemini-2.5-pro');
  assert.equal(response.headers.get('x-llm-fallback-attempts'), GEMINI_ATTEMPTS);
  assert.deepEqual(bedrock.refusals, [], 'every Bedrock attempt was correctly signed');
});

test('OpenAI SDK, stream: Azure 503 -> Bedrock ServiceUnavailable -> Claude on Vertex', async () => {
  const { data: stream, response } = await openai.chat.completions.create({ model: 'to-vertex-claude', stream: true, messages: [user('hi')] }).withResponse();
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, 'Hello from vertex claude-opus-4@20250514');
  assert.equal(response.headers.get('x-llm-fallback-attempts'), CLAUDE_ATTEMPTS);
});

test('Anthropic SDK, JSON and stream, across the three clouds', async () => {
  const { data, response } = await anthropic.messages.create({ model: 'to-vertex-gemini', max_tokens: 64, messages: [user('hi')] }).withResponse();
  assert.equal(data.content[0]?.type === 'text' ? data.content[0].text : '', 'Hello from vertex gemini-2.5-pro');
  assert.equal(response.headers.get('x-llm-fallback-attempts'), GEMINI_ATTEMPTS);
  const final = await anthropic.messages.stream({ model: 'to-vertex-claude', max_tokens: 64, messages: [user('hi')] }).finalMessage();
  assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', 'Hello from vertex claude-opus-4@20250514');
  const bedrockStream = await anthropic.messages.stream({ model: 'to-bedrock', max_tokens: 64, messages: [user('hi')] }).finalMessage();
  assert.equal(bedrockStream.content[0]?.type === 'text' ? bedrockStream.content[0].text : '', 'Hello from bedrock anthropic.claude-ok-v1:0');
});
