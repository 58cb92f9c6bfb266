// Injection: golden files (pod in -> pod out) for injectPod / injectManifest, checked three
// ways: the output equals the golden, a second pass changes nothing, and the webhook's JSON
// Patch applied to the input gives the golden too. Plus the admission and defaults edge cases
// and the `llm-fallback inject` command.
//
// UPDATE_GOLDEN=1 node_modules/.bin/node --test test/k8s/inject.test.ts rewrites the *.out.yaml
// files; review the diff before keeping it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { admit, parseAdmissionReview, type AdmissionRequest } from '../../src/k8s/admission.ts';
import { injectPod, type InjectContext, type InjectOutcome } from '../../src/k8s/inject.ts';
import type { PodLike } from '../../src/k8s/pod-types.ts';
import { DEFAULT_SIDECAR, parseSidecarDefaults, SidecarDefaultsError, type SidecarSettings } from '../../src/k8s/sidecar-settings.ts';
import { injectManifest } from '../../src/k8s/workload.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = path.join(repoRoot, 'test', 'fixtures', 'inject');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

/** Pinned, so the goldens do not move when the built-in defaults (e.g. the image tag) do. */
const SETTINGS: SidecarSettings = {
  image: 'registry.example/llm-fallback:test',
  imagePullPolicy: 'IfNotPresent',
  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
  ports: { api: 4000, admin: 4001 },
  logLevel: 'info',
  allowLocalCredentials: false,
};
const LABELLED: InjectContext = { namespaceLabels: { 'llmfallback.io/inject': 'enabled', 'kubernetes.io/metadata.name': 'shop' } };

interface GoldenCase {
  name: string;
  context?: InjectContext;
  settings?: SidecarSettings;
  outcome: InjectOutcome;
  /** A piece of the reason the injector must give. */
  reason?: string;
}

const CASES: GoldenCase[] = [
  // Proves the whole sidecar: native init container, probes, env on the app, status annotation and label.
  { name: 'plain-pod', outcome: 'injected' },
  // Proves an app's own OPENAI_BASE_URL is kept and only the missing ANTHROPIC_BASE_URL is added.
  { name: 'keeps-own-base-url', outcome: 'injected' },
  // Proves the credentials Secret becomes a volume mounted read-only into the sidecar, the app's volumes kept.
  { name: 'credentials-secret', outcome: 'injected' },
  // Proves the image/cpu/memory annotations override the defaults (memory limit follows the request).
  { name: 'image-and-resources', outcome: 'injected' },
  // Proves a Deployment's pod template is injected (both app containers get the env).
  { name: 'deployment', outcome: 'injected' },
  // Proves a Job's template is injected with a native sidecar, so the Job can still complete.
  { name: 'job', outcome: 'injected' },
  // Proves a CronJob's nested job template is found and injected.
  { name: 'cronjob', outcome: 'injected' },
  // Proves an injected pod passes through unchanged (the webhook sees pods of injected templates).
  { name: 'already-injected', outcome: 'already-injected', reason: 'already injected' },
  // Proves hostNetwork pods are skipped, with the reason recorded on the pod.
  { name: 'host-network', outcome: 'skipped', reason: 'hostNetwork' },
  // Proves other webhooks' init containers, native sidecars, containers and volumes are all kept in place.
  { name: 'other-webhooks-containers', outcome: 'injected' },
  // Proves the namespace label alone triggers injection (pod created with generateName, no name).
  { name: 'namespace-labelled', context: LABELLED, outcome: 'injected', reason: 'namespace label' },
  // Proves inject: "false" wins over the namespace label and leaves no trace.
  { name: 'opted-out', context: LABELLED, outcome: 'not-requested', reason: '"false"' },
  // Proves a pod nobody asked to inject is left exactly as it came.
  { name: 'not-requested', outcome: 'not-requested' },
  // Proves automountServiceAccountToken: false gets a projected token for the sidecar only.
  { name: 'no-automount-token', outcome: 'injected' },
  // Proves a declared port 4000 is detected and the pod skipped rather than broken.
  { name: 'port-clash', outcome: 'skipped', reason: 'port 4000 is already declared by container app' },
  // Proves an invalid quantity annotation skips injection instead of making the pod unschedulable.
  { name: 'bad-cpu-annotation', outcome: 'skipped', reason: 'llmfallback.io/sidecar-cpu' },
  // Proves a hand-made container named llm-fallback is never doubled.
  { name: 'foreign-llm-fallback-container', outcome: 'skipped', reason: 'already has a container named llm-fallback' },
  // Proves a defaults file's ports, image, pull policy and log level reach the sidecar and the app's URLs.
  {
    name: 'custom-defaults',
    settings: parseSidecarDefaults(
      'image: registry.example/llm-fallback:custom\nimagePullPolicy: Always\nports: {api: 5000, admin: 5001}\nlogLevel: debug\n',
      'inline',
    ),
    outcome: 'injected',
  },
];

