// A strict Bedrock Runtime (and STS) on 127.0.0.1, checking what AWS checks before it answers:
// the SigV4 signature is recomputed from the known test credentials over the request exactly
// as received (method, raw path, query, the signed headers, body) for service `bedrock` and the
// expected region; a missing, stale, wrongly scoped or wrong signature, an unknown key id or a
// missing/wrong session token is Bedrock's 403 (x-amzn-ErrorType: UnrecognizedClientException /
// InvalidSignatureException). Converse answers are Bedrock's JSON; ConverseStream answers are
// the binary application/vnd.amazon.eventstream, encoded with the AWS SDK's codec; errors are
// Bedrock's {message} bodies with x-amzn-ErrorType.
//
// The model id picks the behaviour: `…ok…` an answer, `…tool…` a toolUse of the first tool (then
// "Tool said: <result>"), `…throttled…` 429 ThrottlingException, `…unavailable…` 503
// ServiceUnavailableException, `…not-ready…` 429 ModelNotReadyException, `…too-long…` 400
// ValidationException (context length), `…model-error…` 424 ModelErrorException, `…quota…` 400
// ServiceQuotaExceededException, `…guardrail…` stopReason guardrail_intervened,
// `…stream-exception…` a throttlingException event before any content, `…echo-credentials…` a
// 400 whose message quotes the session token (as a misbehaving gateway might).
//
// STS: POST / with Action=AssumeRoleWithWebIdentity checks the RoleArn and the token, and
// answers the documented XML with fresh session credentials (which Bedrock then accepts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

export interface AwsKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface BedrockRequest {
  path: string;
  modelId: string;
  stream: boolean;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
  accessKeyId: string;
}

