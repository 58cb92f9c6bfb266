// GET /v1/models lists the chains as models, so SDK calls and UIs that list models work
// without a default upstream: OpenAI's shape, or Anthropic's for a request that carries
// anthropic-version (what Anthropic's SDKs send). The official SDKs are the callers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { chainYaml, startProxy, type ProxyHarness } from '../support/proxy-harness.ts';

let proxy: ProxyHarness;

before(async () => {
  const config = ['beta-chain', 'alpha-chain'].map((name) => chainYaml({ name, baseURL: 'http://127.0.0.1:9/v1', steps: [{ model: 'm' }] })).join('\n---\n');
  proxy = await startProxy({ config });
});

after(async () => {
  await proxy.close();
});

describe('GET /v1/models', { timeout: 20_000 }, () => {
  test('the OpenAI SDK lists and retrieves the chains', async () => {
    const client = new OpenAI({ baseURL: proxy.baseURL, apiKey: 'unused', maxRetries: 0 });
    const models: OpenAI.Models.Model[] = [];
    for await (const model of client.models.list()) models.push(model);
    assert.deepEqual(
      models.map((m) => m.id),
      ['alpha-chain', 'beta-chain'],
    );
    for (const model of models) {
      assert.equal(model.object, 'model');
      assert.equal(model.owned_by, 'llm-fallback');
      assert.ok(Number.isInteger(model.created) && model.created > 1_600_000_000);
    }
    const one = await client.models.retrieve('beta-chain');
    assert.equal(one.id, 'beta-chain');
    await assert.rejects(client.models.retrieve('nope'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError);
      assert.equal(error.code, 'model_not_found');
      assert.match(error.message, /Known chains: alpha-chain, beta-chain/);
      return true;
    });
  });

  test("the Anthropic SDK gets Anthropic's shape", async () => {
    const client = new Anthropic({ baseURL: proxy.apiUrl, apiKey: 'unused', maxRetries: 0 });
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => [m.type, m.id, m.display_name]),
      [
        ['model', 'alpha-chain', 'alpha-chain'],
        ['model', 'beta-chain', 'beta-chain'],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(page.data[0]?.created_at ?? '')));
    const raw = (await (await fetch(`${proxy.baseURL}/models`, { headers: { 'anthropic-version': '2023-06-01' } })).json()) as Record<string, unknown>;
    assert.equal(raw['has_more'], false);
    assert.equal(raw['first_id'], 'alpha-chain');
    assert.equal(raw['last_id'], 'beta-chain');
    const one = await client.models.retrieve('alpha-chain');
    assert.equal(one.id, 'alpha-chain');
    await assert.rejects(client.models.retrieve('nope'), (error: unknown) => error instanceof Anthropic.NotFoundError);
  });
});