function readYaml(file: string): unknown {
  return parseYaml(readFileSync(path.join(fixtures, file), 'utf8'));
}

function run(c: GoldenCase, input: unknown): ReturnType<typeof injectManifest> {
  return injectManifest(input, c.settings ?? SETTINGS, c.context ?? {});
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function podRequest(object: unknown): AdmissionRequest {
  const namespace = (object as PodLike).metadata?.namespace ?? 'default';
  return { uid: 'uid-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace, object };
}

function decodePatch(patch: string | undefined): Operation[] {
  return patch === undefined ? [] : (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Operation[]);
}

describe('golden files: test/fixtures/inject/<case>.in.yaml -> <case>.out.yaml', () => {
  test('every golden file belongs to a case and every case has both files', () => {
    const names = new Set(CASES.map((c) => c.name));
    const files = readdirSync(fixtures).filter((f) => f.endsWith('.yaml'));
    const orphans = files.filter((f) => !names.has(f.replace(/\.(in|out)\.yaml$/, '')) || !/\.(in|out)\.yaml$/.test(f));
    assert.deepEqual(orphans, [], 'stale golden files: delete them or add their case');
    const missing = CASES.flatMap((c) => [`${c.name}.in.yaml`, `${c.name}.out.yaml`]).filter((f) => !files.includes(f));
    assert.deepEqual(missing, [], UPDATE ? 'input files missing' : 'golden files missing: run with UPDATE_GOLDEN=1 and review');
  });

  for (const c of CASES) {
    test(`${c.name}: output equals the golden, and a second pass changes nothing`, () => {
      const input = deepFreeze(readYaml(`${c.name}.in.yaml`));
      const { object, reports } = run(c, input); // frozen input: any in-place change would throw
      assert.equal(reports.length, 1);
      assert.equal(reports[0]?.outcome, c.outcome, reports[0]?.reason);
      if (c.reason !== undefined) assert.ok(reports[0]?.reason.includes(c.reason), `reason "${reports[0]?.reason}" lacks "${c.reason}"`);
      const goldenFile = path.join(fixtures, `${c.name}.out.yaml`);
      if (UPDATE) writeFileSync(goldenFile, `# Generated by UPDATE_GOLDEN=1 from ${c.name}.in.yaml; reviewed by hand.\n${stringify(object, { lineWidth: 0 })}`);
      assert.ok(existsSync(goldenFile), `${goldenFile} missing: run with UPDATE_GOLDEN=1`);
      assert.deepEqual(object, readYaml(`${c.name}.out.yaml`));
      if (c.outcome === 'not-requested') assert.deepEqual(object, input, 'a pod not asked for is not touched at all');
      const again = run(c, deepFreeze(structuredClone(object)));
      assert.deepEqual(again.object, object, 'inject(inject(x)) must equal inject(x)');
    });
  }

  for (const c of CASES) {
    // A missing input file is reported by the first test of this suite.
    if (!existsSync(path.join(fixtures, `${c.name}.in.yaml`))) continue;
    const input = readYaml(`${c.name}.in.yaml`) as PodLike;
    if (input.kind !== 'Pod') continue;
    test(`${c.name}: the webhook's JSON Patch applied to the input gives the golden`, () => {
      const { review, result } = admit(podRequest(input), (pod) => injectPod(pod, c.settings ?? SETTINGS, c.context ?? {}));
      assert.equal(review.response.allowed, true);
      assert.equal(review.response.uid, 'uid-1');
      assert.equal(result?.outcome, c.outcome);
      const patch = decodePatch(review.response.patch);
      if (c.outcome === 'not-requested' || c.outcome === 'already-injected') {
        assert.equal(review.response.patch, undefined, 'no change: no patch at all');
        assert.equal(review.response.patchType, undefined);
      } else {
        assert.equal(review.response.patchType, 'JSONPatch');
      }
      const patched = jsonpatch.applyPatch(structuredClone(input), patch, true, false).newDocument;
      assert.deepEqual(patched, readYaml(`${c.name}.out.yaml`));
      // Only additions and the annotation/label maps: never a removal or replacement of what was there.
      for (const op of patch) assert.equal(op.op, 'add', `unexpected ${op.op} at ${op.path}`);
    });
  }
});

describe('injectPod: what the sidecar looks like', () => {
  const pod: PodLike = { metadata: { name: 'p', annotations: { 'llmfallback.io/inject': 'true' } }, spec: { containers: [{ name: 'app', image: 'x' }] } };
  const result = injectPod(pod, SETTINGS);
  const sidecar = result.pod.spec?.initContainers?.[0];

  const expectations: Array<{ what: string; check: () => void }> = [
    // Proves it is a native sidecar: an init container that keeps running.
    { what: 'native sidecar', check: () => assert.equal(sidecar?.['restartPolicy'], 'Always') },
    // Proves the app waits for the proxy: a startup probe on /readyz of the admin port.
    {
      what: 'startup probe on /readyz',
      check: () => assert.deepEqual((sidecar?.['startupProbe'] as { httpGet: unknown }).httpGet, { path: '/readyz', port: 4001 }),
    },
    // Proves the sidecar reads chains from the API, not files.
    { what: 'serve --kubernetes', check: () => assert.deepEqual(sidecar?.['args'], ['serve', '--kubernetes']) },
    // Proves the namespace comes from the downward API.
    {
      what: 'namespace from the downward API',
      check: () =>
        assert.deepEqual(sidecar?.env?.find((e) => e.name === 'LLM_FALLBACK_NAMESPACE')?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } }),
    },
    // Proves the app is pointed at the proxy on loopback, for both SDK families.
    {
      what: 'app env',
      check: () =>
        assert.deepEqual(result.pod.spec?.containers?.[0]?.env, [
          { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:4000/v1' },
          { name: 'ANTHROPIC_BASE_URL', value: 'http://127.0.0.1:4000' },
        ]),
    },
    // Proves the input object is not modified (the webhook diffs input and output).
    { what: 'input untouched', check: () => assert.equal(pod.spec?.initContainers, undefined) },
  ];
  for (const e of expectations) test(e.what, e.check);

  test('OTEL_* from the sidecar defaults reach the sidecar, with the pod and namespace as resource attributes', () => {
    const traced = injectPod(pod, {
      ...SETTINGS,
      otelEnv: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4318', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod' },
    }).pod.spec?.initContainers?.[0];
    const env = traced?.env ?? [];
    const names = env.map((e) => e.name);
    assert.deepEqual(
      env.filter((e) => e.name.startsWith('OTEL_') || e.name === 'LLM_FALLBACK_POD_NAME'),
      [
        { name: 'LLM_FALLBACK_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.observability:4318' },
        {
          name: 'OTEL_RESOURCE_ATTRIBUTES',
          value: 'k8s.namespace.name=$(LLM_FALLBACK_NAMESPACE),k8s.pod.name=$(LLM_FALLBACK_POD_NAME),deployment.environment.name=prod',
        },
      ],
    );
    // $(VAR) expands only from variables defined before it.
    assert.ok(names.indexOf('LLM_FALLBACK_NAMESPACE') < names.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    assert.ok(names.indexOf('LLM_FALLBACK_POD_NAME') < names.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    // Off (no otelEnv): nothing of it.
    assert.equal(
      sidecar?.env?.some((e) => e.name.startsWith('OTEL_') || e.name === 'LLM_FALLBACK_POD_NAME'),
      false,
    );
  });

  test('built-in defaults are used when no defaults file is given', () => {
    const out = injectPod(pod, DEFAULT_SIDECAR).pod.spec?.initContainers?.[0];
    assert.equal(out?.image, DEFAULT_SIDECAR.image);
    assert.deepEqual(out?.['resources'], DEFAULT_SIDECAR.resources);
  });
});

describe('injectManifest: kinds', () => {
  const podSpec = { containers: [{ name: 'app', image: 'x' }] };
  const initNames = (template: unknown): unknown =>
    (template as { spec?: { initContainers?: Array<{ name: string }> } }).spec?.initContainers?.map((c) => c.name);
  const cases: Array<{ what: string; object: Record<string, unknown>; template: (out: Record<string, unknown>) => unknown }> = [
    // Proves a StatefulSet's template is injected.
    {
      what: 'StatefulSet',
      object: { kind: 'StatefulSet', metadata: { name: 's' }, spec: { template: { spec: podSpec } } },
      template: (o) => (o['spec'] as Record<string, unknown>)['template'],
    },
    // Proves a DaemonSet's template is injected.
    {
      what: 'DaemonSet',
      object: { kind: 'DaemonSet', metadata: { name: 'd' }, spec: { template: { spec: podSpec } } },
      template: (o) => (o['spec'] as Record<string, unknown>)['template'],
    },
    // Proves each item of a List (kubectl get -o yaml) is injected.
    { what: 'List', object: { kind: 'List', items: [{ kind: 'Pod', metadata: { name: 'p' }, spec: podSpec }] }, template: (o) => (o['items'] as unknown[])[0] },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const { object, reports } = injectManifest(c.object, SETTINGS, { force: true });
      assert.deepEqual(
        reports.map((r) => r.outcome),
        ['injected'],
      );
      assert.deepEqual(initNames(c.template(object as Record<string, unknown>)), ['llm-fallback']);
    });
  }
});

