// Issue 15's credentials: auth.aws in the schema (a key pair, an optional session token, or
// webIdentity), read under the same Kubernetes rules as apiKey (only Secret keys; the pod's own
// IRSA identity is the pod owner's and is refused unless the operator passes
// --allow-local-credentials), and every resolved AWS value known as a secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { credentialProblems, CREDENTIAL_PROBLEM, KUBERNETES_POLICY, LOCAL_POLICY } from '../../src/chain/credential-rules.ts';
import { resolveChain, type KeySources } from '../../src/chain/resolve.ts';
import type { FallbackChainDoc } from '../../src/chain/spec.ts';
import { validateChainDocument } from '../../src/chain/validate.ts';
import { providerSecrets } from '../../src/core/credentials.ts';

type Json = Record<string, unknown>;

function validate(provider: Json): ReturnType<typeof validateChainDocument> {
  return validateChainDocument({
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name: 'chat' },
    spec: { providers: [{ name: 'p', api: 'bedrock', baseURL: 'http://127.0.0.1:9', ...provider }], steps: [{ provider: 'p', model: 'm' }] },
  });
}

function doc(provider: Json): FallbackChainDoc {
  const result = validate(provider);
  if (!result.ok) assert.fail(`expected valid, got ${JSON.stringify(result.problems)}`);
  return result.doc;
}

const SA = {
  type: 'service_account',
  project_id: 'p',
  private_key_id: 'kid1',
  private_key: '-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n',
  client_email: 'sa@p.iam.gserviceaccount.com',
  token_uri: 'https://oauth2.googleapis.com/token',
};
const PAIR = {
  region: 'us-east-1',
  accessKeyId: { secretKey: 'aws-access-key-id' },
  secretAccessKey: { secretKey: 'aws-secret-access-key' },
  sessionToken: { secretKey: 'aws-session-token' },
};

