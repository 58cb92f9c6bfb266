// generated from src/chain/fallbackchain.schema.json by npm run gen:types — do not edit
// The TypeScript view of a FallbackChain after schema validation, with the defaults filled in.

/** Where the provider's API key comes from; exactly one of secretKey, env, file. */
export interface ApiKeyRef {
  /** A key of the credentials Secret mounted into the sidecar (a Secret key name: letters, digits, "-", "_", "."; not "." and no ".."). */
  secretKey?: string;
  /** An environment variable of the sidecar (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
  env?: string;
  /** A file whose contents are the key (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
  file?: string;
}

/** A header value: a string, or {valueFrom: {secretKey}}. */
export type HeaderValueSpec = string | {
  /** Where the value comes from. */
  valueFrom: {
    /** A key of the credentials Secret mounted into the sidecar. */
    secretKey: string;
  };
};

export interface ProviderSpec {
  /** Name that steps refer to; lowercase letters, digits and dashes. */
  name: string;
  /** Wire format the upstream speaks. Default: "openai". */
  api: 'openai' | 'anthropic' | 'gemini' | 'openai-responses' | 'azure-openai' | 'bedrock' | 'vertex';
  /** Base URL of the upstream API, e.g. https://api.deepseek.com/v1. */
  baseURL: string;
  /** Where the provider's API key comes from; exactly one of secretKey, env, file. */
  apiKey?: ApiKeyRef;
  /** Extra request headers sent to this upstream (e.g. an organisation id, Azure's api-key): a literal string, or {valueFrom: {secretKey: K}} to read the value from the credentials Secret (then it is treated as a credential). */
  headers?: {
    [name: string]: HeaderValueSpec;
  };
  /** Whether this upstream can continue an answer from a trailing assistant message (prefill), which resumes a stream broken mid-way by continuation. supported: send the delivered text as prefill; unsupported: ask for the whole answer again and verify it begins with the delivered text; auto: try prefill and fall back to the verified restart (remembered per target) when the upstream rejects it. Default per wire format: anthropic supported, openai, openai-responses and gemini unsupported. */
  prefill?: 'supported' | 'unsupported' | 'auto';
  /** Azure OpenAI's api-version query value (api: azure-openai; default 2024-10-21). Not used with an /openai/v1 baseURL. */
  apiVersion?: string;
  /** Credentials that are more than one string: aws (api: bedrock), gcpServiceAccount or gcpWorkloadIdentity (api: vertex), azureWorkloadIdentity (api: azure-openai). Every value, and every token derived from one, is a secret: redacted everywhere, like apiKey. */
  auth?: {
    /** AWS credentials for SigV4 (api: bedrock): an access key pair (and optional session token) from the credentials Secret, or webIdentity: the pod's IRSA role (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE of the sidecar, through STS AssumeRoleWithWebIdentity; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
    aws?: {
      /** The AWS region, e.g. us-east-1 (part of the signature). */
      region: string;
      /** The access key id. Exactly one of secretKey, env, file (env and file: local runs, or with --allow-local-credentials). */
      accessKeyId?: {
        /** A key of the credentials Secret mounted into the sidecar (a Secret key name: letters, digits, "-", "_", "."; not "." and no ".."). */
        secretKey?: string;
        /** An environment variable of the sidecar (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
        env?: string;
        /** A file whose contents are the key (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
        file?: string;
      };
      /** The secret access key. Exactly one of secretKey, env, file (env and file: local runs, or with --allow-local-credentials). */
      secretAccessKey?: {
        /** A key of the credentials Secret mounted into the sidecar (a Secret key name: letters, digits, "-", "_", "."; not "." and no ".."). */
        secretKey?: string;
        /** An environment variable of the sidecar (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
        env?: string;
        /** A file whose contents are the key (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
        file?: string;
      };
      /** A session token (temporary credentials). Exactly one of secretKey, env, file (env and file: local runs, or with --allow-local-credentials). */
      sessionToken?: {
        /** A key of the credentials Secret mounted into the sidecar (a Secret key name: letters, digits, "-", "_", "."; not "." and no ".."). */
        secretKey?: string;
        /** An environment variable of the sidecar (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
        env?: string;
        /** A file whose contents are the key (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
        file?: string;
      };
      /** Use the pod's IRSA web identity instead of a key pair. */
      webIdentity?: boolean;
    };
    /** A Google service-account JSON key (the whole file, as Google issues it): its private key signs the JWT bearer grant at its token_uri (api: vertex). Exactly one of secretKey, env, file (env and file: local runs, or with --allow-local-credentials). */
    gcpServiceAccount?: {
      /** A key of the credentials Secret mounted into the sidecar (a Secret key name: letters, digits, "-", "_", "."; not "." and no ".."). */
      secretKey?: string;
      /** An environment variable of the sidecar (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
      env?: string;
      /** A file whose contents are the key (local runs; refused in Kubernetes unless the sidecar runs with --allow-local-credentials). */
      file?: string;
    };
    /** Use the pod's GKE workload identity (the metadata server's token for its Google service account) instead of a key (api: vertex); refused in Kubernetes unless the sidecar runs with --allow-local-credentials. */
    gcpWorkloadIdentity?: boolean;
    /** Use the pod's Microsoft Entra workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE of the sidecar) for a bearer token instead of an api-key (api: azure-openai); refused in Kubernetes unless the sidecar runs with --allow-local-credentials. */
    azureWorkloadIdentity?: boolean;
  };
}

export interface PriceSpec {
  /** USD per million input tokens. */
  inputPerMTok?: number;
  /** USD per million output tokens. */
  outputPerMTok?: number;
  /** USD per million cached input tokens; defaults to inputPerMTok. */
  cachedInputPerMTok?: number;
}

export interface LimitsSpec {
  /** Requests per minute; more are not sent (the target is skipped until the bucket refills). */
  rpm?: number;
  /** Tokens per minute: estimated input (characters / 4) plus the request's output bound. */
  tpm?: number;
}

export interface TargetSpec {
  /** Name of a provider declared in spec.providers. */
  provider: string;
  /** Model name sent to this target. */
  model: string;
  /** Share of the group's traffic; 0: a standby, tried only after the weighted targets. Default: 1. */
  weight: number;
  /** USD per million tokens for this target; overrides the step's price and the built-in table. */
  price?: PriceSpec;
  /** Local rate limits of this target; default: the step's limits. */
  limits?: LimitsSpec;
}

/** Per-attempt time limits, each capped by what is left of policy.deadlineMs. Default: {}. */
export interface StepTimeoutsSpec {
  /** Streaming: time allowed until the first event arrives. Default: 10000. */
  firstByteMs: number;
  /** Streaming: longest silence allowed between two events. Default: 30000. */
  idleMs: number;
  /** Time allowed for the whole attempt. Default: 120000. */
  totalMs: number;
}

export interface StepSpec {
  /** Name of a provider declared in spec.providers (with model; or use targets). */
  provider?: string;
  /** Model name sent to the upstream for this step (with provider; or use targets). */
  model?: string;
  /** A group of equivalent targets (keys or deployments of one model) instead of provider and model: picked by weight among those whose circuit is closed, the rest of the group tried before the next step. */
  targets?: TargetSpec[];
  /** Extra tries on this step for retryable failures. Default: 1. */
  retries: number;
  /** Per-attempt time limits, each capped by what is left of policy.deadlineMs. Default: {}. */
  timeouts: StepTimeoutsSpec;
  /** USD per million tokens, for cost accounting and budgets; overrides the built-in price table. */
  price?: PriceSpec;
  /** Largest answer this step may produce, in tokens: sent upstream as max_tokens when the request asks for more or sets none, and the output bound of budget checks. */
  maxOutputTokens?: number;
  /** Local rate limits per target of this step (token buckets), so requests stop before the provider answers 429. */
  limits?: LimitsSpec;
  /** Overrides the provider's prefill for this step's targets (see providers[].prefill). */
  prefill?: 'supported' | 'unsupported' | 'auto';
}

/** When to retry a step, when to move on, and how long the whole request may take. Default: {}. */
export interface PolicySpec {
  /** Failure classes that retry the same step (within its retries). Default: ["rateLimited","serverError","timeout","connection"]. */
  retryOn: Array<'rateLimited' | 'serverError' | 'timeout' | 'connection'>;
  /** Failure classes that move on to the next step. contentFiltered (a refusal by the provider's filter) is not in the default: sending a refused prompt to another provider is a policy decision the chain's owner opts into. Default: ["rateLimited","serverError","timeout","connection","authFailed","contextLength"]. */
  fallbackOn: Array<'rateLimited' | 'serverError' | 'timeout' | 'connection' | 'contentFiltered' | 'authFailed' | 'contextLength'>;
  /** Exponential backoff between retries of one step; Retry-After overrides it. Default: {}. */
  backoff: {
    /** First backoff ceiling. Default: 250. */
    baseMs: number;
    /** Largest backoff; a longer Retry-After moves on to the next step. Default: 8000. */
    maxMs: number;
    /** full: a random delay up to the ceiling; none: exactly the ceiling. Default: "full". */
    jitter: 'full' | 'none';
  };
  /** Time allowed for the whole request, all steps together. Default: 120000. */
  deadlineMs: number;
  /** Hedged requests: when the attempt in flight has no first byte after afterMs, the next eligible target starts in parallel; the first answer wins and the other is cancelled. Default: {}. */
  hedge: {
    /** Start the next step in parallel after this long without a first byte; 0 disables. Default: 0. */
    afterMs: number;
    /** Hedges allowed in flight at once next to the attempt they hedge. Default: 1. */
    maxInFlight: number;
  };
  /** Demote a step that is clearly worse than the next one (EWMA error rate or latency) for 30 seconds; see /config for the effective order. Default: false. */
  adaptive: boolean;
  /** Default order of steps, overridden per request by the x-llm-fallback-priority header: speed (measured latency), quality (listed order), cheapest (price). Default: "quality". */
  priority: 'speed' | 'quality' | 'cheapest';
  /** Streaming: when the answer is committed to the caller, and how a stream broken after that is rescued (see docs/streaming.md). Default: {}. */
  stream: {
    /** When the caller's stream begins. firstEvent: at the upstream's first content event; tokens: after `tokens` content events are held; complete: only once the whole answer is held (never truncated). Before the commit point every failure is an ordinary fallback with nothing sent. Default: "firstEvent". */
    commit: 'firstEvent' | 'tokens' | 'complete';
    /** With commit: tokens, how many content events (about one token each) are held before the stream is committed. Default: 20. */
    tokens: number;
    /** While an answer is held longer than this, an SSE comment is sent this often (the response headers go out with the first one) so callers' idle timeouts do not fire. Default: 10000. */
    heartbeatMs: number;
  };
}

/** Per provider/model breaker: skip a target that keeps failing. Default: {}. */
export interface CircuitBreakerSpec {
  /** Failures within the window that open the circuit. Default: 5. */
  failureThreshold: number;
  /** Rolling window the failures are counted in. Default: 30. */
  windowSeconds: number;
  /** How long the circuit stays open before one probe is let through. Default: 30. */
  cooldownSeconds: number;
}

/** Cost limits. */
export interface BudgetSpec {
  /** Targets whose worst-case cost (input estimated from the body, output bounded by max_tokens or maxOutputTokens) exceeds this are skipped; with none left the request is refused (402) without an upstream call. */
  maxCostPerRequestUSD?: number;
}

/** What the chain serves and how it falls back. */
export interface FallbackChainSpec {
  /** The model name the application asks for. Defaults to metadata.name. */
  model?: string;
  /** Upstreams that steps send requests to. */
  providers: ProviderSpec[];
  /** Provider/model steps, tried in order. */
  steps: StepSpec[];
  /** When to retry a step, when to move on, and how long the whole request may take. Default: {}. */
  policy: PolicySpec;
  /** Per provider/model breaker: skip a target that keeps failing. Default: {}. */
  circuitBreaker: CircuitBreakerSpec;
  /** Cost limits. */
  budget?: BudgetSpec;
}

export interface ChainCondition {
  /** Condition type, e.g. Ready. */
  type: string;
  /** True, False or Unknown. */
  status: 'True' | 'False' | 'Unknown';
  /** One CamelCase word. */
  reason?: string;
  /** Readable detail. */
  message?: string;
  /** When status last changed (RFC 3339). */
  lastTransitionTime?: string;
}

/** Written by the controller only. */
export interface FallbackChainStatus {
  /** The metadata.generation the status describes. */
  observedGeneration?: number;
  /** Ready tells whether the chain validated. */
  conditions?: ChainCondition[];
  /** Number of steps in spec.steps, written by the controller (the STEPS column). */
  steps?: number;
}