describe('admission: the AdmissionReview envelope', () => {
  const injectAll = (pod: PodLike) => injectPod(pod, SETTINGS, { force: true });
  const pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'x' }] } };

  const cases: Array<{ what: string; request: AdmissionRequest; patched: boolean; warning?: string }> = [
    // Proves a pod creation is patched.
    { what: 'pod CREATE', request: { uid: 'a', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: pod }, patched: true },
    // Proves updates are never patched (a pod's containers are immutable after creation).
    { what: 'pod UPDATE', request: { uid: 'b', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'UPDATE', object: pod }, patched: false },
    // Proves a non-pod object routed here by a too-wide rule is admitted untouched.
    {
      what: 'Deployment CREATE',
      request: { uid: 'c', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'CREATE', object: pod },
      patched: false,
    },
    // Proves a pod subresource (e.g. ephemeralcontainers) is not patched.
    {
      what: 'pod subresource',
      request: { uid: 'd', kind: { group: '', version: 'v1', kind: 'Pod' }, subResource: 'ephemeralcontainers', operation: 'CREATE', object: pod },
      patched: false,
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const { review } = admit(c.request, injectAll);
      assert.equal(review.apiVersion, 'admission.k8s.io/v1');
      assert.equal(review.kind, 'AdmissionReview');
      assert.equal(review.response.uid, c.request.uid);
      assert.equal(review.response.allowed, true);
      assert.equal(review.response.patch !== undefined, c.patched);
    });
  }

  test('an injector that throws admits the pod unchanged, with a warning', () => {
    const { review, error } = admit(cases[0]!.request, () => {
      throw new Error('boom');
    });
    assert.equal(review.response.allowed, true);
    assert.equal(review.response.patch, undefined);
    assert.equal(error?.message, 'boom');
    assert.match(review.response.warnings?.[0] ?? '', /not injected: boom/);
  });

  test('a skipped pod is admitted with a warning naming the reason, and only its status annotation patched', () => {
    const hostPod = {
      metadata: { name: 'h', annotations: { 'llmfallback.io/inject': 'true' } },
      spec: { hostNetwork: true, containers: [{ name: 'a', image: 'x' }] },
    };
    const { review } = admit({ uid: 'e', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: hostPod }, injectAll);
    assert.match(review.response.warnings?.[0] ?? '', /hostNetwork/);
    assert.deepEqual(
      decodePatch(review.response.patch).map((op) => op.path),
      ['/metadata/annotations/llmfallback.io~1status'],
    );
  });

  const bodies: Array<{ what: string; body: unknown; error: RegExp }> = [
    // Proves a non-object body is refused.
    { what: 'array body', body: [], error: /not a JSON object/ },
    // Proves an AdmissionReview of another version is refused.
    { what: 'v1beta1 review', body: { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }, error: /admission.k8s.io\/v1/ },
    // Proves a review without uid is refused (the response could not be matched).
    { what: 'no uid', body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }, error: /uid/ },
  ];
  for (const b of bodies) {
    test(`parseAdmissionReview refuses: ${b.what}`, () => {
      const parsed = parseAdmissionReview(b.body);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.error, b.error);
    });
  }
});

