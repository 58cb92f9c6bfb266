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
  for (const [alphabet, encoding] of [
    ['standard', 'base64'],
    ['url-safe', 'base64url'],
  ] as const) {
    for (let offset = 0; offset < 3; offset++) {
      const prefix = 'user:'.slice(0, offset + 2);
      out.push({ name: `base64 ${alphabet}, offset ${prefix.length % 3}`, text: Buffer.from(`${prefix}${secret}!`).toString(encoding) });
    }
  }
  out.push({ name: 'base64 then URL-encoded', text: encodeURIComponent(Buffer.from(`ab${secret}`).toString('base64')) });
  out.push({ name: 'base64 then JSON-escaped slashes', text: Buffer.from(`a${secret}`).toString('base64').replaceAll('/', '\\/') });
  return out;
}

// A window of this many characters of a secret is a leak (a redacted base64 run keeps a few
// characters at its edges, which carry a few bits of the secret at most).
const WINDOW = 12;

/**
 * Where text shows a piece of the secret: raw, or after undoing URL, JSON and HTML escapes
 * (together or one by one), or inside any base64 run of the text or of its decodings.
 * Independent of the Redactor, so it can judge it. Undefined when nothing leaks.
 */
export function leakOf(text: string, secret: string): string | undefined {
  const windows: string[] = [];
  for (let i = 0; i + WINDOW <= secret.length; i++) windows.push(secret.slice(i, i + WINDOW));
  const unjson = (t: string): string => t.replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))).replaceAll('\\/', '/');
  const unurl = (t: string): string => t.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  const unhtml = (t: string): string => t.replace(/&#(x?)([0-9a-fA-F]+);/gi, (_m, x: string, n: string) => String.fromCharCode(parseInt(n, x ? 16 : 10)));
  const views: Array<[string, string]> = [
    ['raw', text],
    ['JSON-unescaped', unjson(text)],
    ['URL-decoded', unurl(text)],
    ['HTML-unescaped', unhtml(text)],
    ['all unescaped', unhtml(unurl(unjson(text)))],
  ];
  for (const [name, view] of [...views]) {
    for (const run of view.match(/[A-Za-z0-9+/_-]{16,}={0,2}/g) ?? []) {
      for (let shift = 0; shift < 4; shift++) {
        views.push([`base64 in ${name} (+${shift})`, Buffer.from(run.slice(shift), 'base64').toString('latin1')]);
        views.push([`base64url in ${name} (+${shift})`, Buffer.from(run.slice(shift), 'base64url').toString('latin1')]);
      }
    }
  }
  for (const [name, view] of views) {
    const hit = windows.find((w) => view.includes(w));
    if (hit !== undefined) return `${name} shows "${hit}"`;
  }
  return undefined;
}
