// A built-in price table for common models, so cost accounting and budgets work without a
// `price` on every step. A step's (or a group target's) own `price` always wins: providers
// change prices, resellers charge differently, and self-hosted models cost what they cost.
// USD per million tokens, standard (non-batch) tier, prompts under any long-context surcharge,
// as the vendors published them in 2025. cachedInputPerMTok is the cache-read rate; when a
// vendor has none it is left out and cached tokens are billed at the input rate.
import type { Price } from './types.ts';

const p = (inputPerMTok: number, outputPerMTok: number, cachedInputPerMTok?: number): Price =>
  cachedInputPerMTok === undefined ? { inputPerMTok, outputPerMTok } : { inputPerMTok, outputPerMTok, cachedInputPerMTok };

/** Model name (without date or version suffix) -> price. Looked up by the longest matching prefix. */
export const BUILTIN_PRICES: Readonly<Record<string, Price>> = Object.freeze({
  // OpenAI
  'gpt-5': p(1.25, 10, 0.125),
  'gpt-5-mini': p(0.25, 2, 0.025),
  'gpt-5-nano': p(0.05, 0.4, 0.005),
  'gpt-4.1': p(2, 8, 0.5),
  'gpt-4.1-mini': p(0.4, 1.6, 0.1),
  'gpt-4.1-nano': p(0.1, 0.4, 0.025),
  'gpt-4o': p(2.5, 10, 1.25),
  'gpt-4o-mini': p(0.15, 0.6, 0.075),
  o3: p(2, 8, 0.5),
  'o3-mini': p(1.1, 4.4, 0.55),
  'o4-mini': p(1.1, 4.4, 0.275),
  'text-embedding-3-small': p(0.02, 0),
  'text-embedding-3-large': p(0.13, 0),
  // Anthropic (cache reads; cache writes are not modelled)
  'claude-opus-4': p(15, 75, 1.5),
  'claude-opus-4-5': p(5, 25, 0.5),
  'claude-sonnet-4': p(3, 15, 0.3),
  'claude-3-7-sonnet': p(3, 15, 0.3),
  'claude-3-5-sonnet': p(3, 15, 0.3),
  'claude-haiku-4-5': p(1, 5, 0.1),
  'claude-3-5-haiku': p(0.8, 4, 0.08),
  // Google (prompts up to 200k tokens)
  'gemini-2.5-pro': p(1.25, 10),
  'gemini-2.5-flash': p(0.3, 2.5),
  'gemini-2.5-flash-lite': p(0.1, 0.4),
  'gemini-2.0-flash': p(0.1, 0.4),
  // DeepSeek (V3.2 prices, the same for both names)
  'deepseek-chat': p(0.28, 0.42, 0.028),
  'deepseek-reasoner': p(0.28, 0.42, 0.028),
  // Zhipu GLM
  'glm-4.5': p(0.6, 2.2, 0.11),
  'glm-4.6': p(0.6, 2.2, 0.11),
  'glm-4.5-air': p(0.2, 1.1, 0.03),
  // Mistral
  'mistral-large': p(2, 6),
  'mistral-small': p(0.1, 0.3),
});

const KEYS_LONGEST_FIRST = Object.keys(BUILTIN_PRICES).sort((a, b) => b.length - a.length);

/**
 * The built-in price of a model, if the table knows it. A vendor prefix ("openai/gpt-4o") is
 * ignored, and a key matches the model itself or the model followed by a date, version or
 * release word ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "claude-sonnet-4@20250514",
 * "gemini-2.5-flash-preview-05-20", "mistral-large-latest"). The longest key wins, so
 * "gpt-4o-mini-2024-07-18" is gpt-4o-mini; a variant the table does not list ("o3-pro",
 * "gpt-4o-audio-preview") gets no price rather than its sibling's.
 */
export function builtinPrice(model: string): Price | undefined {
  const name = model.slice(model.lastIndexOf('/') + 1).toLowerCase();
  for (const key of KEYS_LONGEST_FIRST) {
    if (name === key || (/^[-@]/.test(name.slice(key.length)) && name.startsWith(key) && isRelease(name.slice(key.length + 1)))) {
      const price = BUILTIN_PRICES[key];
      return price && { ...price };
    }
  }
  return undefined;
}

/** The first word of a suffix names a release of the same model, not another model. */
function isRelease(suffix: string): boolean {
  const word = suffix.split('-')[0] ?? '';
  return /^(\d[\w.]*|v\d[\w.]*|latest|preview|exp|experimental)$/.test(word);
}
