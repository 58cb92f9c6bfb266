// Turns validated documents into the engine's Chain values, resolving API keys.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { builtinPrice } from '../core/prices.ts';
import { prefillByDefault } from '../wire/registry.ts';
import {
  targetKey,
  type AwsCredentialSource,
  type AzureCredentialSource,
  type Chain,
  type GcpCredentialSource,
  type Price,
  type Provider,
  type Target,
  type StreamCommit,
} from '../core/types.ts';
import { hostRefusal, readHostBinding, type HostBinding } from './credential-hosts.ts';
import {
  CREDENTIAL_PROBLEM,
  isSecretKeyName,
  LOCAL_POLICY,
  LOCAL_REFUSED_MESSAGE,
  localSourceAllowed,
  SECRET_KEY_RULE,
  WORKLOAD_IDENTITY_REFUSED_MESSAGE,
  type CredentialPolicy,
  type CredentialProblemCode,
} from './credential-rules.ts';
import type { ApiKeyRef, AuthSpec, AwsAuthSpec, FallbackChainDoc, ProviderSpec, TargetSpec } from './spec.ts';

export interface KeySources {
  env: Readonly<Record<string, string | undefined>>;
  /** Folder of the mounted credentials Secret, one file per key. */
  credentialsDir: string;
  /** Which sources chains may use; default: every source (local files). */
  policy?: CredentialPolicy;
}

export function resolveChain(doc: FallbackChainDoc, source: string, keys: KeySources): Chain {
  const { spec } = doc;
  // Read once per chain: every provider of one snapshot sees the same binding.
  const binding = readHostBinding(keys.credentialsDir);
  const providers = new Map(spec.providers.map((p) => [p.name, resolveProvider(p, keys, binding)]));
  const providerSpecs = new Map(spec.providers.map((p) => [p.name, p]));
  const steps: Target[] = spec.steps.flatMap((s, index) => {
    // A plain step is a group of one target.
    const targets: TargetSpec[] = s.targets ?? [{ provider: s.provider ?? '', model: s.model ?? '', weight: 1 }];
    return targets.map((t) => {
      const provider = providers.get(t.provider);
      // validateChainDocument guarantees every step's provider exists.
      if (!provider) throw new Error(`step ${index} names unknown provider ${t.provider}`);
      const step: Target = {
        index,
        provider,
        model: t.model,
        retries: s.retries,
        timeouts: s.timeouts,
        ...priceOf(t.price ?? s.price, t.model),
        target: targetKey(provider, t.model),
        prefill: s.prefill ?? providerSpecs.get(t.provider)?.prefill ?? (prefillByDefault(provider.api) ? 'supported' : 'unsupported'),
      };
      if (s.targets) step.weight = t.weight;
      const limits = t.limits ?? s.limits;
      if (limits) step.limits = limits;
      if (s.maxOutputTokens !== undefined) step.maxOutputTokens = s.maxOutputTokens;
      return step;
    });
  });
  const { policy, circuitBreaker } = spec;
  return {
    name: doc.metadata.name,
    namespace: doc.metadata.namespace,
    model: spec.model ?? doc.metadata.name,
    steps,
    policy: {
      retryOn: new Set(policy.retryOn),
      fallbackOn: new Set(policy.fallbackOn),
      backoff: policy.backoff,
      deadlineMs: policy.deadlineMs,
      hedgeAfterMs: policy.hedge.afterMs,
      hedgeMaxInFlight: policy.hedge.maxInFlight,
      adaptive: policy.adaptive,
      priority: policy.priority,
      stream: { commit: commitOf(policy.stream), heartbeatMs: policy.stream.heartbeatMs },
    },
    breaker: {
      failureThreshold: circuitBreaker.failureThreshold,
      windowMs: Math.round(circuitBreaker.windowSeconds * 1000),
      cooldownMs: Math.round(circuitBreaker.cooldownSeconds * 1000),
    },
    maxCostPerRequestUSD: spec.budget?.maxCostPerRequestUSD,
    source,
  };
}

function commitOf(stream: FallbackChainDoc['spec']['policy']['stream']): StreamCommit {
  if (stream.commit === 'tokens') return { kind: 'tokens', tokens: stream.tokens };
  return { kind: stream.commit };
}