export interface BedrockMock {
  url: string;
  stsURL: string;
  requests: BedrockRequest[];
  /** Every signature refusal, with why. */
  refusals: string[];
  /** STS exchanges answered (and refused). */
  stsCalls: Array<{ roleArn: string; ok: boolean }>;
  /** The session credentials STS handed out. */
  issued: AwsKey[];
  close(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

export async function startBedrockMock(options: {
  region: string;
  keys: AwsKey[];
  roleArn?: string;
  webIdentityToken?: string;
  sessionSeconds?: number;
}): Promise<BedrockMock> {
  const requests: BedrockRequest[] = [];
  const refusals: string[] = [];
  const stsCalls: BedrockMock['stsCalls'] = [];
  const issued: AwsKey[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      void handle(req, res, raw).catch((error: unknown) => awsError(res, 500, 'InternalServerException', String(error)));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mock');
    if (url.pathname === '/' && raw.includes('Action=AssumeRoleWithWebIdentity')) return sts(res, new URLSearchParams(raw));
    const match = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) return awsError(res, 404, 'UnknownOperationException', 'Unknown operation');
    const refused = await verifySignature(req, raw, [...options.keys, ...issued], options.region);
    if (refused) {
      refusals.push(refused.why);
      return awsError(res, 403, refused.type, refused.message);
    }
    const modelId = decodeURIComponent(match[1] ?? '');
    const stream = match[2] === 'converse-stream';
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return awsError(res, 400, 'SerializationException', 'invalid JSON');
    }
    requests.push({ path: url.pathname, modelId, stream, body, headers: req.headers, accessKeyId: accessKeyOf(req) });
    if (!Array.isArray(body['messages']) || body['messages'].length === 0)
      return awsError(res, 400, 'ValidationException', 'The provided request is not valid: messages is required');
    if (modelId.includes('echo-credentials'))
      return awsError(res, 400, 'ValidationException', `The security token ${String(req.headers['x-amz-security-token'])} is not valid for this model`);
    if (modelId.includes('throttled')) return awsError(res, 429, 'ThrottlingException', 'Too many requests, please wait before trying again.');
    if (modelId.includes('not-ready'))
      return awsError(
        res,
        429,
        'ModelNotReadyException',
        'Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation up to 5 times.',
      );
    if (modelId.includes('unavailable')) return awsError(res, 503, 'ServiceUnavailableException', 'Bedrock is unable to process your request.');
    if (modelId.includes('model-error'))
      return awsError(res, 424, 'ModelErrorException', 'The system encountered an unexpected error during processing. Try your request again.');
    if (modelId.includes('quota')) return awsError(res, 400, 'ServiceQuotaExceededException', 'Your request exceeds the service quota for your account.');
    if (modelId.includes('too-long')) return awsError(res, 400, 'ValidationException', 'Input is too long for requested model.');
    const answer = answerFor(modelId, body);
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'mock' });
      res.end(
        JSON.stringify({
          output: { message: { role: 'assistant', content: answer.content } },
          stopReason: answer.stopReason,
          usage: { inputTokens: 11, outputTokens: 4, totalTokens: 15 },
          metrics: { latencyMs: 5 },
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'mock' });
    const frames: Uint8Array[] = [];
    if (modelId.includes('stream-exception')) {
      frames.push(frame('exception', 'throttlingException', { message: 'Too many requests, please wait before trying again.' }));
      res.end(Buffer.concat(frames));
      return;
    }
    frames.push(frame('event', 'messageStart', { role: 'assistant', p: 'abc' }));
    answer.content.forEach((block, index) => {
      if (typeof block['text'] === 'string') {
        for (const piece of block['text'].split(/(?= )/))
          frames.push(frame('event', 'contentBlockDelta', { contentBlockIndex: index, delta: { text: piece }, p: 'abcdef' }));
      } else {
        const use = block['toolUse'] as { toolUseId: string; name: string; input: object };
        frames.push(frame('event', 'contentBlockStart', { contentBlockIndex: index, start: { toolUse: { toolUseId: use.toolUseId, name: use.name } } }));
        const json = JSON.stringify(use.input);
        frames.push(frame('event', 'contentBlockDelta', { contentBlockIndex: index, delta: { toolUse: { input: json.slice(0, 5) } } }));
        frames.push(frame('event', 'contentBlockDelta', { contentBlockIndex: index, delta: { toolUse: { input: json.slice(5) } } }));
      }
      frames.push(frame('event', 'contentBlockStop', { contentBlockIndex: index }));
    });
    frames.push(frame('event', 'messageStop', { stopReason: answer.stopReason }));
    frames.push(frame('event', 'metadata', { usage: { inputTokens: 11, outputTokens: 4, totalTokens: 15 }, metrics: { latencyMs: 5 } }));
    // Frames split at odd places, as TCP may deliver them.
    const all = Buffer.concat(frames);
    for (let at = 0; at < all.length; at += 37) res.write(all.subarray(at, at + 37));
    res.end();
  }

  function sts(res: ServerResponse, form: URLSearchParams): void {
    const roleArn = form.get('RoleArn') ?? '';
    const ok =
      roleArn === options.roleArn &&
      form.get('WebIdentityToken') === options.webIdentityToken &&
      form.get('Version') === '2011-06-15' &&
      (form.get('RoleSessionName') ?? '') !== '';
    stsCalls.push({ roleArn, ok });
    if (!ok) {
      res.writeHead(400, { 'content-type': 'text/xml' });
      // Quoting the token it was sent, as a careless endpoint would.
      res.end(
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key from your identity provider for token ${form.get('WebIdentityToken') ?? ''}</Message></Error><RequestId>mock</RequestId></ErrorResponse>`,
      );
      return;
    }
    const key: AwsKey = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(20).toString('base64'),
      sessionToken: `FwoGZXIvYXdzE${randomBytes(24).toString('base64')}`,
    };
    issued.push(key);
    const expiration = new Date(Date.now() + (options.sessionSeconds ?? 3600) * 1000).toISOString();
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:team:app</SubjectFromWebIdentityToken><AssumedRoleUser><Arn>${roleArn}/llm-fallback</Arn><AssumedRoleId>AROA:llm-fallback</AssumedRoleId></AssumedRoleUser><Credentials><SessionToken>${key.sessionToken}</SessionToken><SecretAccessKey>${key.secretAccessKey}</SecretAccessKey><Expiration>${expiration}</Expiration><AccessKeyId>${key.accessKeyId}</AccessKeyId></Credentials><Audience>sts.amazonaws.com</Audience></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>mock</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
    );
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stsURL: `http://127.0.0.1:${port}`,
    requests,
    refusals,
    stsCalls,
    issued,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function accessKeyOf(req: IncomingMessage): string {
  return /Credential=([^/]+)\//.exec(String(req.headers['authorization'] ?? ''))?.[1] ?? '';
}

/** Recomputes the request's SigV4 signature; undefined when it is valid, else Bedrock's refusal. */
async function verifySignature(
  req: IncomingMessage,
  body: string,
  keys: AwsKey[],
  region: string,
): Promise<{ type: string; message: string; why: string } | undefined> {
  const auth = String(req.headers['authorization'] ?? '');
  const parsed = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!parsed) return { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token', why: 'no SigV4 authorization header' };
  const [, keyId, day, scopeRegion, service, signedHeaders, signature] = parsed as unknown as string[];
  const key = keys.find((k) => k.accessKeyId === keyId);
  if (!key) return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.', why: `unknown key ${keyId}` };
  if (key.sessionToken !== undefined && req.headers['x-amz-security-token'] !== key.sessionToken)
    return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.', why: 'session token missing or wrong' };
  if (scopeRegion !== region || service !== 'bedrock')
    return { type: 'InvalidSignatureException', message: `Credential should be scoped to a valid region / service. `, why: `scope ${scopeRegion}/${service}` };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!when || amzDate.slice(0, 8) !== day)
    return {
      type: 'InvalidSignatureException',
      message: 'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP',
      why: 'x-amz-date',
    };
  const signingDate = new Date(Date.UTC(Number(when[1]), Number(when[2]) - 1, Number(when[3]), Number(when[4]), Number(when[5]), Number(when[6])));
  if (Math.abs(signingDate.getTime() - Date.now()) > 5 * 60_000)
    return { type: 'InvalidSignatureException', message: 'Signature expired', why: 'stale x-amz-date' };
  const names = (signedHeaders ?? '').split(';');
  if (!names.includes('host') || !names.includes('x-amz-date'))
    return { type: 'InvalidSignatureException', message: 'host and x-amz-date must be signed', why: 'signed headers' };
  const headers: Record<string, string> = {};
  for (const name of names) headers[name] = String(req.headers[name] ?? '');
  const url = new URL(req.url ?? '/', `http://${req.headers['host'] ?? ''}`);
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = value;
  const signer = new SignatureV4({
    service: 'bedrock',
    region,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, ...(key.sessionToken ? { sessionToken: key.sessionToken } : {}) },
    sha256: Sha256,
  });
  const expected = await signer.sign(
    { method: req.method ?? 'POST', protocol: 'http:', hostname: url.hostname, path: (req.url ?? '/').split('?')[0] ?? '/', query, headers, body },
    { signingDate },
  );
  const expectedSignature = /Signature=([0-9a-f]{64})/.exec(String(expected.headers['authorization']))?.[1];
  if (expectedSignature !== signature)
    return {
      type: 'InvalidSignatureException',
      message:
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      why: 'signature mismatch',
    };
  return undefined;
}

function answerFor(modelId: string, body: Record<string, unknown>): { content: Array<Record<string, unknown>>; stopReason: string } {
  if (modelId.includes('guardrail')) return { content: [{ text: 'Sorry, the model cannot answer this question.' }], stopReason: 'guardrail_intervened' };
  const messages = body['messages'] as Array<{ role: string; content: Array<Record<string, unknown>> }>;
  const toolResult = messages
    .flatMap((m) => m.content)
    .map((b) => b['toolResult'] as { content: Array<{ text: string }> } | undefined)
    .find((r) => r !== undefined);
  const tools = (body['toolConfig'] as { tools?: Array<{ toolSpec: { name: string } }> } | undefined)?.tools;
  if (modelId.includes('tool') && toolResult) return { content: [{ text: `Tool said: ${toolResult.content[0]?.text ?? ''}` }], stopReason: 'end_turn' };
  if (modelId.includes('tool') && tools?.[0])
    return { content: [{ toolUse: { toolUseId: 'tooluse_mock1', name: tools[0].toolSpec.name, input: { city: 'Paris' } } }], stopReason: 'tool_use' };
  return { content: [{ text: `Hello from bedrock ${modelId}` }], stopReason: 'end_turn' };
}

function frame(messageType: 'event' | 'exception', type: string, payload: object): Uint8Array {
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: messageType },
      [messageType === 'event' ? ':event-type' : ':exception-type']: { type: 'string', value: type },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}

function awsError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
    'x-amzn-requestid': 'mock',
  });
  res.end(JSON.stringify({ message }));
}
