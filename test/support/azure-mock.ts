// A strict Azure OpenAI data plane on 127.0.0.1, checking what Azure checks before it answers:
//   POST /openai/deployments/{deployment}/chat/completions?api-version=<known version>
//   POST /openai/v1/chat/completions (the v1 API: no api-version, the deployment in `model`)
// with the resource key in `api-key`, or an Entra token this mock's token endpoint issued in
// `Authorization: Bearer` (a wrong or missing key: Azure's 401 body; an unknown
// path or a missing api-version: Azure's 404 "Resource not found"). The deployment name picks
// the behaviour: `ok…` (an answer, or OpenAI chunks with Azure's prompt_filter_results first
// chunk and content_filter_results), `throttled…` (429 with retry-after-ms and a long
// retry-after, the first time only), `filtered…` (Azure's 400 content_filter body), `down…`
// (503 ServiceUnavailable).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';

export interface AzureRequest {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  deployment: string;
}

export interface AzureMock {
  endpoint: string;
  /** AZURE_AUTHORITY_HOST for the Entra token endpoint on this mock. */
  authorityHost: string;
  requests: AzureRequest[];
  /** Entra token exchanges, with why one was refused. */
  entraGrants: Array<{ ok: boolean; why?: string }>;
  /** Access tokens Entra handed out (accepted as Authorization: Bearer). */
  issued: string[];
  close(): Promise<void>;
}

const KNOWN_VERSIONS = new Set(['2024-10-21', '2025-01-01-preview', '2024-06-01']);
const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' },
  self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' },
  violence: { filtered: false, severity: 'safe' },
};

export interface EntraIdentity {
  tenantId: string;
  clientId: string;
  federatedToken: string;
}

export async function startAzureMock(apiKey: string, retryAfterMs = 150, entra?: EntraIdentity): Promise<AzureMock> {
  const requests: AzureRequest[] = [];
  const entraGrants: AzureMock['entraGrants'] = [];
  const issued: string[] = [];
  const throttled = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://azure');
      // Entra: POST /{tenant}/oauth2/v2.0/token, client credentials with the federated token as the client assertion.
      const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
      if (tokenPath && req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const why =
          !entra || tokenPath[1] !== entra.tenantId
            ? 'AADSTS90002: Tenant not found.'
            : form.get('grant_type') !== 'client_credentials'
              ? 'AADSTS70003: unsupported grant_type'
              : form.get('client_id') !== entra.clientId
                ? 'AADSTS700016: Application not found in the directory.'
                : form.get('scope') !== 'https://cognitiveservices.azure.com/.default'
                  ? "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
                  : form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' ||
                      form.get('client_assertion') !== entra.federatedToken
                    ? // Quoting the presented assertion, as a careless token endpoint would.
                      `AADSTS700211: No matching federated identity record found for presented assertion ${form.get('client_assertion') ?? ''}.`
                    : undefined;
        entraGrants.push(why ? { ok: false, why } : { ok: true });
        if (why)
          return send(res, 400, {
            error: why.startsWith('AADSTS90002') ? 'invalid_request' : 'invalid_client',
            error_description: why,
            error_codes: [Number(/\d+/.exec(why)?.[0])],
          });
        const token = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.mock-entra-${issued.length + 1}-${Math.random().toString(36).slice(2)}`;
        issued.push(token);
        return send(res, 200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return send(res, 400, { error: { code: 'BadRequest', message: 'invalid JSON' } });
      }
      const deploymentPath = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(url.pathname);
      const v1 = url.pathname === '/openai/v1/chat/completions';
      if (req.method !== 'POST' || (!deploymentPath && !v1) || (deploymentPath && !KNOWN_VERSIONS.has(url.searchParams.get('api-version') ?? ''))) {
        return send(res, 404, { error: { code: '404', message: 'Resource not found' } });
      }
      const bearer = /^Bearer (.+)$/.exec(String(req.headers['authorization'] ?? ''))?.[1];
      if (req.headers['api-key'] !== apiKey && !(bearer !== undefined && issued.includes(bearer))) {
        return send(res, 401, {
          error: {
            code: '401',
            message:
              'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
          },
        });
      }
      const deployment = deploymentPath ? decodeURIComponent(deploymentPath[1] ?? '') : String(body['model']);
      requests.push({ path: url.pathname, query: url.searchParams, headers: req.headers, body, deployment });
      if (deployment.startsWith('throttled') && !throttled.has(deployment)) {
        throttled.add(deployment);
        res.setHeader('retry-after-ms', String(retryAfterMs));
        res.setHeader('retry-after', '60');
        return send(res, 429, {
          error: {
            code: '429',
            message:
              'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.',
          },
        });
      }
      if (deployment.startsWith('down')) {
        return send(res, 503, {
          error: { code: 'ServiceUnavailable', message: 'The service is temporarily unable to process your request. Please try again later.' },
        });
      }
      if (deployment.startsWith('filtered')) {
        return send(res, 400, {
          error: {
            message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            type: null,
            param: 'prompt',
            code: 'content_filter',
            status: 400,
            innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: { ...FILTER_OK, violence: { filtered: true, severity: 'high' } } },
          },
        });
      }
      const text = `Hello from azure ${deployment}`;
      const usage = { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 };
      if (body['stream'] === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const base = { id: 'chatcmpl-az1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_az' };
        res.write(
          `data: ${JSON.stringify({ id: '', object: '', created: 0, model: '', choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTER_OK }] })}\n\n`,
        );
        res.write(
          `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, content_filter_results: {} }] })}\n\n`,
        );
        for (const word of text.split(/(?= )/))
          res.write(
            `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: word }, finish_reason: null, content_filter_results: FILTER_OK }] })}\n\n`,
          );
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop', content_filter_results: {} }] })}\n\n`);
        if ((body['stream_options'] as { include_usage?: boolean } | undefined)?.include_usage)
          res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      send(res, 200, {
        id: 'chatcmpl-az1',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-2024-08-06',
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTER_OK }],
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null, content_filter_results: FILTER_OK }],
        usage,
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    authorityHost: `http://127.0.0.1:${port}/`,
    requests,
    entraGrants,
    issued,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

function send(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json', 'apim-request-id': 'mock' });
  res.end(JSON.stringify(body));
}