/** The configured price (missing rates are 0), else the built-in table's for the model. */
function priceOf(configured: Partial<Price> | undefined, model: string): Pick<Target, 'price' | 'priceSource'> {
  if (configured) {
    return {
      price: { inputPerMTok: configured.inputPerMTok ?? 0, outputPerMTok: configured.outputPerMTok ?? 0, cachedInputPerMTok: configured.cachedInputPerMTok },
      priceSource: 'config',
    };
  }
  const builtin = builtinPrice(model);
  return builtin ? { price: builtin, priceSource: 'builtin' } : {};
}

function resolveProvider(spec: ProviderSpec, keys: KeySources, binding: HostBinding): Provider {
  const secret: SecretRead = (secretKey) => {
    // An invalid name is refused by readSecretKey first; a valid one must be allowed for this host.
    const refused = isSecretKeyName(secretKey) ? hostRefusal(binding, secretKey, spec.baseURL) : undefined;
    return refused ? { problem: refused, code: CREDENTIAL_PROBLEM.hostNotAllowed } : readSecretKey(secretKey, keys);
  };
  const key = readKey(spec.apiKey, keys, secret);
  const headers: Record<string, string> = {};
  const secretHeaders: string[] = [];
  let problem: KeyRead | undefined = key.problem ? key : undefined;
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    const read = typeof value === 'string' ? { value } : secret(value.valueFrom.secretKey);
    if (read.value !== undefined) headers[name] = read.value;
    if (typeof value !== 'string') secretHeaders.push(name);
    if (read.problem && !problem) problem = { problem: `header ${name}: ${read.problem}`, code: read.code };
  }
  const provider: Provider = {
    name: spec.name,
    api: spec.api,
    baseURL: spec.baseURL.replace(/\/+$/, ''),
    apiKey: key.value,
    keyProblem: problem?.problem,
    keySource: describeKeySource(spec.apiKey),
    headers,
  };
  if (problem?.code) provider.keyProblemCode = problem.code;
  if (secretHeaders.length > 0) provider.secretHeaders = secretHeaders;
  if (spec.apiVersion !== undefined) provider.apiVersion = spec.apiVersion;
  if (spec.auth?.aws) {
    const aws = resolveAws(spec.auth.aws, keys, secret);
    if ('problem' in aws) {
      if (!provider.keyProblem) {
        provider.keyProblem = aws.problem;
        if (aws.code) provider.keyProblemCode = aws.code;
      }
    } else provider.aws = aws;
    provider.keySource = spec.auth.aws.webIdentity === true ? 'aws:webIdentity' : `aws:${describeKeySource(spec.auth.aws.accessKeyId)}`;
  }
  if (spec.auth?.azureWorkloadIdentity === true) {
    const azure = resolveAzure(keys);
    if ('problem' in azure) {
      if (!provider.keyProblem) {
        provider.keyProblem = azure.problem;
        if (azure.code) provider.keyProblemCode = azure.code;
      }
    } else provider.azure = azure;
    provider.keySource = 'azure:workloadIdentity';
  }
  if (spec.auth?.gcpServiceAccount !== undefined || spec.auth?.gcpWorkloadIdentity === true) {
    const gcp = resolveGcp(spec.auth, keys, secret);
    if ('problem' in gcp) {
      if (!provider.keyProblem) {
        provider.keyProblem = gcp.problem;
        if (gcp.code) provider.keyProblemCode = gcp.code;
      }
    } else provider.gcp = gcp;
    provider.keySource = spec.auth.gcpServiceAccount ? `gcpServiceAccount:${describeKeySource(spec.auth.gcpServiceAccount)}` : 'gcp:workloadIdentity';
  }
  return provider;
}

interface KeyRead {
  value?: string;
  problem?: string;
  code?: CredentialProblemCode;
}

/**
 * An Azure OpenAI provider's Entra workload identity: the client, tenant and federated token
 * file from the sidecar's environment (set by AKS's workload identity webhook), never from the
 * chain, and only when the policy allows the pod's own identity.
 */