describe('auth.aws credentials', () => {
  let root: string;
  let credentialsDir: string;
  const env = {
    AWS_ROLE_ARN: 'arn:aws:iam::1:role/r',
    AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
    AWS_SECRET: 'from-env',
  };

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'llmfb-aws-'));
    credentialsDir = path.join(root, 'credentials');
    await mkdir(credentialsDir, { recursive: true });
    await writeFile(path.join(credentialsDir, 'aws-access-key-id'), 'AKIAFROMSECRET\n');
    await writeFile(path.join(credentialsDir, 'aws-secret-access-key'), 'secret-from-the-secret\n');
    await writeFile(path.join(credentialsDir, 'aws-session-token'), 'session-from-the-secret\n');
    await writeFile(path.join(credentialsDir, 'vertex-sa.json'), JSON.stringify(SA));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const kube = (allowLocal = false): KeySources => ({
    env,
    credentialsDir,
    policy: allowLocal ? { kubernetes: true, allowLocalCredentials: true } : KUBERNETES_POLICY,
  });

  test('a key pair and session token from the Secret, in Kubernetes mode; every value is a secret', () => {
    const provider = resolveChain(doc({ auth: { aws: PAIR } }), 'ns/chat', kube()).steps[0]!.provider;
    assert.equal(provider.keyProblem, undefined);
    assert.deepEqual(provider.aws, {
      region: 'us-east-1',
      credentials: { kind: 'static', accessKeyId: 'AKIAFROMSECRET', secretAccessKey: 'secret-from-the-secret', sessionToken: 'session-from-the-secret' },
    });
    assert.equal(provider.keySource, 'aws:secretKey:aws-access-key-id');
    for (const value of ['AKIAFROMSECRET', 'secret-from-the-secret', 'session-from-the-secret']) assert.ok(providerSecrets(provider).includes(value));
  });

  test('the schema: a key pair or webIdentity alone, a region, one source per credential, Secret key names', () => {
    assert.equal(validate({ auth: { aws: { region: 'us-east-1', accessKeyId: { secretKey: 'a' } } } }).ok, false, 'half a pair');
    assert.equal(
      validate({ auth: { aws: { region: 'us-east-1', webIdentity: true, accessKeyId: { secretKey: 'a' }, secretAccessKey: { secretKey: 'b' } } } }).ok,
      false,
      'both',
    );
    assert.equal(validate({ auth: { aws: { accessKeyId: { secretKey: 'a' }, secretAccessKey: { secretKey: 'b' } } } }).ok, false, 'no region');
    assert.equal(validate({ auth: { aws: { ...PAIR, accessKeyId: { secretKey: 'a', env: 'B' } } } }).ok, false, 'two sources');
    assert.equal(validate({ auth: { aws: { ...PAIR, secretAccessKey: { secretKey: '../token' } } } }).ok, false, 'not a key name');
    assert.equal(validate({ auth: { aws: { region: 'us-east-1', webIdentity: true } } }).ok, true);
    assert.equal(validate({ auth: { gcp: {} } }).ok, false, 'unknown auth kind');
  });

  test('env and file sources of auth.aws are refused in Kubernetes mode, like apiKey', () => {
    const d = doc({ auth: { aws: { ...PAIR, secretAccessKey: { env: 'AWS_SECRET' } } } });
    const provider = resolveChain(d, 'ns/chat', kube()).steps[0]!.provider;
    assert.equal(provider.aws, undefined);
    assert.equal(provider.keyProblemCode, CREDENTIAL_PROBLEM.localRefused);
    assert.deepEqual(
      credentialProblems(d, KUBERNETES_POLICY).map((p) => p.path),
      ['/spec/providers/0/auth/aws/secretAccessKey'],
    );
  });

  test("webIdentity (IRSA) is the pod's identity: refused in Kubernetes unless --allow-local-credentials; its role and file come from the sidecar's environment, never the chain", () => {
    const d = doc({ auth: { aws: { region: 'eu-west-1', webIdentity: true } } });
    const refused = resolveChain(d, 'ns/chat', kube()).steps[0]!.provider;
    assert.equal(refused.aws, undefined);
    assert.equal(refused.keyProblemCode, CREDENTIAL_PROBLEM.localRefused);
    assert.match(refused.keyProblem ?? '', /pod's own identity/);
    assert.deepEqual(
      credentialProblems(d, KUBERNETES_POLICY).map((p) => p.path),
      ['/spec/providers/0/auth/aws/webIdentity'],
    );
    assert.deepEqual(credentialProblems(d, { kubernetes: true, allowLocalCredentials: true }), []);
    const allowed = resolveChain(d, 'ns/chat', kube(true)).steps[0]!.provider;
    assert.deepEqual(allowed.aws, {
      region: 'eu-west-1',
      credentials: {
        kind: 'webIdentity',
        roleArn: env.AWS_ROLE_ARN,
        tokenFile: env.AWS_WEB_IDENTITY_TOKEN_FILE,
        stsURL: 'https://sts.eu-west-1.amazonaws.com',
      },
    });
    const local = resolveChain(d, 'chat.yaml', { env: {}, credentialsDir, policy: LOCAL_POLICY }).steps[0]!.provider;
    assert.equal(local.keyProblemCode, CREDENTIAL_PROBLEM.unavailable, 'without IRSA in the environment the step is skipped with why');
  });

  test('gcpServiceAccount: the JSON key from the Secret; the file and its private key are secrets', () => {
    const provider = resolveChain(doc({ api: 'vertex', auth: { gcpServiceAccount: { secretKey: 'vertex-sa.json' } } }), 'ns/chat', kube()).steps[0]!.provider;
    assert.equal(provider.keyProblem, undefined);
    assert.equal(provider.gcp?.kind, 'serviceAccount');
    assert.ok(providerSecrets(provider).includes(SA.private_key));
    assert.ok(providerSecrets(provider).includes(JSON.stringify(SA)));
    assert.equal(validate({ api: 'vertex', auth: { gcpServiceAccount: { secretKey: 'a' }, gcpWorkloadIdentity: true } }).ok, false, 'one kind of auth');
  });

  test('gcpWorkloadIdentity is the pod identity: refused in Kubernetes unless --allow-local-credentials', () => {
    const d = doc({ api: 'vertex', auth: { gcpWorkloadIdentity: true } });
    assert.equal(resolveChain(d, 'ns/chat', kube()).steps[0]!.provider.keyProblemCode, CREDENTIAL_PROBLEM.localRefused);
    assert.deepEqual(
      credentialProblems(d, KUBERNETES_POLICY).map((p) => p.path),
      ['/spec/providers/0/auth/gcpWorkloadIdentity'],
    );
    assert.deepEqual(resolveChain(d, 'ns/chat', kube(true)).steps[0]!.provider.gcp, {
      kind: 'metadata',
      metadataURL: 'http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token',
    });
  });

  test('azureWorkloadIdentity is the pod identity: refused in Kubernetes unless --allow-local-credentials; client, tenant and token file from the environment', () => {
    const d = doc({ api: 'azure-openai', auth: { azureWorkloadIdentity: true } });
    assert.equal(resolveChain(d, 'ns/chat', kube()).steps[0]!.provider.keyProblemCode, CREDENTIAL_PROBLEM.localRefused);
    assert.deepEqual(
      credentialProblems(d, KUBERNETES_POLICY).map((p) => p.path),
      ['/spec/providers/0/auth/azureWorkloadIdentity'],
    );
    const aks = { AZURE_TENANT_ID: 't1', AZURE_CLIENT_ID: 'c1', AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' };
    const allowed = resolveChain(d, 'ns/chat', { env: aks, credentialsDir, policy: { kubernetes: true, allowLocalCredentials: true } }).steps[0]!.provider;
    assert.deepEqual(allowed.azure, {
      tenantId: 't1',
      clientId: 'c1',
      tokenFile: aks.AZURE_FEDERATED_TOKEN_FILE,
      tokenURL: 'https://login.microsoftonline.com/t1/oauth2/v2.0/token',
    });
    assert.equal(
      resolveChain(d, 'chat.yaml', { env: {}, credentialsDir, policy: LOCAL_POLICY }).steps[0]!.provider.keyProblemCode,
      CREDENTIAL_PROBLEM.unavailable,
    );
  });
});
