// The built-in price table: which model names it prices, and that a lookup never leaks a
// sibling model's price to a variant it does not know.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_PRICES, builtinPrice } from '../../src/core/prices.ts';

describe('builtinPrice', () => {
  const rows: Array<[model: string, key: string | undefined, proves: string]> = [
    ['gpt-4o', 'gpt-4o', 'an exact name'],
    ['gpt-4o-2024-08-06', 'gpt-4o', 'a dated snapshot'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini', 'the longest key wins'],
    ['openai/gpt-4.1-mini', 'gpt-4.1-mini', 'a vendor prefix is ignored'],
    ['GPT-4o', 'gpt-4o', 'case-insensitive'],
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4', 'a minor version of a listed model'],
    ['claude-opus-4-5', 'claude-opus-4-5', 'a minor version with its own price'],
    ['claude-sonnet-4@20250514', 'claude-sonnet-4', 'Vertex-style @version'],
    ['gemini-2.5-flash-preview-05-20', 'gemini-2.5-flash', 'a preview release'],
    ['mistral-large-latest', 'mistral-large', 'a -latest alias'],
    ['deepseek-chat', 'deepseek-chat', 'DeepSeek'],
    ['o3-pro', undefined, "an unlisted variant gets no price, not its sibling's"],
    ['gpt-4o-audio-preview', undefined, 'an unlisted modality variant'],
    ['gpt-4o2', undefined, 'a name that only shares a prefix'],
    ['llama-3.1-70b', undefined, 'an unknown model'],
    ['fault:ok', undefined, 'test models'],
  ];
  for (const [model, key, proves] of rows) {
    test(`${model}: ${proves}`, () => {
      assert.deepEqual(builtinPrice(model), key === undefined ? undefined : BUILTIN_PRICES[key]);
    });
  }

  // Callers get a copy: editing it cannot change the table.
  test('returns a copy', () => {
    const price = builtinPrice('gpt-4o');
    assert.ok(price);
    price.inputPerMTok = 999;
    assert.equal(builtinPrice('gpt-4o')?.inputPerMTok, 2.5);
  });

  // Every entry is a sane price: non-negative, cached never above the input rate.
  test('table sanity', () => {
    for (const [key, price] of Object.entries(BUILTIN_PRICES)) {
      assert.ok(price.inputPerMTok >= 0 && price.outputPerMTok >= 0, key);
      if (price.cachedInputPerMTok !== undefined) assert.ok(price.cachedInputPerMTok <= price.inputPerMTok, key);
    }
  });
});
