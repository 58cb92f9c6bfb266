// The start-up bench measures processes in the image's environment (bench/lib/startup.ts):
// a host's Node, libuv and glibc variables, which the image does not set, are not passed on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageEnvironment } from '../../bench/lib/startup.ts';

test("the host's NODE_*, UV_* and MALLOC_* variables are dropped and named; the rest is kept, NODE_ENV is the image's", () => {
  const { env, dropped } = imageEnvironment({
    PATH: '/usr/bin',
    HOME: '/root',
    NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt',
    NODE_OPTIONS: '--max-old-space-size=4096',
    NODE_ENV: 'development',
    UV_THREADPOOL_SIZE: '16',
    MALLOC_ARENA_MAX: '2',
    GLIBC_TUNABLES: 'glibc.malloc.arena_max=2',
    SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
  });
  assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/root', SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt', NODE_ENV: 'production' });
  assert.deepEqual(dropped, ['GLIBC_TUNABLES', 'MALLOC_ARENA_MAX', 'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'UV_THREADPOOL_SIZE']);
});
