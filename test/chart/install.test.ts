// The chart against a real kube-apiserver + etcd (test/support/kube-harness.ts): `helm install`
// is accepted by the server; then, as envtest does, the controller runs in this process with
// the chart's own pieces — the certificate from the chart-generated Secret, the sidecar defaults
// from the chart's ConfigMap, the args of the chart's Deployment, and the token of the chart's
// ServiceAccount (so the chart's RBAC is what it runs with) — and the chart's webhook points at it
// through `webhook.url`. An annotated Pod created through the API comes back with the sidecar,
// FallbackChains become Ready, `helm upgrade` keeps the CA, `helm uninstall` removes the webhook.
// There is no kubelet: the Deployment is stored, never run, and `helm test` (which waits for its
// pod to finish) cannot run; its script is run here against the local controller instead.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { parseControllerOptions, type ControllerOptions } from '../../src/config/options.ts';
import { startController, type RunningController } from '../../src/controller.ts';
import { CHAIN_READER } from '../../src/k8s/rbac.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';
import { chartDir, get, helm, parseObjects, type Json } from './helm.ts';
import { eventually } from '../support/eventually.ts';

const execFileAsync = promisify(execFile);

const RELEASE = 'llm-fallback';
const NS = 'llm-fallback-system';
const APP_NS = 'shop';
const SIDECAR_IMAGE = 'ghcr.io/llm-fallback/llm-fallback:e2e';
const GROUP = { group: 'llmfallback.io', version: 'v1alpha1', plural: 'fallbackchains' };

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function annotatedPod(name: string, extra: { labels?: Record<string, string> } = {}): V1Pod {
  return {
    metadata: {
      name,
      annotations: { 'llmfallback.io/inject': 'true', 'llmfallback.io/credentials-secret': 'llm-keys' },
      ...(extra.labels ? { labels: extra.labels } : {}),
    },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
}

function sidecarOf(pod: V1Pod): { image?: string; restartPolicy?: string } | undefined {
  return pod.spec?.initContainers?.find((c) => c.name === 'llm-fallback');
}

function chainYaml(name: string, namespace: string, stepProvider = 'openai'): string {
  return `apiVersion: llmfallback.io/v1alpha1
kind: FallbackChain
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  providers:
    - name: openai
      api: openai
      baseURL: https://api.openai.com/v1
      apiKey: {secretKey: openai}
  steps:
    - provider: ${stepProvider}
      model: gpt-4o-mini
`;
}

/** POSTs an AdmissionReview over HTTPS, trusting only the given CA (no insecure flag). */
function postReview(url: string, ca: string, body: unknown): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, timeout: 5000 }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Json }));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

