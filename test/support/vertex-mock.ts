// A strict Vertex AI (with Google's OAuth2 token endpoint and a GKE metadata server) on
// 127.0.0.1, checking what Google checks:
//   POST /token — the JWT bearer grant: grant_type, an RS256 assertion whose signature verifies
//     with the test service account's public key, iss = client_email, aud = this token_uri,
//     scope cloud-platform, kid = private_key_id, at most an hour long; otherwise Google's
//     400 {"error":"invalid_grant"}. Answers {access_token, expires_in, token_type}.
//   POST /token-echo — the token_uri of `echoingServiceAccountJson`: always 400 invalid_grant,
//     quoting the signed assertion it was sent in error_description (a careless endpoint).
//   GET /computeMetadata/v1/instance/service-accounts/default/token — only with
//     Metadata-Flavor: Google (as the real metadata server).
//   POST /v1/projects/{project}/locations/{location}/publishers/google/models/{m}:generateContent
//     | :streamGenerateContent?alt=sse (Gemini), …/publishers/anthropic/models/{m}:rawPredict |
//     :streamRawPredict (Claude; anthropic_version vertex-2023-10-16 in the body) — only with
//     `Authorization: Bearer <a token this mock issued>` (else 401 UNAUTHENTICATED), only for
//     the configured project and location (else 404/403 as Google answers).
// The model picks the behaviour: `…429…` Vertex's RESOURCE_EXHAUSTED, `…echo-token…` a 400
// quoting the bearer token, anything else an answer "Hello from vertex <model>".
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';

