// api: bedrock against a strict Bedrock mock (test/support/bedrock-mock.ts) that recomputes
// every SigV4 signature from the known test credentials: Converse and ConverseStream (the
// binary event stream) from both SDKs, tools both ways, Bedrock's errors mapped to our
// failure classes, guardrail interventions as refusals, session tokens, and IRSA through STS
// AssumeRoleWithWebIdentity cached across requests with its credentials redacted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startBedrockMock, type BedrockMock } from '../support/bedrock-mock.ts';
import { startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

const REGION = 'eu-west-1';
const KEY = { accessKeyId: 'AKIAMOCKKEY000000001', secretAccessKey: 'mock/secret+access/key0000000000000000001' };
const TEMP = {
  accessKeyId: 'ASIAMOCKTEMP00000001',
  secretAccessKey: 'mock/temp+secret/key00000000000000000002',
  sessionToken: 'IQoJb3JpZ2luX2VjEMOCKSESSIONTOKEN0001',
};
const ROLE = 'arn:aws:iam::123456789012:role/llm-fallback';
const WEB_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.mock-projected-sa-token.sig';
const CLAUDE = 'anthropic.claude-ok-v1:0';

let bedrock: BedrockMock;
let proxy: ProxyHarness;
let openai: OpenAI;
let anthropic: Anthropic;
let tokenDir: string;

type Auth = 'key' | 'temp' | 'wrong' | 'irsa';
function provider(name: string, auth: Auth): object {
  const aws =
    auth === 'irsa'
      ? { region: REGION, webIdentity: true }
      : auth === 'temp'
        ? { region: REGION, accessKeyId: { env: 'TEMP_ID' }, secretAccessKey: { env: 'TEMP_SECRET' }, sessionToken: { env: 'TEMP_TOKEN' } }
        : { region: REGION, accessKeyId: { env: 'AWS_ID' }, secretAccessKey: { env: auth === 'wrong' ? 'WRONG_SECRET' : 'AWS_SECRET' } };
  return { name, api: 'bedrock', baseURL: bedrock.url, auth: { aws } };
}

function chain(name: string, steps: Array<{ auth?: Auth; model: string }>, fallbackOn?: string[]): object {
  const auths = [...new Set(steps.map((s) => s.auth ?? 'key'))];
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: auths.map((a) => provider(`bedrock-${a}`, a)),
      steps: steps.map((s) => ({ provider: `bedrock-${s.auth ?? 'key'}`, model: s.model, retries: 0 })),
      policy: { backoff: { baseMs: 1, maxMs: 20 }, deadlineMs: 10000, ...(fallbackOn ? { fallbackOn } : {}) },
    },
  };
}

before(async () => {
  bedrock = await startBedrockMock({ region: REGION, keys: [KEY, TEMP], roleArn: ROLE, webIdentityToken: WEB_TOKEN });
  tokenDir = await mkdtemp(path.join(tmpdir(), 'llmfb-irsa-'));
  await writeFile(path.join(tokenDir, 'token'), `${WEB_TOKEN}\n`);
  const docs = [
    chain('br-plain', [{ model: CLAUDE }]),
    chain('br-tools', [{ model: 'anthropic.claude-tool-v1:0' }]),
    chain('br-temp', [{ auth: 'temp', model: 'ok-temp' }]),
    chain('br-wrong-key', [{ auth: 'wrong', model: 'ok-wrong' }, { model: 'ok-after-wrong' }]),
    chain('br-errors', [{ model: 'throttled' }, { model: 'not-ready' }, { model: 'unavailable' }, { model: 'too-long' }, { model: 'ok-last' }]),
    chain('br-too-long', [{ model: 'too-long-only' }]),
    chain('br-model-errors', [{ model: 'model-error' }, { model: 'quota' }, { model: 'ok-final' }]),
    chain('br-stream-exception', [{ model: 'stream-exception' }, { model: 'ok-after-exception' }]),
    chain('br-guardrail', [{ model: 'guardrail-1' }, { model: 'ok-after-refusal' }]),
    chain(
      'br-guardrail-opted-in',
      [{ model: 'guardrail-2' }, { model: 'ok-after-refusal-2' }],
      ['rateLimited', 'serverError', 'timeout', 'connection', 'contentFiltered'],
    ),
    chain('br-irsa', [{ auth: 'irsa', model: 'ok-irsa' }]),
    chain('br-irsa-echo', [{ auth: 'irsa', model: 'echo-credentials' }]),
  ];
  proxy = await startProxy({
    config: docs.map((d) => JSON.stringify(d)).join('\n---\n'),
    env: {
      AWS_ID: KEY.accessKeyId,
      AWS_SECRET: KEY.secretAccessKey,
      WRONG_SECRET: 'not-the-secret-key-000000000000000000000',
      TEMP_ID: TEMP.accessKeyId,
      TEMP_SECRET: TEMP.secretAccessKey,
      TEMP_TOKEN: TEMP.sessionToken,
      AWS_ROLE_ARN: ROLE,
      AWS_WEB_IDENTITY_TOKEN_FILE: path.join(tokenDir, 'token'),
      AWS_ENDPOINT_URL_STS: bedrock.stsURL,
    },
  });
  openai = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'caller-key', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'caller-key', maxRetries: 0 });
});