function resolveAzure(keys: KeySources): AzureCredentialSource | { problem: string; code?: CredentialProblemCode } {
  if (!localSourceAllowed(keys.policy ?? LOCAL_POLICY))
    return { problem: `auth.azureWorkloadIdentity ${WORKLOAD_IDENTITY_REFUSED_MESSAGE}`, code: CREDENTIAL_PROBLEM.localRefused };
  const tenantId = keys.env['AZURE_TENANT_ID'];
  const clientId = keys.env['AZURE_CLIENT_ID'];
  const tokenFile = keys.env['AZURE_FEDERATED_TOKEN_FILE'];
  if (!tenantId || !clientId || !tokenFile)
    return {
      problem:
        "auth.azureWorkloadIdentity: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE are not all set (is workload identity enabled for the pod's service account?)",
      code: CREDENTIAL_PROBLEM.unavailable,
    };
  const authority = (keys.env['AZURE_AUTHORITY_HOST'] ?? 'https://login.microsoftonline.com/').replace(/\/*$/, '/');
  return { tenantId, clientId, tokenFile, tokenURL: `${authority}${encodeURIComponent(tenantId)}/oauth2/v2.0/token` };
}

/**
 * A Vertex provider's Google credentials: a service-account JSON key read like an apiKey, or
 * the pod's workload identity (the metadata server; GCE_METADATA_HOST overrides its address,
 * as Google's client libraries read it), only when the policy allows the pod's own identity.
 */
function resolveGcp(auth: AuthSpec, keys: KeySources, secret: SecretRead): GcpCredentialSource | { problem: string; code?: CredentialProblemCode } {
  if (auth.gcpWorkloadIdentity === true) {
    if (!localSourceAllowed(keys.policy ?? LOCAL_POLICY))
      return { problem: `auth.gcpWorkloadIdentity ${WORKLOAD_IDENTITY_REFUSED_MESSAGE}`, code: CREDENTIAL_PROBLEM.localRefused };
    const host = keys.env['GCE_METADATA_HOST'] ?? 'metadata.google.internal';
    return { kind: 'metadata', metadataURL: `http://${host}/computeMetadata/v1/instance/service-accounts/default/token` };
  }
  const read = readKey(auth.gcpServiceAccount, keys, secret);
  if (read.problem !== undefined || read.value === undefined)
    return { problem: `auth.gcpServiceAccount: ${read.problem ?? 'no value'}`, ...(read.code ? { code: read.code } : {}) };
  let key: unknown;
  try {
    key = JSON.parse(read.value);
  } catch {
    return { problem: 'auth.gcpServiceAccount is not a service-account JSON key (not JSON)', code: CREDENTIAL_PROBLEM.unavailable };
  }
  const field = (name: string): string | undefined =>
    typeof key === 'object' && key !== null && typeof (key as Record<string, unknown>)[name] === 'string'
      ? ((key as Record<string, unknown>)[name] as string)
      : undefined;
  const clientEmail = field('client_email');
  const privateKey = field('private_key');
  if (field('type') !== 'service_account' || !clientEmail || !privateKey)
    return {
      problem: 'auth.gcpServiceAccount is not a service-account JSON key (type service_account, client_email, private_key)',
      code: CREDENTIAL_PROBLEM.unavailable,
    };
  const privateKeyId = field('private_key_id');
  return {
    kind: 'serviceAccount',
    clientEmail,
    privateKey,
    ...(privateKeyId ? { privateKeyId } : {}),
    tokenURI: field('token_uri') ?? 'https://oauth2.googleapis.com/token',
    keyJson: read.value,
  };
}

/**
 * A Bedrock provider's AWS credentials. The key pair is read like an apiKey (each part from
 * its own source, under the same policy); webIdentity takes the role and token file from the
 * sidecar's environment (set by EKS for IRSA), never from the chain, and only when the policy
 * allows the pod's own credentials (see credential-rules.ts).
 */
function resolveAws(spec: AwsAuthSpec, keys: KeySources, secret: SecretRead): AwsCredentialSource | { problem: string; code?: CredentialProblemCode } {
  if (spec.webIdentity === true) {
    if (!localSourceAllowed(keys.policy ?? LOCAL_POLICY))
      return { problem: `auth.aws.webIdentity ${WORKLOAD_IDENTITY_REFUSED_MESSAGE}`, code: CREDENTIAL_PROBLEM.localRefused };
    const roleArn = keys.env['AWS_ROLE_ARN'];
    const tokenFile = keys.env['AWS_WEB_IDENTITY_TOKEN_FILE'];
    if (!roleArn || !tokenFile)
      return {
        problem: "auth.aws.webIdentity: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not both set (is IRSA configured for the pod's service account?)",
        code: CREDENTIAL_PROBLEM.unavailable,
      };
    const stsURL = (keys.env['AWS_ENDPOINT_URL_STS'] ?? `https://sts.${spec.region}.amazonaws.com`).replace(/\/+$/, '');
    return { region: spec.region, credentials: { kind: 'webIdentity', roleArn, tokenFile, stsURL } };
  }
  const id = readKey(spec.accessKeyId, keys, secret);
  const key = readKey(spec.secretAccessKey, keys, secret);
  const token = spec.sessionToken ? readKey(spec.sessionToken, keys, secret) : {};
  const problem = [
    ['accessKeyId', id],
    ['secretAccessKey', key],
    ['sessionToken', token],
  ].find(([, read]) => (read as KeyRead).problem !== undefined) as [string, KeyRead] | undefined;
  if (problem) return { problem: `auth.aws.${problem[0]}: ${problem[1].problem ?? ''}`, ...(problem[1].code ? { code: problem[1].code } : {}) };
  if (!id.value || !key.value) return { problem: 'auth.aws needs accessKeyId and secretAccessKey', code: CREDENTIAL_PROBLEM.unavailable };
  return {
    region: spec.region,
    credentials: { kind: 'static', accessKeyId: id.value, secretAccessKey: key.value, ...(token.value ? { sessionToken: token.value } : {}) },
  };
}
type SecretRead = (secretKey: string) => KeyRead;

// A missing key is not a config error: the step is skipped with this reason, so a
// newcomer can start the examples with only some keys set. A refused source is not one
// either: the chain author may not take the pod's files or environment (see credential-rules.ts).
function readKey(ref: ApiKeyRef | undefined, keys: KeySources, secret: SecretRead): KeyRead {
  if (!ref) return {};
  const policy = keys.policy ?? LOCAL_POLICY;
  if (ref.secretKey !== undefined) return secret(ref.secretKey);
  if (!localSourceAllowed(policy)) {
    const source = ref.env !== undefined ? 'apiKey.env' : 'apiKey.file';
    return { problem: `${source} ${LOCAL_REFUSED_MESSAGE}`, code: CREDENTIAL_PROBLEM.localRefused };
  }
  if (ref.env !== undefined) {
    const value = keys.env[ref.env];
    return value ? { value: value.trim() } : { problem: `environment variable ${ref.env} is not set`, code: CREDENTIAL_PROBLEM.unavailable };
  }
  const file = ref.file ?? '';
  try {
    const value = readFileSync(file, 'utf8').trim();
    return value ? { value } : { problem: `key file ${file} is empty`, code: CREDENTIAL_PROBLEM.unavailable };
  } catch {
    return { problem: `key file ${file} cannot be read`, code: CREDENTIAL_PROBLEM.unavailable };
  }
}

/**
 * The file of the credentials Secret named `secretKey`. Defensive even though validation
 * checks the name: only a Secret key name is joined, and the result must still be a direct
 * child of the credentials folder, so no name can read a file outside it.
 */
function readSecretKey(secretKey: string, keys: KeySources): KeyRead {
  const dir = path.resolve(keys.credentialsDir);
  const file = path.resolve(dir, secretKey);
  if (!isSecretKeyName(secretKey) || path.dirname(file) !== dir) {
    return { problem: `secretKey ${JSON.stringify(secretKey)} ${SECRET_KEY_RULE}`, code: CREDENTIAL_PROBLEM.invalidSecretKey };
  }
  try {
    const value = readFileSync(file, 'utf8').trim();
    return value ? { value } : { problem: `credentials Secret key "${secretKey}" is empty`, code: CREDENTIAL_PROBLEM.unavailable };
  } catch {
    return { problem: `credentials Secret has no readable key "${secretKey}" (${file})`, code: CREDENTIAL_PROBLEM.unavailable };
  }
}

function describeKeySource(ref: ApiKeyRef | undefined): string {
  if (!ref) return 'none';
  if (ref.env !== undefined) return `env:${ref.env}`;
  if (ref.file !== undefined) return `file:${ref.file}`;
  return `secretKey:${ref.secretKey}`;
}
