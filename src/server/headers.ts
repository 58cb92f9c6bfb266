import type { AttemptRecord } from '../engine/outcome.ts';
import { roundUSD } from '../core/cost.ts';

/**
 * A name (chain, provider, model) as it may stand in a header value. Model names are the
 * providers' and may be anything (`qwen-中文-chat`); Node refuses to send a header with a
 * character outside Latin-1 or a control character, which would fail a request after its
 * upstream answered (and was billed). Such characters are percent-encoded as UTF-8, and so
 * are `%` and the list separators `,` and `=`, so `decodeURIComponent` gives the name back;
 * plain ASCII names are sent unchanged.
 */
export function headerSafe(name: string): string {
  return UNSAFE.test(name) ? name.replace(UNSAFE_ALL, percentEncoded) : name;
}

function percentEncoded(char: string): string {
  try {
    return encodeURIComponent(char);
  } catch {
    return '%EF%BF%BD'; // a lone surrogate: U+FFFD, as UTF-8 decoders read it
  }
}

// Everything but printable ASCII, plus the characters that carry meaning in our values.
const UNSAFE = /[^\x20-\x24\x26-\x2b\x2d-\x3c\x3e-\x7e]/u;
const UNSAFE_ALL = /[^\x20-\x24\x26-\x2b\x2d-\x3c\x3e-\x7e]/gu;

/**
 * `x-llm-fallback-attempts`: every attempt and skipped step, in order, as provider/model=verdict;
 * a skip with a constant reason code says it: provider/model=skipped(local_credentials_refused).
 */
export function attemptsHeader(attempts: readonly AttemptRecord[]): string {
  return attempts.map((a) => `${headerSafe(a.provider)}/${headerSafe(a.model)}=${a.outcome}${a.skipCode ? `(${a.skipCode})` : ''}`).join(', ');
}

export function costHeader(usd: number): string {
  return roundUSD(usd).toFixed(10).replace(/0+$/, '').replace(/\.$/, '');
}

export interface ChainHeaders {
  requestId: string;
  chain: string;
  provider?: string;
  model?: string;
  attempts: readonly AttemptRecord[];
  costUSD?: number;
}

/** The x-llm-fallback-* headers; every name in them is header-safe (headerSafe). */
export function fallbackHeaders(h: ChainHeaders): Record<string, string> {
  const out: Record<string, string> = {
    'x-request-id': h.requestId,
    'x-llm-fallback-chain': headerSafe(h.chain),
    'x-llm-fallback-attempts': attemptsHeader(h.attempts),
  };
  if (h.provider) out['x-llm-fallback-provider'] = headerSafe(h.provider);
  if (h.model) out['x-llm-fallback-model'] = headerSafe(h.model);
  if (h.costUSD !== undefined) out['x-llm-fallback-cost-usd'] = costHeader(h.costUSD);
  return out;
}
