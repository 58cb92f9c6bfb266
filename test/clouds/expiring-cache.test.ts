// The cache behind STS sessions and OAuth2 tokens: one exchange per identity however many
// attempts wait, reuse until five minutes before expiry, a failure never kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpiringCache, REFRESH_BEFORE_EXPIRY_MS } from '../../src/wire/expiring-cache.ts';

test('concurrent callers share one exchange; the value is reused until shortly before it expires, then renewed', async () => {
  let now = 1_000_000;
  const cache = new ExpiringCache<string>(() => now);
  let exchanges = 0;
  const fetch = async (): Promise<{ value: string; expiresAt: number }> => {
    exchanges++;
    return { value: `token-${exchanges}`, expiresAt: now + 3600_000 };
  };
  assert.deepEqual(await Promise.all([cache.get('a', fetch), cache.get('a', fetch), cache.get('a', fetch)]), ['token-1', 'token-1', 'token-1']);
  now += 3600_000 - REFRESH_BEFORE_EXPIRY_MS - 1;
  assert.equal(await cache.get('a', fetch), 'token-1');
  now += 2;
  assert.equal(await cache.get('a', fetch), 'token-2', 'renewed within the refresh margin');
  assert.equal(await cache.get('b', fetch), 'token-3', 'another identity has its own');
});

test('a failed exchange is not cached', async () => {
  const cache = new ExpiringCache<string>();
  await assert.rejects(
    cache.get('a', () => Promise.reject(new Error('down'))),
    /down/,
  );
  assert.equal(await cache.get('a', async () => ({ value: 'ok', expiresAt: Date.now() + 3600_000 })), 'ok');
});
