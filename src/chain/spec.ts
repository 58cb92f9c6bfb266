// TypeScript view of a FallbackChain document after schema validation and defaults.
// fallbackchain.schema.json is the source of truth; these types mirror it.
import type { ApiFormat, FailureClass, Limits, PrefillSupport, Price, Priority } from '../core/types.ts';

export const API_VERSION = 'llmfallback.io/v1alpha1';
export const KIND = 'FallbackChain';

export interface ApiKeyRef {
  secretKey?: string;
  env?: string;
  file?: string;
}

/** A header value: literal, or read from the credentials Secret (then it is a credential). */
export type HeaderValueSpec = string | { valueFrom: { secretKey: string } };

export interface ProviderSpec {
  name: string;
  api: ApiFormat;
  baseURL: string;
  apiKey?: ApiKeyRef;
  headers?: Record<string, HeaderValueSpec>;
  prefill?: PrefillSupport;
  /** Azure OpenAI's api-version query value (api: azure-openai). */
  apiVersion?: string;
  /** Credentials that are more than one string (api: bedrock). */
  auth?: AuthSpec;
}

/** AWS credentials: a key pair (and session token) from credential sources, or the pod's IRSA web identity. */
export interface AwsAuthSpec {
  region: string;
  accessKeyId?: ApiKeyRef;
  secretAccessKey?: ApiKeyRef;
  sessionToken?: ApiKeyRef;
  webIdentity?: boolean;
}

export interface AuthSpec {
  aws?: AwsAuthSpec;
  /** A Google service-account JSON key (api: vertex). */
  gcpServiceAccount?: ApiKeyRef;
  /** The pod's GKE workload identity, through the metadata server (api: vertex). */
  gcpWorkloadIdentity?: boolean;
  /** The pod's Microsoft Entra workload identity (api: azure-openai). */
  azureWorkloadIdentity?: boolean;
}

/** One target of a step group. */
export interface TargetSpec {
  provider: string;
  model: string;
  weight: number;
  price?: Partial<Price>;
  limits?: Limits;
}

/** A step names either provider and model, or targets (checked by the CEL rule and checkCrossFieldRules). */
export interface StepSpec {
  provider?: string;
  model?: string;
  targets?: TargetSpec[];
  retries: number;
  timeouts: { firstByteMs: number; idleMs: number; totalMs: number };
  price?: Partial<Price>;
  maxOutputTokens?: number;
  limits?: Limits;
  prefill?: PrefillSupport;
}

export interface FallbackChainSpec {
  model?: string;
  providers: ProviderSpec[];
  steps: StepSpec[];
  policy: {
    retryOn: FailureClass[];
    fallbackOn: FailureClass[];
    backoff: { baseMs: number; maxMs: number; jitter: 'full' | 'none' };
    deadlineMs: number;
    hedge: { afterMs: number; maxInFlight: number };
    adaptive: boolean;
    priority: Priority;
    stream: { commit: 'firstEvent' | 'tokens' | 'complete'; tokens: number; heartbeatMs: number };
  };
  circuitBreaker: { failureThreshold: number; windowSeconds: number; cooldownSeconds: number };
  budget?: { maxCostPerRequestUSD?: number };
}

export interface FallbackChainDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number; [key: string]: unknown };
  spec: FallbackChainSpec;
}