after(async () => {
  await proxy.close();
  await bedrock.close();
  await rm(tokenDir, { recursive: true, force: true });
});

const requestsFor = (modelId: string) => bedrock.requests.filter((r) => r.modelId === modelId);
const user = (content: string) => ({ role: 'user' as const, content });

test('OpenAI SDK -> Converse, SigV4 verified by the mock, the model id encoded in the path', async () => {
  const refusalsBefore = bedrock.refusals.length;
  const answer = await openai.chat.completions.create({
    model: 'br-plain',
    messages: [{ role: 'system', content: 'be brief' }, user('hi')],
    max_tokens: 50,
    temperature: 0.2,
  });
  assert.equal(answer.choices[0]?.message.content, `Hello from bedrock ${CLAUDE}`);
  assert.deepEqual(answer.usage, { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 });
  assert.equal(bedrock.refusals.length, refusalsBefore, 'the signature was valid');
  const seen = requestsFor(CLAUDE).at(-1)!;
  assert.equal(seen.path, '/model/anthropic.claude-ok-v1%3A0/converse');
  assert.equal(seen.accessKeyId, KEY.accessKeyId);
  assert.deepEqual(seen.body['system'], [{ text: 'be brief' }]);
  assert.deepEqual(seen.body['messages'], [{ role: 'user', content: [{ text: 'hi' }] }]);
  assert.deepEqual(seen.body['inferenceConfig'], { maxTokens: 50, temperature: 0.2 });
});

test('OpenAI SDK stream <- ConverseStream (binary event stream, frames split across reads), usage included', async () => {
  const stream = await openai.chat.completions.create({ model: 'br-plain', stream: true, stream_options: { include_usage: true }, messages: [user('hi')] });
  let text = '';
  let finish: string | null | undefined;
  let usage: unknown;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, `Hello from bedrock ${CLAUDE}`);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 });
  assert.equal(requestsFor(CLAUDE).at(-1)?.path, '/model/anthropic.claude-ok-v1%3A0/converse-stream');
});

test('Anthropic SDK, JSON and stream, through Bedrock', async () => {
  const message = await anthropic.messages.create({ model: 'br-plain', max_tokens: 64, messages: [user('hi')] });
  assert.equal(message.content[0]?.type === 'text' ? message.content[0].text : '', `Hello from bedrock ${CLAUDE}`);
  const final = await anthropic.messages.stream({ model: 'br-plain', max_tokens: 64, messages: [user('hi')] }).finalMessage();
  assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', `Hello from bedrock ${CLAUDE}`);
  assert.equal(final.stop_reason, 'end_turn');
});

