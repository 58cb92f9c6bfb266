// The pure access rules of the proxy's ports (request-guard.ts): which peers are loopback,
// how a Host header is read, and which requests a browser could have sent.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { browserRefusal, contentTypeRefusal, hostName, isLoopback, loopbackOnlyRefusal } from '../../src/server/request-guard.ts';

describe('isLoopback', () => {
  const cases: Array<[string | undefined, boolean]> = [
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    // A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6 addresses.
    ['::ffff:127.0.0.1', true],
    ['10.0.0.7', false],
    ['::ffff:10.0.0.7', false],
    ['fd00::2', false],
    ['128.0.0.1', false],
    [undefined, false],
  ];
  for (const [address, want] of cases) test(`${String(address)} → ${want}`, () => assert.equal(isLoopback(address), want));
});

describe('hostName', () => {
  const cases: Array<[string, string | undefined]> = [
    ['localhost:4000', 'localhost'],
    ['LocalHost', 'localhost'],
    ['[::1]:4001', '::1'],
    ['10.0.0.7:4001', '10.0.0.7'],
    ['evil.example:4000', 'evil.example'],
    ['a:b:c', undefined],
    ['[::1', undefined],
    ['', undefined],
  ];
  for (const [host, want] of cases) test(`${JSON.stringify(host)} → ${String(want)}`, () => assert.equal(hostName(host), want));
});

describe('browserRefusal', () => {
  const allowed = new Set(['my-pod']);
  const loopback = '127.0.0.1';
  test('a loopback peer must use localhost, an IP literal or an allowed name', () => {
    assert.equal(browserRefusal({ headers: { host: 'localhost:4000' }, peer: loopback }, allowed), undefined);
    assert.equal(browserRefusal({ headers: { host: 'my-pod:4001' }, peer: '::ffff:127.0.0.1' }, allowed), undefined);
    assert.equal(browserRefusal({ headers: { host: 'evil.example:4000' }, peer: loopback }, allowed)?.code, 'host_not_allowed');
    assert.equal(browserRefusal({ headers: {}, peer: loopback }, allowed)?.code, 'host_not_allowed');
  });
  test('a peer from the pod network (kubelet, Prometheus through a Service name) is not asked for a Host', () => {
    assert.equal(browserRefusal({ headers: { host: 'app.shop.svc:4001' }, peer: '10.0.0.7' }, allowed), undefined);
  });
  test('browser markers are refused from any peer', () => {
    assert.equal(browserRefusal({ headers: { host: 'localhost', origin: 'http://localhost:3000' }, peer: loopback }, allowed)?.code, 'cross_site_request');
    assert.equal(browserRefusal({ headers: { host: '10.0.0.8', 'sec-fetch-site': 'cross-site' }, peer: '10.0.0.7' }, allowed)?.code, 'cross_site_request');
    assert.equal(browserRefusal({ headers: { host: 'localhost', 'sec-fetch-site': 'same-origin' }, peer: loopback }, allowed), undefined);
  });
});

test('contentTypeRefusal: application/json only', () => {
  assert.equal(contentTypeRefusal({ 'content-type': 'application/json; charset=utf-8' }), undefined);
  assert.equal(contentTypeRefusal({ 'content-type': 'text/plain' })?.status, 415);
  assert.equal(contentTypeRefusal({})?.code, 'unsupported_media_type');
});

test('loopbackOnlyRefusal', () => {
  assert.equal(loopbackOnlyRefusal({ headers: {}, peer: '::1' }, '/config'), undefined);
  assert.equal(loopbackOnlyRefusal({ headers: {}, peer: '10.0.0.7' }, '/config')?.code, 'loopback_only');
});
