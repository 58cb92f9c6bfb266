// A step's maxOutputTokens is enforced, not only assumed: the request a step sends asks for at
// most that many tokens, so the worst case the budget was checked against really is the worst
// case. A smaller limit of the caller's own is kept.
import type { Provider } from '../../core/types.ts';

function positive(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

/**
 * The body with its output limit at most `cap`: an existing max_completion_tokens / max_tokens
 * is lowered to the cap; with neither, the cap is added as max_tokens (max_completion_tokens
 * for OpenAI's own API, whose reasoning models refuse max_tokens). Embeddings are left alone.
 */
export function capOutputTokens<T extends object>(body: T, cap: number | undefined, options: { endpoint: string; provider?: Pick<Provider, 'baseURL'> }): T {
  if (cap === undefined || options.endpoint === 'embeddings') return body;
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  let limited = false;
  for (const field of ['max_completion_tokens', 'max_tokens']) {
    const value = out[field];
    if (positive(value)) {
      out[field] = Math.min(value, cap);
      limited = true;
    }
  }
  if (!limited) {
    const openAI = options.endpoint === 'chat' && options.provider !== undefined && /^https:\/\/api\.openai\.com(\/|$)/.test(options.provider.baseURL);
    out[openAI ? 'max_completion_tokens' : 'max_tokens'] = cap;
  }
  return out as T;
}
