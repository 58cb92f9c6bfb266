// The typed values the engine decides on. Everything here is plain data: the
// config loaders produce it, the pure core reads it, the adapters carry it.

export const FAILURE_CLASSES = ['rateLimited', 'serverError', 'timeout', 'connection', 'authFailed', 'contextLength', 'contentFiltered', 'badRequest'] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

/** A provider's `api:`: the wire formats with an upstream codec (src/wire/registry.ts). */
export type { ApiFormat } from '../wire/registry.ts';
import type { ApiFormat } from '../wire/registry.ts';

export interface Price {
  inputPerMTok: number;
  outputPerMTok: number;
  cachedInputPerMTok?: number;
}

/** Local request/token rates a target may receive (token buckets), so it is not sent what it would answer with 429. */
export interface Limits {
  /** Requests per minute. */
  rpm?: number;
  /** Tokens (estimated input + bounded output) per minute. */
  tpm?: number;
}

export const PRIORITIES = ['speed', 'quality', 'cheapest'] as const;
/** How a request orders the eligible steps: by measured latency, by listed order, or by price. */
export type Priority = (typeof PRIORITIES)[number];

export interface StepTimeouts {
  firstByteMs: number;
  idleMs: number;
  totalMs: number;
}

export const PREFILL_SUPPORT = ['supported', 'unsupported', 'auto'] as const;
/**
 * Whether a target continues an answer from a trailing assistant message (prefill): how a
 * stream broken mid-way is resumed on it (continuation, or a verified restart); auto learns
 * it from the target's first rejection.
 */
export type PrefillSupport = (typeof PREFILL_SUPPORT)[number];

/** When a stream is committed to the caller: nothing is sent before, and any failure until then is an ordinary fallback. */
export type StreamCommit =
  | { kind: 'firstEvent' }
  /** After this many content events (about one token each) are held. */
  | { kind: 'tokens'; tokens: number }
  /** Only once the whole answer is held. */
  | { kind: 'complete' };

export interface StreamPolicy {
  commit: StreamCommit;
  /** While an answer is held longer than this, an SSE comment keeps the caller's connection alive. */
  heartbeatMs: number;
}

export const DEFAULT_STREAM_POLICY: StreamPolicy = Object.freeze({ commit: Object.freeze({ kind: 'firstEvent' as const }), heartbeatMs: 10_000 });

export interface Provider {
  name: string;
  api: ApiFormat;
  baseURL: string;
  /** The resolved key; undefined when its source could not be read (see keyProblem). */
  apiKey: string | undefined;
  /** Why the key is missing, e.g. "environment variable DEEPSEEK_API_KEY is not set". */
  keyProblem?: string;
  /** The constant behind keyProblem (e.g. local_credentials_refused), for skip reasons and /config. */
  keyProblemCode?: string;
  /** Where the key comes from, for /config and logs (never the key itself). */
  keySource: string;
  /** Resolved header values (those read from the Secret included). */
  headers: Record<string, string>;
  /** Names of headers whose values come from the credentials Secret: credentials, redacted like the key. */
  secretHeaders?: readonly string[];
  /** Azure OpenAI's api-version (api: azure-openai); its unit's default when unset. */
  apiVersion?: string;
  /** AWS credentials (api: bedrock), resolved; absent when they could not be read (see keyProblem). */
  aws?: AwsCredentialSource;
  /** Google credentials (api: vertex), resolved; absent when they could not be read (see keyProblem). */
  gcp?: GcpCredentialSource;
  /** Microsoft Entra workload identity (api: azure-openai): a bearer token instead of the api-key. */
  azure?: AzureCredentialSource;
}

/** AKS workload identity: the federated service-account token exchanged at Entra's token endpoint (client credentials with a client assertion). */
export interface AzureCredentialSource {
  tenantId: string;
  clientId: string;
  tokenFile: string;
  /** {authorityHost}{tenantId}/oauth2/v2.0/token */
  tokenURL: string;
}

