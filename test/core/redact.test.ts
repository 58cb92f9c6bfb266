// The Redactor: a secret is found in every encoding an upstream may echo it in (JSON
// escapes, URL encoding, HTML entities, base64 at every offset, and their mixtures), the
// text around it survives, JSON stays valid, and the credentials of a provider (key, header
// values, URL user information and query values) are all secrets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { echoForms, REDACTED, Redactor } from '../../src/core/redact.ts';
import { CREDENTIAL_HEADER, providerSecrets, redactURL } from '../../src/core/credentials.ts';
import { KnownSecrets } from '../../src/observability/known-secrets.ts';
import type { Provider } from '../../src/core/types.ts';
import { encodings } from '../support/secret-encodings.ts';

const KEY = 'sk-proj-Ab/Cd+Ef_0123456789-xyzQ';

describe('Redactor', () => {
  const redactor = new Redactor([KEY]);
  for (const { name, text } of encodings(KEY)) {
    test(`finds the key: ${name}`, () => {
      const out = redactor.redact(`before ${text} after`);
      assert.ok(out.includes(REDACTED), out);
      assert.ok(out.startsWith('before ') && out.endsWith(' after'), out);
      for (const form of echoForms(KEY)) assert.ok(!out.includes(form), `${form} left in ${out}`);
    });
  }

  test('inside JSON, the result is still JSON and means [REDACTED]', () => {
    const bodies = [
      JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}` } }),
      `{"error":{"message":"Incorrect API key provided: ${encodings(KEY)[1]?.text ?? ''}"}}`,
      // A backslash before the escaped key: the escape pair must stay whole.
      `{"m":"\\\\${encodings(KEY)[1]?.text ?? ''}"}`,
      // A newline escape right before the key.
      `{"m":"line\\n${KEY}"}`,
    ];
    for (const body of bodies) {
      const out = redactor.redact(body);
      const parsed = JSON.parse(out) as unknown;
      assert.ok(!JSON.stringify(parsed).includes(KEY), out);
      assert.match(out, /\[REDACTED\]/);
    }
  });

  test('text without the key is returned unchanged (the same string)', () => {
    const text = '{"choices":[{"delta":{"content":"caf\\u00e9 100% &#38; sk-other-key-0000"}}]}';
    assert.equal(redactor.redact(text), text);
  });

  test('secrets shorter than 8 characters are not redacted (they would blank ordinary words)', () => {
    assert.equal(new Redactor(['shop']).redact('shop shop'), 'shop shop');
  });

  test('any bearer token is redacted, known or not (errors, logs)', () => {
    assert.equal(new Redactor([]).redact('Authorization: Bearer gw-abcdefghijklmnop'), 'Authorization: Bearer [REDACTED]');
  });

  test('answers lose known secrets only: a code sample with a placeholder token stays as the model wrote it', () => {
    const answer = `curl -H "Authorization: Bearer YOUR_API_TOKEN" … (and the real one: ${KEY})`;
    assert.equal(redactor.redactKnown(answer), `curl -H "Authorization: Bearer YOUR_API_TOKEN" … (and the real one: ${REDACTED})`);
  });

  test('many secrets at once', () => {
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}-${'x'.repeat(i % 7)}-0123456789abcdef`);
    const many = new Redactor(keys);
    for (const key of keys) assert.equal(many.redact(`a ${encodeURIComponent(key)} b ${Buffer.from(key).toString('base64')}`).includes(key), false);
    assert.equal(many.size, 40);
  });
});