test('tools both ways: toolConfig out, toolUse back as tool_calls (JSON and stream), the tool result in as toolResult', async () => {
  const tools = [
    {
      type: 'function' as const,
      function: { name: 'weather', description: 'the weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    },
  ];
  const first = await openai.chat.completions.create({ model: 'br-tools', messages: [user('weather?')], tools, tool_choice: 'required' });
  const call = first.choices[0]?.message.tool_calls?.[0];
  assert.equal(first.choices[0]?.finish_reason, 'tool_calls');
  assert.ok(call && call.type === 'function');
  assert.equal(call.function.name, 'weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  const sent = requestsFor('anthropic.claude-tool-v1:0').at(-1)!;
  assert.deepEqual(sent.body['toolConfig'], {
    tools: [{ toolSpec: { name: 'weather', description: 'the weather', inputSchema: { json: tools[0]!.function.parameters } } }],
    toolChoice: { any: {} },
  });

  const stream = await openai.chat.completions.create({ model: 'br-tools', stream: true, messages: [user('weather?')], tools });
  let args = '';
  let name = '';
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta.tool_calls?.[0];
    args += delta?.function?.arguments ?? '';
    name += delta?.function?.name ?? '';
  }
  assert.equal(name, 'weather');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });

  const second = await openai.chat.completions.create({
    model: 'br-tools',
    messages: [
      user('weather?'),
      { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'weather', arguments: call.function.arguments } }] },
      { role: 'tool', tool_call_id: call.id, content: 'sunny' },
    ],
    tools,
  });
  assert.equal(second.choices[0]?.message.content, 'Tool said: sunny');
  const back = requestsFor('anthropic.claude-tool-v1:0').at(-1)!;
  assert.deepEqual((back.body['messages'] as unknown[]).slice(1), [
    { role: 'assistant', content: [{ toolUse: { toolUseId: call.id, name: 'weather', input: { city: 'Paris' } } }] },
    { role: 'user', content: [{ toolResult: { toolUseId: call.id, content: [{ text: 'sunny' }], status: 'success' } }] },
  ]);
});

test('a session token is signed in and sent as x-amz-security-token', async () => {
  const answer = await openai.chat.completions.create({ model: 'br-temp', messages: [user('hi')] });
  assert.equal(answer.choices[0]?.message.content, 'Hello from bedrock ok-temp');
  assert.equal(requestsFor('ok-temp').at(-1)?.headers['x-amz-security-token'], TEMP.sessionToken);
});