/** Where a Vertex provider's OAuth2 access token comes from. The private key is a secret, and so is every token. */
export type GcpCredentialSource =
  /** A service-account key: a JWT signed with it is exchanged at its token_uri (the JWT bearer grant). */
  | { kind: 'serviceAccount'; clientEmail: string; privateKey: string; privateKeyId?: string; tokenURI: string; keyJson: string }
  /** GKE workload identity: the metadata server hands out the pod's service account token. */
  | { kind: 'metadata'; metadataURL: string };

/** Where a Bedrock provider's SigV4 credentials come from. Every string but the region and role ARN is a secret. */
export interface AwsCredentialSource {
  region: string;
  credentials:
    | { kind: 'static'; accessKeyId: string; secretAccessKey: string; sessionToken?: string }
    /** IRSA: the pod's role, exchanged through STS AssumeRoleWithWebIdentity (cached until expiry). */
    | { kind: 'webIdentity'; roleArn: string; tokenFile: string; stsURL: string };
}

/**
 * One upstream target of a chain step. A plain step has one; a step with `targets` (a group
 * of equivalent deployments or keys) has several, all with the same `index`, consecutive in
 * Chain.steps. Attempts, breakers and routing state work on targets.
 */
export interface Target {
  /** The step of the document this target belongs to. */
  index: number;
  provider: Provider;
  model: string;
  retries: number;
  timeouts: StepTimeouts;
  /** The effective price: the target's, else the step's, else the built-in table's (see priceSource). */
  price?: Price;
  /** Where `price` came from; undefined when no price is known. */
  priceSource?: 'config' | 'builtin';
  /** Identity of the upstream target; breakers are keyed by it so they survive reloads. */
  target: string;
  /** Share of a group's traffic (default 1); 0: only when the weighted targets of its group failed. */
  weight?: number;
  /** Local rate limits of this target. */
  limits?: Limits;
  /** Largest answer (in tokens) this step may produce: sent upstream and used for worst-case cost. */
  maxOutputTokens?: number;
  /** The step's, else the provider's, else the default of its wire format (the format's prefillByDefault, src/wire/). */
  prefill?: PrefillSupport;
}

/**
 * The old name of Target (it meant a target, not a document step). Kept only so branches
 * written against it (the Responses API unit) merge; remove once they have.
 * @deprecated use Target
 */
export type Step = Target;

export interface Backoff {
  baseMs: number;
  maxMs: number;
  jitter: 'full' | 'none';
}

export interface Policy {
  retryOn: ReadonlySet<FailureClass>;
  fallbackOn: ReadonlySet<FailureClass>;
  backoff: Backoff;
  deadlineMs: number;
  /** Start the next eligible target in parallel after this long without a first byte; 0: never. */
  hedgeAfterMs: number;
  /** Hedges allowed in flight at once (default 1). */
  hedgeMaxInFlight?: number;
  /** Demote targets clearly worse than the next step (EWMA error rate and latency). */
  adaptive?: boolean;
  /** Order used when a request does not ask for one (default quality: listed order). */
  priority?: Priority;
  /** Commit point and heartbeats of streams (default: commit at the first event). */
  stream?: StreamPolicy;
}

export interface BreakerSettings {
  failureThreshold: number;
  windowMs: number;
  cooldownMs: number;
}

export interface Chain {
  /** metadata.name */
  name: string;
  namespace?: string;
  /** The model name the app asks for. */
  model: string;
  steps: Target[];
  policy: Policy;
  breaker: BreakerSettings;
  maxCostPerRequestUSD?: number;
  /** Where the chain came from: "file.yaml#2" or "namespace/name". */
  source: string;
}

/** Token counts normalised across wire formats. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
}

export function targetKey(provider: Pick<Provider, 'name' | 'baseURL'>, model: string): string {
  return `${provider.name}|${provider.baseURL}|${model}`;
}
