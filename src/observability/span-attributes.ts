// What each span says, as plain attribute maps (pure: no SDK). Names follow the OpenTelemetry
// GenAI semantic conventions where they have one (gen_ai.*, error.type, server.*, http.*) and
// are ours under llm_fallback.* otherwise. Only facts the proxy decided or counted go in:
// never a prompt, a completion, an upstream's error text or a key. An attempt's failure is its
// class and status; the upstream's message stays in the request log, which is redacted.
// Strings that are not our constants (chain, provider and model names, hosts, request ids,
// skip reasons, routes) still pass the known secrets' redactor on their way into a span
// (redactedAttributes), like every log line: a span goes to a collector the operator may not
// guard like the log, and "no credential by construction" must not depend on every config.
import type { Step } from '../core/types.ts';
import type { BreakerState } from '../engine/breakers.ts';
import type { WaitKind } from '../engine/observer.ts';
import type { AttemptRecord } from '../engine/outcome.ts';

export type AttributeValue = string | number | boolean;
export type AttributeMap = Record<string, AttributeValue>;

/** Semantic-convention names (the GenAI ones are still "development" upstream: pinned here, not imported). */
export const ATTR = {
  genAiOperation: 'gen_ai.operation.name',
  genAiProvider: 'gen_ai.provider.name',
  genAiRequestModel: 'gen_ai.request.model',
  genAiResponseModel: 'gen_ai.response.model',
  genAiInputTokens: 'gen_ai.usage.input_tokens',
  genAiOutputTokens: 'gen_ai.usage.output_tokens',
  errorType: 'error.type',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
} as const;

/** The GenAI operation of a caller's endpoint. */
export function operationOf(route: string): string {
  if (route === 'embeddings') return 'embeddings';
  if (route === 'completions') return 'text_completion';
  return 'chat';
}

/** Our outcome classes that are failures of the attempt (a span status of ERROR). */
const NOT_ERRORS = new Set(['ok', 'skipped', 'cancelled', 'aborted']);
export function isFailure(outcome: string): boolean {
  return !NOT_ERRORS.has(outcome);
}

export function circuitValue(state: BreakerState): string {
  return state === 'halfOpen' ? 'half_open' : state;
}

/** The target's address, never its credentials: only host and port of the base URL. */
export function serverOf(baseURL: string): AttributeMap {
  try {
    const url = new URL(baseURL);
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    return { [ATTR.serverAddress]: url.hostname.replace(/^\[(.*)\]$/, '$1'), [ATTR.serverPort]: port };
  } catch {
    return {};
  }
}

/** The map with every string value passed through `redact` (numbers and booleans carry no text). */
export function redactedAttributes(attributes: AttributeMap, redact: (text: string) => string): AttributeMap {
  const out: AttributeMap = {};
  for (const [name, value] of Object.entries(attributes)) out[name] = typeof value === 'string' ? redact(value) : value;
  return out;
}

/** Set when an attempt (or skipped step) starts: what it is. */
export function targetAttributes(chain: string, operation: string, step: Step): AttributeMap {
  return {
    [ATTR.genAiOperation]: operation,
    [ATTR.genAiProvider]: step.provider.name,
    [ATTR.genAiRequestModel]: step.model,
    'llm_fallback.chain': chain,
    'llm_fallback.step': step.index,
    'llm_fallback.provider.api': step.provider.api,
    ...serverOf(step.provider.baseURL),
  };
}

/** Set when an attempt ends: how it went, from the record the engine kept. */
export function recordAttributes(record: AttemptRecord, step: Step, redact: (text: string) => string): AttributeMap {
  const attributes: AttributeMap = {
    'llm_fallback.attempt': record.attempt,
    'llm_fallback.outcome': record.outcome,
    'llm_fallback.cost_usd': record.costUSD,
    'llm_fallback.duration_ms': record.ms,
  };
  if (record.status !== undefined) attributes[ATTR.httpStatus] = record.status;
  if (record.outcome === 'ok') attributes[ATTR.genAiResponseModel] = step.model;
  if (isFailure(record.outcome)) attributes[ATTR.errorType] = record.outcome;
  if (record.usage) {
    attributes[ATTR.genAiInputTokens] = record.usage.inputTokens;
    attributes[ATTR.genAiOutputTokens] = record.usage.outputTokens;
  }
  if (record.hedge) attributes['llm_fallback.hedge'] = record.hedge;
  if (record.route) attributes['llm_fallback.route'] = record.route;
  if (record.outcome === 'skipped') {
    // Our own words (circuit open, rate limited until…, no API key…), not an upstream's.
    if (record.reason) attributes['llm_fallback.skip_reason'] = record.reason;
    if (record.skipCode) attributes['llm_fallback.skip_code'] = record.skipCode;
  }
  return redactedAttributes(attributes, redact);
}

export function waitAttributes(kind: WaitKind, chain: string, step: Step, ms: number): AttributeMap {
  return {
    'llm_fallback.chain': chain,
    'llm_fallback.wait.kind': waitName(kind),
    'llm_fallback.wait.ms': Math.round(ms),
    'llm_fallback.step': step.index,
    [ATTR.genAiProvider]: step.provider.name,
    [ATTR.genAiRequestModel]: step.model,
  };
}

/** snake_case, as span names and attribute values go. */
export function waitName(kind: WaitKind): string {
  if (kind === 'retryAfter') return 'retry_after';
  if (kind === 'hedge') return 'hedge_delay';
  return 'backoff';
}
