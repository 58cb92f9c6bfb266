import type { AttemptRecord } from '../engine/outcome.ts';
import { roundUSD } from '../core/cost.ts';

/**
 * `x-llm-fallback-attempts`: every attempt and skipped step, in order, as provider/model=verdict;
 * a skip with a constant reason code says it: provider/model=skipped(local_credentials_refused).
 */
export function attemptsHeader(attempts: readonly AttemptRecord[]): string {
  return attempts.map((a) => `${a.provider}/${a.model}=${a.outcome}${a.skipCode ? `(${a.skipCode})` : ''}`).join(', ');
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

export function fallbackHeaders(h: ChainHeaders): Record<string, string> {
  const out: Record<string, string> = {
    'x-request-id': h.requestId,
    'x-llm-fallback-chain': h.chain,
    'x-llm-fallback-attempts': attemptsHeader(h.attempts),
  };
  if (h.provider) out['x-llm-fallback-provider'] = h.provider;
  if (h.model) out['x-llm-fallback-model'] = h.model;
  if (h.costUSD !== undefined) out['x-llm-fallback-cost-usd'] = costHeader(h.costUSD);
  return out;
}