describe('credentials of a provider', () => {
  const provider: Provider = {
    name: 'azure',
    api: 'openai',
    baseURL: 'https://svc-user:p%40ss-word-123@gw.example.com/v1?key=query-key-0123456789&mode=x',
    apiKey: 'sk-api-key-0123456789',
    keySource: 'env:K',
    headers: { 'api-key': 'azure-header-key-0123456789', 'X-Org': 'shop' },
  };

  test('the key, credential headers and the URL credentials are secrets', () => {
    const secrets = providerSecrets(provider);
    assert.ok(!secrets.includes('shop'), 'X-Org is configuration, not a credential');
    for (const value of ['sk-api-key-0123456789', 'azure-header-key-0123456789', 'svc-user', 'p%40ss-word-123', 'p@ss-word-123', 'query-key-0123456789']) {
      assert.ok(secrets.includes(value), `${value} in ${secrets.join(', ')}`);
    }
  });

  test('/config shows a URL without user information or query values', () => {
    assert.equal(redactURL(provider.baseURL), 'https://[REDACTED]@gw.example.com/v1?key=[REDACTED]&mode=[REDACTED]');
    assert.equal(redactURL('https://api.openai.com/v1'), 'https://api.openai.com/v1');
    assert.equal(redactURL('not a url'), REDACTED);
  });
});

describe('KnownSecrets', () => {
  test('keeps replaced keys (requests in flight may still use them)', () => {
    const known = new KnownSecrets();
    known.setCurrent(['old-key-0123456789']);
    known.setCurrent(['new-key-0123456789']);
    assert.equal(known.redact('old-key-0123456789 new-key-0123456789'), `${REDACTED} ${REDACTED}`);
  });

  test('is bounded for replaced keys and derived tokens: the oldest go first', () => {
    const known = new KnownSecrets();
    known.remember(['first-token-0123456789']);
    known.remember(Array.from({ length: 256 }, (_, i) => `later-token-${i}-0123456789`));
    assert.equal(known.redact('first-token-0123456789'), 'first-token-0123456789');
    assert.equal(known.redactor.size, 256);
  });

  // A security review found the current config's keys evicted after ~256 token refreshes (a
  // Vertex token endpoint answering expires_in 60, or IRSA over days of uptime): a real key then
  // reached callers and logs in clear.
  test('never forgets the keys of the current configuration, however many tokens are derived after them', () => {
    const known = new KnownSecrets();
    known.setCurrent(['sk-current-key-0123456789']);
    known.pin(['default-upstream-pass-0123']);
    for (let i = 0; i < 1000; i++) known.remember([`ya29.derived-token-${i}-0123456789`]);
    assert.equal(known.redact('sk-current-key-0123456789'), REDACTED);
    assert.equal(known.redact('default-upstream-pass-0123'), REDACTED);
    assert.equal(known.redact('ya29.derived-token-999-0123456789'), REDACTED);
    assert.equal(known.redact('ya29.derived-token-0-0123456789'), 'ya29.derived-token-0-0123456789');
  });

  test('never forgets the keys of the current configuration, however many it has', () => {
    const known = new KnownSecrets();
    const many = Array.from({ length: 1024 }, (_, i) => `header-value-${i}-0123456789`);
    known.setCurrent(many);
    assert.equal(known.redact(many[0] ?? ''), REDACTED);
    assert.equal(known.redact(many[1023] ?? ''), REDACTED);
  });
});

// A security review found literal header values (`anthropic-version: 2023-06-01`, `x-a:
// assistant`) blanked out of every answer of every chain once all header values were secrets.
describe('which header values are credentials', () => {
  for (const name of ['api-key', 'x-api-key', 'Authorization', 'x-goog-api-key', 'Ocp-Apim-Subscription-Key', 'x-auth-token', 'Cookie', 'X-Secret', 'apikey']) {
    test(`${name}: a credential`, () => assert.ok(CREDENTIAL_HEADER.test(name)));
  }
  for (const name of ['anthropic-version', 'x-org', 'OpenAI-Organization', 'anthropic-beta', 'x-request-source', 'user-agent', 'x-keyboard']) {
    test(`${name}: configuration`, () => assert.ok(!CREDENTIAL_HEADER.test(name)));
  }

  test('a literal header value that is no credential is not redacted from answers', () => {
    const provider: Provider = {
      name: 'p',
      api: 'anthropic',
      baseURL: 'https://api.example.com/v1',
      apiKey: undefined,
      keySource: 'none',
      headers: { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-literal-key-0123456789' },
    };
    const known = new KnownSecrets();
    known.setCurrent(providerSecrets(provider));
    assert.equal(known.redactor.redactKnown('released 2023-06-01, key sk-literal-key-0123456789'), `released 2023-06-01, key ${REDACTED}`);
  });
});
