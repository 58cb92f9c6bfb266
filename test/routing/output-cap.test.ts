// A step's maxOutputTokens is applied to the request it sends, so the budget's worst case holds.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { capOutputTokens } from '../../src/wire/openai-chat/output-cap.ts';

describe('capOutputTokens', () => {
  const other = { baseURL: 'https://api.deepseek.com/v1' };
  const openai = { baseURL: 'https://api.openai.com/v1' };
  const rows: Array<{
    proves: string;
    body: Record<string, unknown>;
    cap?: number;
    endpoint?: string;
    provider?: { baseURL: string };
    want: Record<string, unknown>;
  }> = [
    // No cap: the body is untouched.
    { proves: 'no cap', body: { max_tokens: 9000 }, want: { max_tokens: 9000 } },
    // No limit in the request: the cap is added as max_tokens.
    { proves: 'added as max_tokens', body: { model: 'x' }, cap: 500, provider: other, want: { model: 'x', max_tokens: 500 } },
    // OpenAI's own API gets max_completion_tokens (its reasoning models refuse max_tokens).
    { proves: 'OpenAI gets max_completion_tokens', body: {}, cap: 500, provider: openai, want: { max_completion_tokens: 500 } },
    // A larger request limit is lowered to the cap.
    { proves: 'lowered', body: { max_tokens: 9000 }, cap: 500, provider: openai, want: { max_tokens: 500 } },
    // A smaller one is kept.
    { proves: 'smaller kept', body: { max_completion_tokens: 100 }, cap: 500, provider: other, want: { max_completion_tokens: 100 } },
    // Both fields present: both bounded.
    { proves: 'both fields', body: { max_tokens: 900, max_completion_tokens: 800 }, cap: 500, want: { max_tokens: 500, max_completion_tokens: 500 } },
    // Text completions always use max_tokens.
    { proves: 'completions', body: {}, cap: 50, endpoint: 'completions', provider: openai, want: { max_tokens: 50 } },
    // Embeddings produce no output tokens: nothing to cap.
    { proves: 'embeddings untouched', body: { input: 'x' }, cap: 50, endpoint: 'embeddings', want: { input: 'x' } },
  ];
  for (const row of rows) {
    test(row.proves, () => {
      const before = structuredClone(row.body);
      assert.deepEqual(capOutputTokens(row.body, row.cap, { endpoint: row.endpoint ?? 'chat', provider: row.provider }), row.want);
      assert.deepEqual(row.body, before, 'the caller body is not mutated');
    });
  }
});
