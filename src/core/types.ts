// The typed values the engine decides on. Everything here is plain data: the
// config loaders produce it, the pure core reads it, the adapters carry it.

export const FAILURE_CLASSES = [
  'rateLimited',
  'serverError',
  'timeout',
  'connection',
  'authFailed',
  'contextLength',
  'contentFiltered',
  'badRequest',
] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export type ApiFormat = 'openai' | 'anthropic' | 'gemini';

export interface Price {
  inputPerMTok: number;
  outputPerMTok: number;
  cachedInputPerMTok?: number;
}

export interface StepTimeouts {
  firstByteMs: number;
  idleMs: number;
  totalMs: number;
}

export interface Provider {
  name: string;
  api: ApiFormat;
  baseURL: string;
  /** The resolved key; undefined when its source could not be read (see keyProblem). */
  apiKey: string | undefined;
  /** Why the key is missing, e.g. "environment variable DEEPSEEK_API_KEY is not set". */
  keyProblem?: string;
  /** Where the key comes from, for /config and logs (never the key itself). */
  keySource: string;
  headers: Record<string, string>;
}

export interface Step {
  index: number;
  provider: Provider;
  model: string;
  retries: number;
  timeouts: StepTimeouts;
  price?: Price;
  /** Identity of the upstream target; breakers are keyed by it so they survive reloads. */
  target: string;
}

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
  hedgeAfterMs: number;
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
  steps: Step[];
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
