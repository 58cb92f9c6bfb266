// A throwaway CA and a serving certificate for 127.0.0.1 (IP SAN: Go's TLS, as used by the
// API server to call webhooks, ignores the common name), written to a temp folder.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface TestCerts {
  dir: string;
  caCert: string;
  certFile: string;
  keyFile: string;
  /** Issue another serving certificate from the same CA (for rotation tests); returns its PEM. */
  rotate(): Promise<string>;
  remove(): Promise<void>;
}

export async function makeTestCerts(): Promise<TestCerts> {
  const ca = await generate([{ name: 'commonName', value: 'llm-fallback test CA' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'llmfb-certs-'));
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  const issue = async (): Promise<string> => {
    const serving = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keySize: 2048,
      algorithm: 'sha256',
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    await writeFile(keyFile, serving.private, { mode: 0o600 });
    await writeFile(certFile, serving.cert);
    return serving.cert;
  };
  await issue();
  return { dir, caCert: ca.cert, certFile, keyFile, rotate: issue, remove: () => rm(dir, { recursive: true, force: true }) };
}