describe('helm install into a real API server, controller run locally', () => {
  let kube: KubeHarness;
  let dir: string;
  let port: number;
  let controller: RunningController | undefined;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let installOutput = '';
  const logs: Json[] = [];
  const kc = (): string[] => ['--kubeconfig', kube.kubeconfigPath];
  const secretName = 'llm-fallback-webhook-tls';

  const readSecret = async (): Promise<Record<string, string>> => (await core.readNamespacedSecret({ namespace: NS, name: secretName })).data ?? {};
  const caBundle = async (): Promise<string | undefined> => {
    const mwc = await kube.kubeConfig().makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: 'llm-fallback-injector' });
    return mwc.webhooks?.[0]?.clientConfig.caBundle;
  };
  const writeServingPair = async (data: Record<string, string>): Promise<void> => {
    await writeFile(path.join(dir, 'tls.crt'), Buffer.from(data['tls.crt'] ?? '', 'base64'));
    await writeFile(path.join(dir, 'tls.key'), Buffer.from(data['tls.key'] ?? '', 'base64'), { mode: 0o600 });
  };

  before(async () => {
    kube = await startKube();
    dir = await mkdtemp(path.join(tmpdir(), 'llmfb-chart-'));
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    custom = kube.kubeConfig().makeApiClient(CustomObjectsApi);
    await kube.createNamespace(APP_NS);
    port = await freePort();
    installOutput = await helm([
      'install',
      RELEASE,
      chartDir,
      ...kc(),
      '--namespace',
      NS,
      '--create-namespace',
      '--values',
      path.join(chartDir, 'ci', 'dev-url-values.yaml'),
      '--set',
      `webhook.url=https://127.0.0.1:${port}/mutate-pods`,
      '--set',
      'sidecar.image.tag=e2e',
    ]);
  });

  after(async () => {
    await controller?.stop();
    await kube?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('helm install: every object of the release is stored by the API server (CRD included)', async () => {
    assert.match(installOutput, /STATUS: deployed/);
    const manifest = await helm(['get', 'manifest', RELEASE, '--namespace', NS, ...kc()]);
    const objects = parseObjects(manifest);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of [
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ConfigMap',
      'Secret',
      'Service',
      'Deployment',
      'PodDisruptionBudget',
      'MutatingWebhookConfiguration',
      'FallbackChain',
    ]) {
      assert.ok(kinds.has(kind), `${kind} is part of the release`);
    }
    const got = await kube.kubectl(['get', '-f', '-', '-o', 'name'], { input: manifest });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout.trim().split('\n').length, objects.length);
    const deployment = await kube.kubeConfig().makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: NS, name: 'llm-fallback-controller' });
    assert.equal(deployment.spec?.replicas, 2);
    const crd = await kube.kubectl(['get', 'crd', 'fallbackchains.llmfallback.io', '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
    assert.equal(crd.stdout, 'True');
  });

  test('NOTES.txt tells the user the next two steps', async () => {
    const notes = await helm(['get', 'notes', RELEASE, '--namespace', NS, ...kc()]);
    assert.match(notes, /Next steps/);
    assert.match(notes, /1\. Put the provider keys in a Secret and describe the chain/);
    assert.match(notes, /2\. Ask for the sidecar/);
    assert.match(notes, /kubectl -n NS apply -f chain\.yaml/);
  });

  test("the controller starts from the chart's Deployment args, Secret, ConfigMap and ServiceAccount", async () => {
    const deployment = await kube.kubeConfig().makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: NS, name: 'llm-fallback-controller' });
    const container = deployment.spec?.template.spec?.containers[0];
    const args = container?.args ?? [];
    assert.equal(args[0], 'controller');
    const fromChart = parseControllerOptions(args.slice(1), {});
    const defaults = (await core.readNamespacedConfigMap({ namespace: NS, name: 'llm-fallback-sidecar-defaults' })).data?.['defaults.yaml'];
    assert.ok(defaults);
    await writeFile(path.join(dir, 'defaults.yaml'), defaults);
    await writeServingPair(await readSecret());
    const serviceAccount = deployment.spec?.template.spec?.serviceAccountName;
    assert.ok(serviceAccount);
    const { kubeConfig } = await kube.serviceAccountKubeConfig(NS, serviceAccount);
    const options: ControllerOptions = {
      ...fromChart,
      host: '127.0.0.1',
      port,
      healthPort: 0,
      tlsCertFile: path.join(dir, 'tls.crt'),
      tlsKeyFile: path.join(dir, 'tls.key'),
      tlsReloadIntervalMs: 0,
      sidecarDefaultsFile: path.join(dir, 'defaults.yaml'),
      identity: 'local-controller',
      renewIntervalMs: 500,
    };
    const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Json) });
    controller = await startController(options, { logger, kubeConfig });
    const started = controller;
    await eventually('the local controller to lead', async () => (started.isLeader() ? true : undefined));
    const lease = await kube.kubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: NS, name: fromChart.leaseName });
    assert.equal(fromChart.leaseName, 'llm-fallback-controller');
    assert.equal(lease.spec?.holderIdentity, 'local-controller');
  });

  test('the webhook is reachable over HTTPS trusting only the chart-generated CA', async () => {
    assert.ok(controller);
    const ca = Buffer.from((await readSecret())['ca.crt'] ?? '', 'base64').toString('utf8');
    assert.equal(await caBundle(), (await readSecret())['ca.crt'], "the webhook configuration trusts the Secret's CA");
    const reply = await postReview(controller.webhookUrl, ca, {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: APP_NS,
        operation: 'CREATE',
        object: annotatedPod('direct'),
      },
    });
    assert.equal(reply.status, 200);
    assert.equal(get(reply.body, 'response', 'allowed'), true);
    assert.equal(get(reply.body, 'response', 'patchType'), 'JSONPatch');
    // A CA the chart did not generate is refused by the TLS handshake.
    const { makeTestCerts } = await import('../support/test-certs.ts');
    const stranger = await makeTestCerts();
    try {
      await assert.rejects(postReview(controller.webhookUrl, stranger.caCert, {}), /self.signed|unable to verify|certificate/i);
    } finally {
      await stranger.remove();
    }
  });

  test("an annotated Pod created through the API comes back with the sidecar from the chart's defaults", async () => {
    // The API server loads webhook configurations asynchronously: dry-run until it calls us.
    await eventually('the API server to call the webhook', async () => {
      const probe = await core.createNamespacedPod({ namespace: APP_NS, body: annotatedPod('probe'), dryRun: 'All' });
      return sidecarOf(probe) ? true : undefined;
    });
    const created = await core.createNamespacedPod({ namespace: APP_NS, body: annotatedPod('chat') });
    const stored = await core.readNamespacedPod({ namespace: APP_NS, name: 'chat' });
    for (const pod of [created, stored]) {
      assert.equal(sidecarOf(pod)?.image, SIDECAR_IMAGE, 'image from the chart ConfigMap (sidecar.image.tag=e2e)');
      assert.equal(sidecarOf(pod)?.restartPolicy, 'Always');
      assert.equal(pod.metadata?.annotations?.['llmfallback.io/status'], 'injected');
      assert.equal(pod.spec?.containers[0]?.env?.find((e) => e.name === 'OPENAI_BASE_URL')?.value, 'http://127.0.0.1:4000/v1');
    }
    assert.ok(logs.some((l) => l['msg'] === 'webhook: injected' && l['pod'] === 'chat'));
  });

  const notSent: Array<{ what: string; namespace: string; labels?: Record<string, string> }> = [
    // Proves the namespaceSelector keeps kube-system away from the webhook (failurePolicy Fail would otherwise inject it).
    { what: 'an annotated Pod in kube-system', namespace: 'kube-system' },
    // Proves the objectSelector keeps the chart's own pods (label llmfallback.io/webhook=ignore) away from it.
    { what: 'an annotated Pod labelled llmfallback.io/webhook=ignore', namespace: APP_NS, labels: { 'llmfallback.io/webhook': 'ignore' } },
  ];
  for (const row of notSent) {
    test(`${row.what} is never sent to the webhook`, async () => {
      const name = `unsent-${row.namespace}`;
      const before = logs.length;
      const created = await core.createNamespacedPod({ namespace: row.namespace, body: annotatedPod(name, row.labels ? { labels: row.labels } : {}) });
      assert.equal(sidecarOf(created), undefined);
      assert.equal(created.metadata?.annotations?.['llmfallback.io/status'], undefined);
      assert.equal(logs.slice(before).filter((l) => l['pod'] === name).length, 0);
    });
  }

  test("FallbackChains applied through the API become Ready (the chart's example too); an invalid one is refused by the CRD", async () => {
    const applied = await kube.kubectl(['apply', '-f', '-'], { input: chainYaml('chat', APP_NS) });
    assert.equal(applied.code, 0, applied.stderr);
    // The chart's crds/ carries the schema's cross-field rules (CEL): the server refuses this one.
    const refused = await kube.kubectl(['apply', '-f', '-'], { input: chainYaml('broken', APP_NS, 'nobody') });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /step names provider "nobody", which spec\.providers does not declare/);
    const readyOf = async (namespace: string, name: string): Promise<Record<string, string> | undefined> => {
      const object = (await custom.getNamespacedCustomObject({ ...GROUP, namespace, name })) as Json;
      const conditions = (get(object, 'status', 'conditions') ?? []) as Array<Record<string, string>>;
      return conditions.find((c) => c['type'] === 'Ready');
    };
    const rows: Array<{ namespace: string; name: string }> = [
      // Proves a chain applied with kubectl is validated by the local controller under the chart's RBAC.
      { namespace: APP_NS, name: 'chat' },
      // Proves the chart's exampleChain is a valid FallbackChain.
      { namespace: NS, name: 'example' },
    ];
    for (const row of rows) {
      const ready = await eventually(`${row.namespace}/${row.name} status`, () => readyOf(row.namespace, row.name));
      assert.deepEqual([ready['status'], ready['reason']], ['True', 'Valid'], `${row.namespace}/${row.name}`);
    }
  });

  test('the chain-reader RoleBinding appears where a pod was injected (the chart lets the controller bind it)', async () => {
    const rbac = kube.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const binding = await eventually('the RoleBinding in shop', async () => {
      try {
        return await rbac.readNamespacedRoleBinding({ namespace: APP_NS, name: CHAIN_READER });
      } catch {
        return undefined;
      }
    });
    assert.equal(binding.roleRef.name, CHAIN_READER);
    assert.deepEqual(
      binding.subjects?.map((s) => `${s.kind}:${s.name}`),
      [`Group:system:serviceaccounts:${APP_NS}`],
    );
  });

  test("the helm test pod's script passes against the running controller's health port", async () => {
    assert.ok(controller);
    const hooks = parseObjects(await helm(['get', 'hooks', RELEASE, '--namespace', NS, ...kc()]));
    const pod = hooks.find((o) => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test');
    assert.ok(pod, 'the release has a test hook pod');
    const container = get(pod, 'spec', 'containers', 0) as { command: string[]; env: Array<{ name: string; value: string }> };
    const urls = container.env.find((e) => e.name === 'HEALTH_URLS')?.value ?? '';
    assert.match(urls, /^http:\/\/llm-fallback-webhook\.llm-fallback-system\.svc:8081\/healthz /);
    // Same paths, aimed at the local controller instead of the in-cluster Service.
    const local = urls.replaceAll('http://llm-fallback-webhook.llm-fallback-system.svc:8081', controller.healthUrl);
    const podEnv = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    const { stdout } = await execFileAsync(process.execPath, container.command.slice(1), {
      env: { ...process.env, ...podEnv, HEALTH_URLS: local },
    });
    assert.match(stdout, /\/healthz 200/);
    assert.match(stdout, /\/readyz 200/);
  });

  test('helm upgrade keeps the CA and the serving certificate; the new values apply', async () => {
    const before = await readSecret();
    const bundleBefore = await caBundle();
    await helm(['upgrade', RELEASE, chartDir, ...kc(), '--namespace', NS, '--reuse-values', '--set', 'webhook.timeoutSeconds=7']);
    assert.deepEqual(await readSecret(), before);
    assert.equal(await caBundle(), bundleBefore);
    const mwc = await kube.kubeConfig().makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: 'llm-fallback-injector' });
    assert.equal(mwc.webhooks?.[0]?.timeoutSeconds, 7);
  });

  test('helm upgrade with new certificate names re-signs with the same CA; the webhook keeps working after a reload', async () => {
    assert.ok(controller);
    const before = await readSecret();
    await helm(['upgrade', RELEASE, chartDir, ...kc(), '--namespace', NS, '--reuse-values', '--set', 'webhook.tls.extraDNSNames={llm-fallback.example.test}']);
    const afterUpgrade = await readSecret();
    assert.equal(afterUpgrade['ca.crt'], before['ca.crt']);
    assert.equal(afterUpgrade['ca.key'], before['ca.key']);
    assert.notEqual(afterUpgrade['tls.crt'], before['tls.crt']);
    assert.equal(await caBundle(), before['ca.crt']);
    const ca = new X509Certificate(Buffer.from(afterUpgrade['ca.crt'] ?? '', 'base64'));
    const serving = new X509Certificate(Buffer.from(afterUpgrade['tls.crt'] ?? '', 'base64'));
    assert.ok(serving.verify(ca.publicKey));
    assert.ok(serving.checkHost('llm-fallback.example.test'));
    assert.equal(serving.checkIP('127.0.0.1'), '127.0.0.1');
    await writeServingPair(afterUpgrade);
    assert.equal(await controller.reloadCertificate(), true);
    const created = await core.createNamespacedPod({ namespace: APP_NS, body: annotatedPod('after-upgrade') });
    assert.equal(sidecarOf(created)?.image, SIDECAR_IMAGE);
  });

  test('helm uninstall removes the webhook and the controller objects; the CRD and the chains stay', async () => {
    await helm(['uninstall', RELEASE, ...kc(), '--namespace', NS]);
    const webhooks = await kube.kubeConfig().makeApiClient(AdmissionregistrationV1Api).listMutatingWebhookConfiguration();
    assert.deepEqual(
      webhooks.items.map((w) => w.metadata?.name),
      [],
    );
    const left = await kube.kubectl([
      'get',
      'deployment,service,configmap,secret,role,rolebinding',
      '-n',
      NS,
      '-l',
      'app.kubernetes.io/instance=llm-fallback',
      '-o',
      'name',
    ]);
    assert.equal(left.stdout.trim(), '');
    const crd = await kube.kubectl(['get', 'crd', 'fallbackchains.llmfallback.io', '-o', 'name']);
    assert.equal(crd.stdout.trim(), 'customresourcedefinition.apiextensions.k8s.io/fallbackchains.llmfallback.io');
    await custom.getNamespacedCustomObject({ ...GROUP, namespace: APP_NS, name: 'chat' });
    const plain = await core.createNamespacedPod({ namespace: APP_NS, body: annotatedPod('after-uninstall') });
    assert.equal(sidecarOf(plain), undefined, 'no webhook, no injection');
  });
});