export interface VertexRequest {
  publisher: 'google' | 'anthropic';
  model: string;
  method: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface VertexMock {
  url: string;
  /** baseURL for the provider: …/v1/projects/{project}/locations/{location}. */
  baseURL: string;
  /** A service-account JSON key whose public half the token endpoint trusts. */
  serviceAccountJson: string;
  /** A well-formed key the token endpoint does not trust (a revoked key). */
  untrustedServiceAccountJson: string;
  /** A key whose token_uri refuses every grant, quoting the assertion in its error. */
  echoingServiceAccountJson: string;
  /** Every assertion /token-echo was sent. */
  echoedAssertions: string[];
  /** host:port for GCE_METADATA_HOST. */
  metadataHost: string;
  requests: VertexRequest[];
  tokenGrants: Array<{ ok: boolean; why?: string }>;
  metadataCalls: number;
  issued: string[];
  close(): Promise<void>;
}

const PROJECT = 'llmfb-test';
const LOCATION = 'europe-west4';

function serviceAccount(tokenURI: string, privateKey: KeyObject, keyId: string): string {
  return JSON.stringify({
    type: 'service_account',
    project_id: PROJECT,
    private_key_id: keyId,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: `llm-fallback@${PROJECT}.iam.gserviceaccount.com`,
    client_id: '1234567890',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenURI,
  });
}

export async function startVertexMock(): Promise<VertexMock> {
  const trusted = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const untrusted = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyId = randomBytes(20).toString('hex');
  const requests: VertexRequest[] = [];
  const tokenGrants: VertexMock['tokenGrants'] = [];
  const issued: string[] = [];
  const echoedAssertions: string[] = [];
  let metadataCalls = 0;
  let tokenURI = '';

  const issue = (res: ServerResponse): void => {
    const token = `ya29.mock-${randomBytes(24).toString('base64url')}`;
    issued.push(token);
    json(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://vertex');
    if (url.pathname === '/token' && req.method === 'POST') {
      const form = new URLSearchParams(raw);
      const refuse = (why: string): void => {
        tokenGrants.push({ ok: false, why });
        json(res, 400, { error: 'invalid_grant', error_description: why });
      };
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse('unsupported grant_type');
      const assertion = form.get('assertion') ?? '';
      try {
        const header = decodeProtectedHeader(assertion);
        if (header.kid !== keyId) return refuse('Invalid JWT Signature.');
        const { payload } = await jwtVerify(assertion, trusted.publicKey, {
          algorithms: ['RS256'],
          issuer: `llm-fallback@${PROJECT}.iam.gserviceaccount.com`,
          audience: tokenURI,
        });
        if (payload.scope !== 'https://www.googleapis.com/auth/cloud-platform') return refuse('Invalid OAuth scope or ID token audience provided.');
        if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number' || payload.exp - payload.iat > 3600)
          return refuse('Invalid JWT: Token must be a short-lived token (60 minutes)');
      } catch {
        return refuse('Invalid JWT Signature.');
      }
      tokenGrants.push({ ok: true });
      return issue(res);
    }
    if (url.pathname === '/token-echo' && req.method === 'POST') {
      const assertion = new URLSearchParams(raw).get('assertion') ?? '';
      echoedAssertions.push(assertion);
      return json(res, 400, { error: 'invalid_grant', error_description: `Invalid JWT Signature: ${assertion}` });
    }
    if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/token' && req.method === 'GET') {
      if (req.headers['metadata-flavor'] !== 'Google') return json(res, 403, { error: 'Missing Metadata-Flavor:Google header.' });
      metadataCalls++;
      return issue(res);
    }
    const match =
      /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:]+):(generateContent|streamGenerateContent|rawPredict|streamRawPredict)$/.exec(
        url.pathname,
      );
    if (req.method !== 'POST' || !match)
      return json(res, 404, { error: { code: 404, message: 'The requested URL was not found on this server.', status: 'NOT_FOUND' } });
    const bearer = /^Bearer (.+)$/.exec(String(req.headers['authorization'] ?? ''))?.[1];
    if (!bearer || !issued.includes(bearer))
      return json(res, 401, {
        error: {
          code: 401,
          message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
          status: 'UNAUTHENTICATED',
        },
      });
    const [, project, location, publisher, rawModel, method] = match as unknown as [string, string, string, 'google' | 'anthropic', string, string];
    if (project !== PROJECT || location !== LOCATION)
      return json(res, 403, { error: { code: 403, message: `Permission denied on resource project ${project}.`, status: 'PERMISSION_DENIED' } });
    const anthropicMethod = method === 'rawPredict' || method === 'streamRawPredict';
    if ((publisher === 'anthropic') !== anthropicMethod)
      return json(res, 400, { error: { code: 400, message: `${method} is not supported by publisher ${publisher}`, status: 'FAILED_PRECONDITION' } });
    const model = decodeURIComponent(rawModel);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: { code: 400, message: 'Invalid JSON payload received.', status: 'INVALID_ARGUMENT' } });
    }
    requests.push({ publisher, model, method, query: url.searchParams, headers: req.headers, body });
    if (model.includes('429'))
      return json(res, 429, {
        error: {
          code: 429,
          message:
            'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
          status: 'RESOURCE_EXHAUSTED',
        },
      });
    if (model.includes('echo-token'))
      return json(res, 400, { error: { code: 400, message: `token ${bearer} is not allowed for this model`, status: 'INVALID_ARGUMENT' } });
    const text = `Hello from vertex ${model}`;
    if (publisher === 'anthropic') {
      if (body['anthropic_version'] !== 'vertex-2023-10-16')
        return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: "anthropic_version: Input should be 'vertex-2023-10-16'" } });
      if (!Array.isArray(body['messages']) || typeof body['max_tokens'] !== 'number')
        return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'messages and max_tokens are required' } });
      const streamed = method === 'streamRawPredict';
      if (streamed !== (body['stream'] === true))
        return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'stream must match the method' } });
      const message = {
        id: 'msg_vrtx_01',
        type: 'message',
        role: 'assistant',
        model,
        content: [] as object[],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 8, output_tokens: 1 },
      };
      if (!streamed)
        return json(res, 200, { ...message, content: [{ type: 'text', text }], stop_reason: 'end_turn', usage: { input_tokens: 8, output_tokens: 3 } });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = (name: string, data: object): void => void res.write(`event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`);
      event('message_start', { message });
      event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      event('ping', {});
      for (const piece of text.split(/(?= )/)) event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } });
      event('content_block_stop', { index: 0 });
      event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } });
      event('message_stop', {});
      res.end();
      return;
    }
    if (!Array.isArray(body['contents'])) return json(res, 400, { error: { code: 400, message: 'contents is required', status: 'INVALID_ARGUMENT' } });
    const usageMetadata = { promptTokenCount: 7, candidatesTokenCount: 3, totalTokenCount: 10 };
    if (method === 'generateContent')
      return json(res, 200, {
        candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', avgLogprobs: -0.1 }],
        usageMetadata,
        modelVersion: model,
        createTime: new Date().toISOString(),
        responseId: 'vrtx-1',
      });
    if (url.searchParams.get('alt') !== 'sse')
      return json(res, 400, {
        error: { code: 400, message: 'streamGenerateContent without alt=sse answers a JSON array; this mock speaks SSE only', status: 'INVALID_ARGUMENT' },
      });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const pieces = text.split(/(?= )/);
    pieces.forEach((piece, i) => {
      const last = i === pieces.length - 1;
      res.write(
        `data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: piece }] }, ...(last ? { finishReason: 'STOP' } : {}) }], ...(last ? { usageMetadata } : {}), modelVersion: model })}\r\n\r\n`,
      );
    });
    res.end();
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on(
      'end',
      () =>
        void handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((error: unknown) =>
          json(res, 500, { error: { code: 500, message: String(error), status: 'INTERNAL' } }),
        ),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  tokenURI = `${url}/token`;
  return {
    url,
    baseURL: `${url}/v1/projects/${PROJECT}/locations/${LOCATION}`,
    serviceAccountJson: serviceAccount(tokenURI, trusted.privateKey, keyId),
    untrustedServiceAccountJson: serviceAccount(tokenURI, untrusted.privateKey, keyId),
    echoingServiceAccountJson: serviceAccount(`${url}/token-echo`, trusted.privateKey, keyId),
    echoedAssertions,
    metadataHost: `127.0.0.1:${port}`,
    requests,
    tokenGrants,
    issued,
    get metadataCalls() {
      return metadataCalls;
    },
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function json(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}
