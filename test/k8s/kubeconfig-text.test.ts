// A kubeconfig's text (src/k8s/kubeconfig-text.ts): JSON read natively, YAML by the yaml
// library, and the same document either way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readKubeconfigText } from '../../src/k8s/kubeconfig-text.ts';

const CONFIG = {
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [
    {
      name: 'c',
      cluster: { server: 'https://10.0.0.1:443', 'certificate-authority-data': Buffer.alloc(1500, 7).toString('base64'), 'insecure-skip-tls-verify': false },
    },
  ],
  users: [{ name: 'u', user: { token: 'abc' } }],
  contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: null } }],
  'current-context': 'x',
};

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'llmfb-kubeconfig-text-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const at = path.join(dir, name);
  await writeFile(at, text);
  return at;
}

describe('readKubeconfigText', () => {
  test('a JSON file gives the document the yaml library gives for it (indented, or after blank lines)', async () => {
    for (const [name, text] of [
      ['compact.json', JSON.stringify(CONFIG)],
      ['indented.json', `\n\n  ${JSON.stringify(CONFIG, null, 2)}\n`],
    ] as const) {
      assert.deepEqual(readKubeconfigText(await file(name, text)), CONFIG, name);
      assert.deepEqual(readKubeconfigText(await file(name, text)), parseYaml(text), name);
    }
  });

  test('a YAML file, as kubectl writes it', async () => {
    const text = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: c',
      '  cluster:',
      `    certificate-authority-data: ${Buffer.alloc(1500, 7).toString('base64')}`,
      '    server: https://10.0.0.1:443',
      'current-context: x',
    ].join('\n');
    const read = readKubeconfigText(await file('kubectl.yaml', text)) as { clusters: Array<{ cluster: { server: string } }>; 'current-context': string };
    assert.equal(read.clusters[0]?.cluster.server, 'https://10.0.0.1:443');
    assert.equal(read['current-context'], 'x');
  });

  test('a YAML flow mapping starts like JSON but is not JSON: the yaml library reads it', async () => {
    const read = readKubeconfigText(await file('flow.yaml', '{apiVersion: v1, current-context: x, clusters: [{name: c}]}'));
    assert.deepEqual(read, { apiVersion: 'v1', 'current-context': 'x', clusters: [{ name: 'c' }] });
  });

  test('neither JSON nor YAML: the YAML parser says why; no file: the file system does', async () => {
    assert.throws(
      () => readKubeconfigText(path.join(dir, 'missing')),
      (error: Error & { code?: string }) => error.code === 'ENOENT',
    );
    const broken = await file('broken', '{"clusters": [');
    assert.throws(
      () => readKubeconfigText(broken),
      (error: Error) => error.name === 'YAMLParseError',
    );
  });
});