test('a wrong secret key: the mock refuses the signature (403), an authFailed failure, and the chain falls back', async () => {
  const { response } = await openai.chat.completions.create({ model: 'br-wrong-key', messages: [user('hi')] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'bedrock-wrong/ok-wrong=authFailed, bedrock-key/ok-after-wrong=ok');
  assert.ok(bedrock.refusals.includes('signature mismatch'));
});

test("Bedrock's errors: Throttling and ModelNotReady are rateLimited, ServiceUnavailable serverError, a too-long ValidationException contextLength", async () => {
  const { response } = await openai.chat.completions.create({ model: 'br-errors', messages: [user('hi')] }).withResponse();
  assert.equal(
    response.headers.get('x-llm-fallback-attempts'),
    'bedrock-key/throttled=rateLimited, bedrock-key/not-ready=rateLimited, bedrock-key/unavailable=serverError, bedrock-key/too-long=contextLength, bedrock-key/ok-last=ok',
  );
});

test('an exception event before any content (throttlingException) falls back, nothing sent to the caller', async () => {
  const stream = await openai.chat.completions.create({ model: 'br-stream-exception', stream: true, messages: [user('hi')] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, 'Hello from bedrock ok-after-exception');
});

test('a guardrail intervention is a refusal: returned as content_filter by default, routed around only when opted in', async () => {
  const refused = await openai.chat.completions.create({ model: 'br-guardrail', messages: [user('bad')] });
  assert.equal(refused.choices[0]?.finish_reason, 'content_filter');
  assert.equal(requestsFor('ok-after-refusal').length, 0);
  const { response } = await openai.chat.completions.create({ model: 'br-guardrail-opted-in', messages: [user('bad')] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'bedrock-key/guardrail-2=contentFiltered, bedrock-key/ok-after-refusal-2=ok');
});

test('IRSA: one STS AssumeRoleWithWebIdentity for many requests, signed with the session credentials, all of them redacted', async () => {
  const before = bedrock.stsCalls.length;
  for (let i = 0; i < 3; i++) {
    const answer = await openai.chat.completions.create({ model: 'br-irsa', messages: [user('hi')] });
    assert.equal(answer.choices[0]?.message.content, 'Hello from bedrock ok-irsa');
  }
  assert.deepEqual(bedrock.stsCalls.slice(before), [{ roleArn: ROLE, ok: true }], 'the session is cached');
  const session = bedrock.issued.at(-1)!;
  assert.ok(requestsFor('ok-irsa').every((r) => r.accessKeyId === session.accessKeyId && r.headers['x-amz-security-token'] === session.sessionToken));
  const config = await (await fetch(`${proxy.adminUrl}/config`)).text();
  const logs = JSON.stringify(proxy.logs);
  for (const secret of [session.secretAccessKey, session.sessionToken!, KEY.secretAccessKey, TEMP.sessionToken, WEB_TOKEN]) {
    assert.ok(!config.includes(secret) && !logs.includes(secret), 'no credential in /config or the logs');
  }
  // The redactor knows the session token from the moment STS handed it out: an upstream that
  // echoes it has it replaced in the caller's answer.
  await assert.rejects(openai.chat.completions.create({ model: 'br-irsa-echo', messages: [user('hi')] }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.APIError);
    assert.equal(error.status, 400);
    assert.ok(!error.message.includes(session.sessionToken!), error.message);
    assert.match(error.message, /The security token \[REDACTED\] is not valid/);
    return true;
  });
});

test('a 424 ModelErrorException is the model failing (serverError), a 400 ServiceQuotaExceededException a quota (rateLimited): both fall back', async () => {
  const { response } = await openai.chat.completions.create({ model: 'br-model-errors', messages: [user('hi')] }).withResponse();
  assert.equal(response.headers.get('x-llm-fallback-attempts'), 'bedrock-key/model-error=serverError, bedrock-key/quota=rateLimited, bedrock-key/ok-final=ok');
});

test("when every step fails the caller gets Bedrock's error with its bare type (from x-amzn-ErrorType)", async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'br-too-long', messages: [user('hi')] }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.APIError);
    assert.equal(error.status, 400);
    assert.equal(error.type, 'ValidationException');
    assert.equal(error.code, 'context_length_exceeded');
    assert.match(error.message, /Input is too long for requested model/);
    return true;
  });
});

// The review: the pod's projected web identity token was not given to the redactor, so an STS
// endpoint that quoted the token it was sent put it in the caller's error and the log.
test("IRSA: the pod's web identity token is a secret: an STS error quoting it is redacted from the caller and the logs", async () => {
  const unmatched = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbTphcHAifQ.unmatched-web-identity-signature-Zx81';
  await writeFile(path.join(tokenDir, 'unmatched-token'), `${unmatched}\n`);
  const other = await startProxy({
    config: JSON.stringify(chain('br-irsa-unmatched', [{ auth: 'irsa', model: 'ok-never' }])),
    env: { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: path.join(tokenDir, 'unmatched-token'), AWS_ENDPOINT_URL_STS: bedrock.stsURL },
  });
  try {
    const response = await fetch(`${other.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'br-irsa-unmatched', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await response.text();
    assert.ok(response.status >= 400, text);
    assert.ok(
      bedrock.stsCalls.some((c) => !c.ok),
      'STS refused the token',
    );
    assert.match(text, /identity provider for token \[REDACTED\]/, text);
    const logs = JSON.stringify(other.logs);
    assert.match(logs, /identity provider for token \[REDACTED\]/);
    for (const piece of [unmatched, 'unmatched-web-identity-signature']) {
      assert.ok(!text.includes(piece), `the caller never sees the token: ${text}`);
      assert.ok(!logs.includes(piece), 'nor the log');
    }
  } finally {
    await other.close();
  }
});