describe('sidecar defaults file', () => {
  const cases: Array<{ what: string; text: string; expect: Partial<SidecarSettings> | RegExp }> = [
    // Proves an empty file means the built-in defaults.
    { what: 'empty file', text: '', expect: DEFAULT_SIDECAR },
    // Proves JSON works too, and unset fields keep their defaults.
    { what: 'JSON, image only', text: '{"image": "r.example/x:1"}', expect: { image: 'r.example/x:1', ports: DEFAULT_SIDECAR.ports, logLevel: 'info' } },
    // Proves resources replace the defaults wholesale and numbers become quantities.
    { what: 'resources', text: 'resources:\n  requests: {cpu: 1, memory: 100Mi}\n', expect: { resources: { requests: { cpu: '1', memory: '100Mi' } } } },
    // Proves a typo is an error, not silently ignored.
    { what: 'unknown field', text: 'imagePolicy: Always\n', expect: /imagePolicy: unknown field/ },
    // Proves the pull policy is checked.
    { what: 'bad pull policy', text: 'imagePullPolicy: Sometimes\n', expect: /imagePullPolicy: must be one of/ },
    // Proves quantities are checked before they reach a pod.
    { what: 'bad quantity', text: 'resources: {limits: {memory: lots}}\n', expect: /resources.limits.memory: "lots" is not a quantity/ },
    // Proves the two ports must differ.
    { what: 'same ports', text: 'ports: {api: 5000, admin: 5000}\n', expect: /api and admin must differ/ },
    // Proves a port out of range is refused.
    { what: 'port out of range', text: 'ports: {api: 70000}\n', expect: /ports.api: must be a port number/ },
    // Proves a non-mapping document is refused.
    { what: 'a list', text: '- image: x\n', expect: /must be a mapping/ },
    // Proves OTEL_* variables are taken as strings (numbers too), and absent means none.
    {
      what: 'otelEnv',
      text: 'otelEnv: {OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.observability:4318", OTEL_TRACES_SAMPLER_ARG: 0.1, OTEL_TRACES_SAMPLER: parentbased_traceidratio}\n',
      expect: {
        otelEnv: {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4318',
          OTEL_TRACES_SAMPLER_ARG: '0.1',
          OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        },
      },
    },
    { what: 'no otelEnv', text: 'logLevel: info\n', expect: { otelEnv: undefined } },
    // Proves only OTEL_* names pass (the sidecar's other variables are the injector's).
    {
      what: 'otelEnv with another variable',
      text: 'otelEnv: {LLM_FALLBACK_ALLOW_LOCAL_CREDENTIALS: "true"}\n',
      expect: /otelEnv.LLM_FALLBACK_ALLOW_LOCAL_CREDENTIALS: only OpenTelemetry's OTEL_\* variables/,
    },
    // Proves the values are checked as the sidecar reads them: the controller refuses what every sidecar would.
    {
      what: 'otelEnv the sidecar would refuse',
      text: 'otelEnv: {OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: grpc}\n',
      expect: /otelEnv: OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported/,
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      if (c.expect instanceof RegExp) {
        const expected = c.expect;
        assert.throws(
          () => parseSidecarDefaults(c.text, 'defaults.yaml'),
          (error: unknown) => error instanceof SidecarDefaultsError && expected.test(error.message),
        );
      } else {
        const parsed = parseSidecarDefaults(c.text, 'defaults.yaml');
        for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(parsed[key as keyof SidecarSettings], value, key);
      }
    });
  }
});

