// Every way a test writes a secret into text, as an upstream might echo it: raw, JSON
// \uXXXX escapes (whole, partial, upper-case hex), JSON's \/, URL encoding, HTML entities,
// base64 (standard and URL-safe) at each of the three offsets, and mixtures of these.

export function encodings(secret: string): Array<{ name: string; text: string }> {
  const jsonUnicode = [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
  const out = [
    { name: 'raw', text: secret },
    { name: 'JSON \\u escapes (all)', text: jsonUnicode },
    { name: 'JSON \\u escape of the first char', text: `\\u${secret.charCodeAt(0).toString(16).padStart(4, '0')}${secret.slice(1)}` },
    { name: 'JSON \\u escapes, upper-case hex', text: jsonUnicode.toUpperCase().replaceAll('\\U', '\\u') },
    { name: 'JSON \\/', text: secret.replaceAll('/', '\\/') },
    { name: 'URL-encoded (encodeURIComponent)', text: encodeURIComponent(secret) },
    { name: 'URL-encoded (every byte)', text: [...secret].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('') },
    { name: 'HTML entities', text: [...secret].map((c) => `&#${c.charCodeAt(0)};`).join('') },
  ];
  for (const [alphabet, encoding] of [['standard', 'base64'], ['url-safe', 'base64url']] as const) {
    for (let offset = 0; offset < 3; offset++) {
      const prefix = 'user:'.slice(0, offset + 2);
      out.push({ name: `base64 ${alphabet}, offset ${(prefix.length) % 3}`, text: Buffer.from(`${prefix}${secret}!`).toString(encoding) });
    }
  }
  out.push({ name: 'base64 then URL-encoded', text: encodeURIComponent(Buffer.from(`ab${secret}`).toString('base64')) });
  out.push({ name: 'base64 then JSON-escaped slashes', text: Buffer.from(`a${secret}`).toString('base64').replaceAll('/', '\\/') });
  return out;
}