describe('llm-fallback inject -f', () => {
  const execFileAsync = promisify(execFile);
  const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
  const cli = path.join(repoRoot, 'src', 'cli.ts');

  test('prints every document injected (forced: no annotation needed), reports the rest on stderr', async () => {
    const file = path.join(fixtures, 'not-requested.in.yaml');
    const multi = `${readFileSync(file, 'utf8')}---\n${readFileSync(path.join(fixtures, 'host-network.in.yaml'), 'utf8')}---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n`;
    const child = execFileAsync(node, [cli, 'inject', '-f', '-'], { cwd: repoRoot });
    child.child.stdin?.end(multi);
    const { stdout, stderr } = await child;
    const docs = parseAllDocuments(stdout).map((d) => d.toJS() as PodLike);
    assert.equal(docs.length, 3);
    assert.deepEqual(
      docs[0]?.spec?.initContainers?.map((c) => c.name),
      ['llm-fallback'],
    );
    assert.equal(docs[0]?.metadata?.annotations?.['llmfallback.io/status'], 'injected');
    assert.match(docs[1]?.metadata?.annotations?.['llmfallback.io/status'] ?? '', /^skipped: hostNetwork/);
    assert.deepEqual(docs[2], { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } });
    assert.match(stderr, /Pod\/node-agent: skipped: hostNetwork/);
    assert.match(stderr, /Service\/s: unsupported/);
  });

  test('its output is a fixed point: injecting it again prints the same objects', async () => {
    const first = await execFileAsync(node, [cli, 'inject', '-f', path.join(fixtures, 'deployment.in.yaml')], { cwd: repoRoot });
    const child = execFileAsync(node, [cli, 'inject', '-f', '-'], { cwd: repoRoot });
    child.child.stdin?.end(first.stdout);
    const second = await child;
    assert.deepEqual(parseYaml(second.stdout), parseYaml(first.stdout));
    assert.equal(second.stderr, 'Deployment/chat: already-injected: already injected\n');
  });

  test('without -f it is a usage error (exit 2)', async () => {
    await assert.rejects(
      execFileAsync(node, [cli, 'inject'], { cwd: repoRoot }),
      (error: { code?: number; stderr?: string }) => error.code === 2 && /needs -f FILE/.test(error.stderr ?? ''),
    );
  });

  test('a broken defaults file stops it with the reason (exit 1)', async () => {
    await assert.rejects(
      execFileAsync(node, [cli, 'inject', '-f', path.join(fixtures, 'plain-pod.in.yaml'), '--sidecar-defaults', path.join(fixtures, 'plain-pod.in.yaml')], {
        cwd: repoRoot,
      }),
      (error: { code?: number; stderr?: string }) => error.code === 1 && /invalid sidecar defaults/.test(error.stderr ?? ''),
    );
  });
});
