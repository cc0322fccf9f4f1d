import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { scheduleSchema } from '../jobs/schemas.js';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { Queue } from 'bullmq';
import { ConfigMap, Service, ServiceAccount, type IContainer, type IEnvVar } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ChartRenderer, ChartRenderError, type Manifest, type RenderedChart } from './helpers/helm-render/render-chart.js';
import { workerEnvironment, type SecretStubs } from './helpers/helm-render/worker-environment.js';
import { freePort, waitFor } from './helpers/observability.js';
import { PROJECT_ROOT, REDIS, REDIS_URL } from './helpers/worker-fixture.js';
import { snapworkerArgs } from './helpers/compiled-cli.js';
import { ConfigError, loadConfig } from '../shared/config.js';

const CHART_DIR = fileURLToPath(new URL('../helm/snapworker/', import.meta.url));
const CI_DIR = path.join(CHART_DIR, 'ci');
/** The one value a user must set (a repository); other renderings layer their values over it. */
const MINIMAL_VALUES = path.join(CI_DIR, 'minimal-values.yaml');

/** Validators for every kind the chart may render; an unknown kind fails the test. */
const K8S_MODELS: Record<string, (data: unknown) => { validate(): void }> = {
  'v1/ConfigMap': (data) => new ConfigMap(data as ConstructorParameters<typeof ConfigMap>[0]),
  'v1/Service': (data) => new Service(data as ConstructorParameters<typeof Service>[0]),
  'v1/ServiceAccount': (data) => new ServiceAccount(data as ConstructorParameters<typeof ServiceAccount>[0]),
  'apps/v1/Deployment': (data) => new Deployment(data as ConstructorParameters<typeof Deployment>[0]),
  'policy/v1/PodDisruptionBudget': (data) => new PodDisruptionBudget(data as ConstructorParameters<typeof PodDisruptionBudget>[0]),
  'autoscaling/v2/HorizontalPodAutoscaler': (data) =>
    new HorizontalPodAutoscaler(data as ConstructorParameters<typeof HorizontalPodAutoscaler>[0]),
  'keda.sh/v1alpha1/ScaledObject': (data) => new ScaledObject(data as ConstructorParameters<typeof ScaledObject>[0]),
  'keda.sh/v1alpha1/TriggerAuthentication': (data) =>
    new TriggerAuthentication(data as ConstructorParameters<typeof TriggerAuthentication>[0]),
};
/** prometheus-operator kinds have no installed models; the tests check their shape by hand. */
const HAND_CHECKED_KINDS = new Set(['monitoring.coreos.com/v1/ServiceMonitor', 'monitoring.coreos.com/v1/PrometheusRule']);

/** Env names that would carry a credential if given as a plain value (a NATS URL may be plain when it has no user info). */
const SECRET_LOOKING_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$|_KEY_|^KEY$|REDIS_URL|PROFILES)/i;

interface Rendering {
  label: string;
  valuesFiles: string[];
  chart: RenderedChart;
}

function find<T = Manifest>(manifests: Manifest[], kind: string): T[] {
  return manifests.filter((m) => m.kind === kind) as T[];
}

function only<T = Manifest>(manifests: Manifest[], kind: string): T {
  const found = find<T>(manifests, kind);
  assert.equal(found.length, 1, `expected exactly one ${kind}, got ${found.length}`);
  return found[0]!;
}

interface PodSpecView {
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  containers: IContainer[];
  volumes: Array<{ name: string; emptyDir?: { sizeLimit?: string }; secret?: Record<string, unknown> }>;
}

function podSpec(manifests: Manifest[]): PodSpecView {
  const deployment = only<{ spec: { template: { spec: PodSpecView } } }>(manifests, 'Deployment');
  return deployment.spec.template.spec;
}

function workerContainer(manifests: Manifest[]): IContainer {
  const containers = podSpec(manifests).containers;
  assert.equal(containers.length, 1);
  return containers[0]!;
}

function configData(manifests: Manifest[]): Record<string, string> {
  const configMap = find<{ metadata: { name: string }; data: Record<string, string> }>(manifests, 'ConfigMap').find(
    (cm) => !cm.metadata.name.endsWith('-dashboard') && !cm.metadata.name.endsWith('-schedules'),
  );
  assert.ok(configMap, 'settings ConfigMap rendered');
  return configMap.data;
}

describe('helm chart helm/snapworker', () => {
  let renderer: ChartRenderer;
  const renderings: Rendering[] = [];
  let defaultsRefusal: unknown;

  before(async () => {
    renderer = await ChartRenderer.create();
    const ciFiles = (await readdir(CI_DIR)).filter((name) => name.endsWith('values.yaml')).sort();
    assert.ok(ciFiles.includes('minimal-values.yaml') && ciFiles.length >= 4, 'ci/*values.yaml files exist');
    defaultsRefusal = await renderer.render(CHART_DIR).then(
      () => null,
      (error: unknown) => error,
    );
    for (const name of ciFiles) {
      const file = path.join(CI_DIR, name);
      renderings.push({ label: `ci/${name}`, valuesFiles: [file], chart: await renderer.render(CHART_DIR, { valuesFiles: [file] }) });
    }
  });

  after(async () => {
    await renderer?.close();
  });

  it('renders with every ci/*values.yaml into documents valid against the Kubernetes and KEDA schemas', () => {
    for (const { label, chart } of renderings) {
      for (const kind of ['ConfigMap', 'Deployment', 'Service']) assert.ok(find(chart.manifests, kind).length > 0, `${label}: renders a ${kind}`);
      for (const manifest of chart.manifests) {
        const key = `${manifest.apiVersion}/${manifest.kind}`;
        const where = `${label}: ${key} ${manifest.metadata?.name}`;
        assert.ok(manifest.metadata.namespace, `${where}: namespace set explicitly`);
        if (HAND_CHECKED_KINDS.has(key)) continue;
        const model = K8S_MODELS[key];
        assert.ok(model, `${where}: a kind the test knows how to validate`);
        assert.doesNotThrow(() => model(manifest).validate(), where);
      }
      assert.equal(find(chart.manifests, 'Secret').length, 0, `${label}: the chart creates no Secret`);
      if (chart.notes !== null) assert.match(chart.notes, /snapworker/, `${label}: NOTES.txt renders`);
    }
  });

  it('passes helm lint --strict with every values file when helm is installed', async (t) => {
    if (renderer.engine !== 'helm') {
      t.diagnostic('helm is not on PATH: rendered with the Go text/template + sprig renderer instead');
      return;
    }
    for (const { valuesFiles } of renderings) await renderer.lint(CHART_DIR, valuesFiles);
  });

  it('runs the worker as non-root with a read-only root filesystem, no privilege escalation, no capabilities and the RuntimeDefault seccomp profile', () => {
    for (const { label, chart } of renderings) {
      const pod = podSpec(chart.manifests);
      assert.equal(pod.securityContext.runAsNonRoot, true, label);
      assert.ok((pod.securityContext.runAsUser as number) > 0, label);
      assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' }, label);
      const security = workerContainer(chart.manifests).securityContext!;
      assert.equal(security.readOnlyRootFilesystem, true, label);
      assert.equal(security.allowPrivilegeEscalation, false, label);
      assert.equal(security.runAsNonRoot, true, label);
      assert.deepEqual(security.capabilities?.drop, ['ALL'], label);
      assert.equal(security.capabilities?.add, undefined, label);
    }
  });

  it('probes /healthz and /readyz on the metrics port the worker is told to listen on, and the Service exposes that port', () => {
    for (const { label, chart } of renderings) {
      const container = workerContainer(chart.manifests);
      const metricsPort = container.ports?.find((port) => port.name === 'metrics');
      assert.ok(metricsPort, label);
      assert.equal(String(metricsPort.containerPort), configData(chart.manifests).SNAPWORKER_METRICS_PORT, label);
      assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', label);
      assert.equal(container.livenessProbe?.httpGet?.port, 'metrics', label);
      assert.equal(container.readinessProbe?.httpGet?.path, '/readyz', label);
      assert.equal(container.readinessProbe?.httpGet?.port, 'metrics', label);
      const service = only<{ spec: { ports: Array<{ name: string; targetPort: string }> } }>(chart.manifests, 'Service');
      assert.deepEqual(service.spec.ports.map((p) => [p.name, p.targetPort]), [['metrics', 'metrics']], label);
      assert.deepEqual(container.args, ['worker'], label);
      assert.ok(container.resources?.requests && container.resources.limits, `${label}: resources set`);
    }
  });

  it('gives pods a termination grace longer than the worker shutdown grace, derived when not set', () => {
    for (const { label, chart } of renderings) {
      const shutdownGrace = Number(configData(chart.manifests).SNAPWORKER_SHUTDOWN_GRACE_SECONDS);
      assert.ok(shutdownGrace > 0, label);
      assert.ok(podSpec(chart.manifests).terminationGracePeriodSeconds > shutdownGrace, label);
    }
    const defaults = renderings.find((r) => r.label === 'ci/minimal-values.yaml')!.chart.manifests;
    assert.equal(podSpec(defaults).terminationGracePeriodSeconds, 60 + 30);
  });

  it('refuses an explicit termination grace that is not longer than the shutdown grace', async () => {
    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values: { worker: { shutdownGraceSeconds: 120 }, terminationGracePeriodSeconds: 120 } }),
      (error: unknown) => error instanceof ChartRenderError && /terminationGracePeriodSeconds \(120\) must be greater/.test(error.message),
    );
    const longer = await renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values: { worker: { shutdownGraceSeconds: 120 }, terminationGracePeriodSeconds: 121 } });
    assert.equal(podSpec(longer.manifests).terminationGracePeriodSeconds, 121);
  });

  it('mounts one size-limited emptyDir as the staging directory and /tmp, and passes the worker its settings', () => {
    for (const { label, chart } of renderings) {
      const pod = podSpec(chart.manifests);
      const staging = pod.volumes.find((volume) => volume.name === 'staging');
      assert.ok(staging?.emptyDir?.sizeLimit, `${label}: staging emptyDir has a size limit`);
      const settings = configData(chart.manifests);
      const mounts = workerContainer(chart.manifests).volumeMounts!.filter((mount) => mount.name === 'staging');
      assert.deepEqual(mounts.map((mount) => mount.mountPath).sort(), [settings.SNAPWORKER_STAGING_DIR, '/tmp'].sort(), label);
      for (const name of ['SNAPWORKER_QUEUE', 'SNAPWORKER_PREFIX', 'SNAPWORKER_CONCURRENCY', 'SNAPWORKER_DEFAULT_REPOSITORY', 'SNAPWORKER_AUTO_INIT', 'LOG_LEVEL']) {
        assert.ok(settings[name], `${label}: ${name} set`);
      }
      assert.equal(typeof JSON.parse(settings.SNAPWORKER_REPOSITORIES!), 'object', label);
      for (const root of (settings.SNAPWORKER_ALLOWED_PATHS ?? '').split(':').filter(Boolean)) assert.ok(path.isAbsolute(root), label);
    }
  });

  it('renders values.schedules into the schedules ConfigMap the worker reads, mounted read-only where SNAPWORKER_SCHEDULES_FILE points, valid for the worker', () => {
    for (const { label, chart, valuesFiles } of renderings) {
      const settings = configData(chart.manifests);
      const file = settings.SNAPWORKER_SCHEDULES_FILE!;
      const configMap = find<{ metadata: { name: string }; data: Record<string, string> }>(chart.manifests, 'ConfigMap').find((cm) =>
        cm.metadata.name.endsWith('-schedules'),
      );
      assert.ok(configMap, `${label}: schedules ConfigMap rendered even without schedules`);
      const schedules = JSON.parse(configMap.data[path.basename(file)]!) as unknown[];
      const mount = workerContainer(chart.manifests).volumeMounts!.find((m) => m.mountPath === path.dirname(file));
      assert.equal(mount?.readOnly, true, label);
      const volume = podSpec(chart.manifests).volumes.find((v) => v.name === mount!.name) as { configMap?: { name: string } };
      assert.equal(volume.configMap?.name, configMap.metadata.name, label);
      if (!valuesFiles.some((f) => f.endsWith('schedules-values.yaml'))) {
        assert.deepEqual(schedules, [], label);
        continue;
      }
      assert.deepEqual(schedules.map((s) => (s as { name: string }).name), ['shop-nightly', 'orders-hourly'], label);
      for (const entry of schedules) scheduleSchema.parse({ v: 1, ...(entry as object), managedBy: 'helm' });
    }
  });

  it('scales with KEDA on the queue\'s wait, prioritized and active keys for the configured prefix, summed per replica', async () => {
    const prefixes = ['bull', '{snapworker}', 'acme-{jobs}'];
    for (const prefix of prefixes) {
      const { manifests } = await renderer.render(CHART_DIR, {
        valuesFiles: [MINIMAL_VALUES],
        values: {
          worker: { queue: 'snapshots', prefix, concurrency: 3 },
          redis: { existingSecret: 'redis-conn' },
          autoscaling: { minReplicas: 0, maxReplicas: 7, keda: { enabled: true, cooldownPeriod: 120 } },
        },
      });
      assert.equal(find(manifests, 'HorizontalPodAutoscaler').length, 0, 'KEDA owns the HPA');
      const scaled = only<ScaledObject>(manifests, 'ScaledObject');
      const deployment = only<Deployment>(manifests, 'Deployment');
      assert.equal(deployment.spec?.replicas, undefined, 'replicas left to the autoscaler');
      assert.equal(scaled.spec.scaleTargetRef.name, deployment.metadata?.name);
      assert.equal(scaled.spec.minReplicaCount, 0);
      assert.equal(scaled.spec.maxReplicaCount, 7);
      assert.equal(scaled.spec.cooldownPeriod, 120);
      const keys = Object.fromEntries(scaled.spec.triggers.map((trigger) => [trigger.name, trigger.metadata.listName]));
      assert.deepEqual(keys, {
        waiting: `${prefix}:snapshots:wait`,
        prioritized: `${prefix}:snapshots:prioritized`,
        active: `${prefix}:snapshots:active`,
      });
      for (const trigger of scaled.spec.triggers) {
        assert.equal(trigger.type, 'redis');
        assert.equal(trigger.metadata.listLength, '3', 'target defaults to the worker concurrency');
      }
      const modifiers = (scaled.spec.advanced as { scalingModifiers?: Record<string, string> }).scalingModifiers;
      assert.deepEqual(modifiers, { formula: 'waiting + prioritized + active', target: '3', activationTarget: '0', metricType: 'AverageValue' });
      const auth = only<TriggerAuthentication>(manifests, 'TriggerAuthentication');
      for (const trigger of scaled.spec.triggers) assert.equal(trigger.authenticationRef?.name, auth.metadata?.name);
      assert.deepEqual(auth.spec.secretTargetRef, [{ parameter: 'address', name: 'redis-conn', key: 'address' }]);
    }
  });

  it('uses the redis-cluster scaler and a hash-tag prefix from ci/keda-cluster-values.yaml, and counts delayed jobs when asked', () => {
    const cluster = renderings.find((r) => r.label === 'ci/keda-cluster-values.yaml')!.chart.manifests;
    const scaled = only<ScaledObject>(cluster, 'ScaledObject');
    assert.deepEqual(
      scaled.spec.triggers.map((trigger) => [trigger.type, trigger.metadata.listName]),
      [
        ['redis-cluster', '{snapworker}:snapshots:wait'],
        ['redis-cluster', '{snapworker}:snapshots:prioritized'],
        ['redis-cluster', '{snapworker}:snapshots:active'],
      ],
    );
    assert.equal(only<TriggerAuthentication>(cluster, 'TriggerAuthentication').spec.secretTargetRef?.[0]?.parameter, 'addresses');
    const full = only<ScaledObject>(renderings.find((r) => r.label === 'ci/keda-values.yaml')!.chart.manifests, 'ScaledObject');
    assert.deepEqual(full.spec.triggers.map((t) => t.name), ['waiting', 'prioritized', 'active', 'delayed']);
    assert.equal(full.spec.triggers[3]!.metadata.listName, 'bull:snapworker:delayed');
    assert.equal((full.spec.advanced as { scalingModifiers: { formula: string } }).scalingModifiers.formula, 'waiting + prioritized + active + delayed');
  });

  it('uses the redis-sentinel scaler with the master name, the Sentinels\' addresses and their own password from ci/keda-sentinel-values.yaml', () => {
    const { manifests, notes } = renderings.find((r) => r.label === 'ci/keda-sentinel-values.yaml')!.chart;
    const scaled = only<ScaledObject>(manifests, 'ScaledObject');
    assert.deepEqual(
      scaled.spec.triggers.map((trigger) => [trigger.type, trigger.name, trigger.metadata.listName]),
      [
        ['redis-sentinel', 'waiting', 'bull:snapshots:wait'],
        ['redis-sentinel', 'prioritized', 'bull:snapshots:prioritized'],
        ['redis-sentinel', 'active', 'bull:snapshots:active'],
      ],
    );
    for (const trigger of scaled.spec.triggers) {
      assert.equal(trigger.metadata.sentinelMaster, 'snapmaster');
      assert.equal(trigger.metadata.databaseIndex, '2', 'the database index applies to the master behind the Sentinels');
      assert.equal(trigger.metadata.addresses, undefined, 'no address in the ScaledObject: it comes from the Secret');
    }
    const auth = only<TriggerAuthentication>(manifests, 'TriggerAuthentication');
    assert.deepEqual(
      auth.spec.secretTargetRef?.map((ref) => [ref.parameter, ref.key]),
      [
        ['addresses', 'sentinels'],
        ['password', 'password'],
        ['sentinelPassword', 'sentinel-password'],
      ],
    );
    assert.match(notes ?? '', /the Sentinels' host:port, comma-separated; master "snapmaster"\) for KEDA's redis-sentinel scaler/);
    // The Sentinel keys mean nothing to the other scalers and are left out there.
    const plain = only<TriggerAuthentication>(renderings.find((r) => r.label === 'ci/keda-values.yaml')!.chart.manifests, 'TriggerAuthentication');
    assert.ok(plain.spec.secretTargetRef?.every((ref) => !ref.parameter.startsWith('sentinel')));
  });

  it('refuses to watch a Redis Cluster and Sentinels at once, naming both values', async () => {
    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [path.join(CI_DIR, 'keda-cluster-values.yaml')], values: { autoscaling: { keda: { redis: { sentinelMaster: 'snapmaster' } } } } }),
      (error: unknown) => error instanceof ChartRenderError && /autoscaling\.keda\.redis\.cluster and autoscaling\.keda\.redis\.sentinelMaster \("snapmaster"\) are both set/.test(error.message),
    );
  });

  it('refuses a prefix without a hash tag when KEDA watches a Redis Cluster', async () => {
    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [path.join(CI_DIR, 'keda-cluster-values.yaml')], values: { worker: { prefix: 'bull' } } }),
      (error: unknown) => error instanceof ChartRenderError && /worker\.prefix "bull" has no hash tag: on a Redis Cluster/.test(error.message),
    );
  });

  it('falls back to a CPU HPA without KEDA, and refuses scale to zero there', async () => {
    const { manifests } = renderings.find((r) => r.label === 'ci/minimal-values.yaml')!.chart;
    assert.equal(find(manifests, 'ScaledObject').length, 0);
    const hpa = only<HorizontalPodAutoscaler>(manifests, 'HorizontalPodAutoscaler');
    assert.equal(hpa.spec?.scaleTargetRef.name, only<Deployment>(manifests, 'Deployment').metadata?.name);
    assert.equal(hpa.spec?.metrics?.[0]?.resource?.name, 'cpu');
    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values: { autoscaling: { minReplicas: 0 } } }),
      (error: unknown) => error instanceof ChartRenderError && /scale to zero\) needs KEDA/.test(error.message),
    );
    const fixed = renderings.find((r) => r.label === 'ci/static-values.yaml')!.chart.manifests;
    assert.equal(find(fixed, 'HorizontalPodAutoscaler').length + find(fixed, 'ScaledObject').length, 0);
    assert.equal(only<Deployment>(fixed, 'Deployment').spec?.replicas, 3);
  });

  it('never puts a secret inline: secret-looking variables come only from secretKeyRef', () => {
    for (const { label, chart } of renderings) {
      const container = workerContainer(chart.manifests);
      const env: IEnvVar[] = container.env ?? [];
      const redisUrl = env.find((e) => e.name === 'REDIS_URL');
      assert.ok(redisUrl?.valueFrom?.secretKeyRef?.name, `${label}: REDIS_URL from a Secret`);
      for (const variable of env) {
        if (SECRET_LOOKING_NAME.test(variable.name)) {
          assert.equal(variable.value, undefined, `${label}: ${variable.name} has no inline value`);
          assert.ok(variable.valueFrom?.secretKeyRef, `${label}: ${variable.name} comes from a secretKeyRef`);
        }
      }
      for (const [name, value] of Object.entries(configData(chart.manifests))) {
        assert.doesNotMatch(name, SECRET_LOOKING_NAME, `${label}: ConfigMap key ${name} is not a secret`);
        assert.doesNotMatch(value, /:\/\/[^/@]*@/, `${label}: ConfigMap ${name} has no credentials in a URL`);
      }
      for (const source of container.envFrom ?? []) assert.ok(source.configMapRef || source.secretRef, label);
    }
    const full = workerContainer(renderings.find((r) => r.label === 'ci/keda-values.yaml')!.chart.manifests);
    assert.deepEqual(
      (full.env ?? []).map((e) => [e.name, e.valueFrom?.secretKeyRef?.name]),
      [
        ['REDIS_URL', 'snapworker-redis'],
        ['NATS_URL', 'snapworker-nats'],
        ['SNAPWORKER_NATS_PROFILES', 'snapworker-nats-profiles'],
        ['SNAPWORKER_POSTGRES_PROFILES', 'snapworker-postgres-profiles'],
        ['SNAPWORKER_SEAL_KEY', 'snapworker-seal'],
        ['SNAPWORKER_SEAL_KEY_ID', 'snapworker-seal'],
        ['AWS_ACCESS_KEY_ID', 'snapworker-s3'],
        ['AWS_SECRET_ACCESS_KEY', 'snapworker-s3'],
        ['AWS_SESSION_TOKEN', 'snapworker-s3'],
      ],
    );
  });

  it('gives each kind in values.profiles its SNAPWORKER_<KIND>_PROFILES from its Secret, keeping nats.profilesSecret working', async () => {
    const profileEnv = (manifests: Manifest[]) =>
      (workerContainer(manifests).env ?? [])
        .filter((e) => e.name.endsWith('_PROFILES'))
        .map((e) => [e.name, e.valueFrom?.secretKeyRef?.name, e.valueFrom?.secretKeyRef?.key]);
    const minimal = renderings.find((r) => r.label === 'ci/minimal-values.yaml')!.chart.manifests;
    assert.deepEqual(profileEnv(minimal), [], 'no profiles by default');
    const full = renderings.find((r) => r.label === 'ci/keda-values.yaml')!.chart.manifests;
    assert.deepEqual(profileEnv(full), [
      ['SNAPWORKER_NATS_PROFILES', 'snapworker-nats-profiles', 'profiles'],
      ['SNAPWORKER_POSTGRES_PROFILES', 'snapworker-postgres-profiles', 'pg'],
    ]);

    const general = await renderer.render(CHART_DIR, {
      valuesFiles: [MINIMAL_VALUES],
      values: { profiles: { postgres: { existingSecret: 'pg-profiles' }, nats: { existingSecret: 'nats-profiles', key: 'json' }, sqlite: { existingSecret: '' } } },
    });
    assert.deepEqual(profileEnv(general.manifests), [
      ['SNAPWORKER_NATS_PROFILES', 'nats-profiles', 'json'],
      ['SNAPWORKER_POSTGRES_PROFILES', 'pg-profiles', 'profiles'],
    ], 'kinds in name order, key defaults to "profiles", an empty existingSecret renders nothing');

    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values: { nats: { profilesSecret: 'a' }, profiles: { nats: { existingSecret: 'b' } } } }),
      (error: unknown) => error instanceof ChartRenderError && /NATS profiles Secret is given twice/.test(error.message),
    );
  });

  it('mounts each encryption key Secret read-only and names it, with each KMS key, in SNAPWORKER_REPOSITORY_KEYS, which the worker accepts', async () => {
    const values = {
      worker: { repositories: { default: 'file:///data/repo', 'tenant-a': 's3://backups/tenant-a' } },
      encryption: { repositories: { 'tenant-a': [{ secretRef: { name: 'tenant-a-key', key: 'key' } }, { kmsKeyId: 'alias/tenant-a' }] } },
    };
    const { manifests } = await renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values });
    const keys = JSON.parse(configData(manifests).SNAPWORKER_REPOSITORY_KEYS!) as Record<string, string[]>;
    assert.deepEqual(Object.keys(keys), ['tenant-a']);
    const [fileSpec, kmsSpec] = keys['tenant-a']!;
    assert.equal(kmsSpec, 'kms:alias/tenant-a');
    assert.match(fileSpec!, /^file:\/etc\/snapworker\/keys\/[0-9a-f]{10}\/key$/);
    const mount = (workerContainer(manifests).volumeMounts ?? []).find((m) => fileSpec!.startsWith(`file:${m.mountPath}/`));
    assert.ok(mount?.readOnly, 'the key Secret is mounted read-only where the spec points');
    const volume = podSpec(manifests).volumes?.find((v) => v.name === mount!.name);
    assert.deepEqual(volume?.secret, { secretName: 'tenant-a-key', defaultMode: 0o440, items: [{ key: 'key', path: 'key' }] });
    assert.ok(!(workerContainer(manifests).env ?? []).some((e) => /REPOSITORY_KEYS/.test(e.name)), 'no key travels as an env value');
    const config = loadConfig({ SNAPWORKER_REPOSITORIES: configData(manifests).SNAPWORKER_REPOSITORIES, SNAPWORKER_REPOSITORY_KEYS: configData(manifests).SNAPWORKER_REPOSITORY_KEYS });
    assert.equal(config.repositoryKeys['tenant-a']?.length, 2);

    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values: { encryption: { repositories: { other: [{ kmsKeyId: 'alias/x' }] } } } }),
      (error: unknown) => error instanceof ChartRenderError && /encryption\.repositories\.other is not one of worker\.repositories/.test(error.message),
    );
    const validate = await compileValuesSchema();
    assert.equal(validate({ encryption: { repositories: { a: [{ secretRef: { name: 'k' } }] } } }), false, 'a secretRef needs its key');
    assert.equal(validate({ encryption: { repositories: { a: [{ env: 'KEY' }] } } }), false, 'keys come from Secrets or KMS only');
    assert.equal(validate(values), true, JSON.stringify(validate.errors));
  });

  it('refuses values that would put credentials into plain settings', async () => {
    const refusals: Array<[Record<string, unknown>, RegExp]> = [
      [{ worker: { extraEnv: { DB_PASSWORD: 'hunter2' } } }, /extraEnv\.DB_PASSWORD looks like a secret/],
      [{ worker: { extraEnv: { AWS_SECRET_ACCESS_KEY: 'x' } } }, /looks like a secret/],
      [{ worker: { natsUrl: 'nats://user:pass@nats:4222' } }, /natsUrl carries credentials/],
      [{ worker: { repositories: { default: 's3://key:secret@bucket/prefix' } } }, /repositories\.default carries credentials/],
      [{ worker: { repositories: { default: 's3://bucket/p?secretAccessKey=abc' } } }, /carries a credential parameter/],
    ];
    for (const [values, message] of refusals) {
      await assert.rejects(renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values }), (error: unknown) => error instanceof ChartRenderError && message.test(error.message));
    }
  });

  it('creates the ServiceMonitor, the PrometheusRule and the sidecar-labelled Grafana dashboard ConfigMap from the chart files when enabled', async () => {
    const { manifests } = renderings.find((r) => r.label === 'ci/keda-values.yaml')!.chart;
    const service = only<Service>(manifests, 'Service');
    const monitor = only<{ spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> } }>(
      manifests,
      'ServiceMonitor',
    );
    assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(service.metadata?.labels?.[key], value);

    const rule = only<{ spec: { groups: Array<{ name: string; rules: Array<{ expr: string }> }> } }>(manifests, 'PrometheusRule');
    const ruleFile = parseYaml(await readFile(path.join(CHART_DIR, 'rules/snapworker-alerts.yaml'), 'utf8')) as { groups: unknown };
    assert.deepEqual(rule.spec.groups, ruleFile.groups, 'the rule file is carried verbatim');
    assert.ok(rule.spec.groups.flatMap((g) => g.rules).some((r) => r.expr.includes('snapworker_')));

    const dashboard = find<{ metadata: { name: string; namespace: string; labels: Record<string, string> }; data: Record<string, string> }>(
      manifests,
      'ConfigMap',
    ).find((cm) => cm.metadata.name.endsWith('-dashboard'));
    assert.ok(dashboard);
    assert.equal(dashboard.metadata.labels.grafana_dashboard, '1');
    assert.equal(dashboard.metadata.namespace, 'monitoring');
    const fileText = await readFile(path.join(CHART_DIR, 'dashboards/snapworker.json'), 'utf8');
    assert.deepEqual(JSON.parse(dashboard.data['snapworker.json']!), JSON.parse(fileText));

    for (const kind of ['ServiceMonitor', 'PrometheusRule']) assert.equal(find(renderings.find((r) => r.label === 'ci/minimal-values.yaml')!.chart.manifests, kind).length, 0, `${kind} is optional`);
  });

  it('refuses to render with the default values alone, naming worker.repositories, and refuses a default repository that is not configured', async () => {
    assert.ok(
      defaultsRefusal instanceof ChartRenderError && /worker\.repositories is empty: set at least one repository/.test(defaultsRefusal.message),
      `defaults render: ${String(defaultsRefusal)}`,
    );
    await assert.rejects(
      renderer.render(CHART_DIR, { valuesFiles: [MINIMAL_VALUES], values: { worker: { defaultRepository: 'backups' } } }),
      (error: unknown) => error instanceof ChartRenderError && /worker\.defaultRepository "backups" is not one of worker\.repositories \(default\)/.test(error.message),
    );
    const minimal = renderings.find((r) => r.label === 'ci/minimal-values.yaml')!.chart;
    if (minimal.notes !== null) {
      assert.match(minimal.notes, /Repositories jobs may name \(field "repo"\): default; default "default"/);
      assert.match(minimal.notes, /Jobs cannot name a repository by URI/);
    }
  });

  it('values.schema.json accepts no worker value that the worker refuses at start', async () => {
    const validate = await compileValuesSchema();
    const defaults = await defaultValues();
    // value path, the variable the ConfigMap renders it into, how it renders, values to try
    const join = (separator: string) => (value: unknown) => (value as string[]).join(separator);
    const cases: Array<[string, string, (value: unknown) => string, unknown[]]> = [
      ['worker.queue', 'SNAPWORKER_QUEUE', String, ['snapworker', 'a-b_C9', 'a.b', 'a:b', 'a b', 'ü', 'x'.repeat(300)]],
      ['worker.prefix', 'SNAPWORKER_PREFIX', String, ['bull', '{snapworker}', 'acme-{jobs}', 'a b', 'a:b', '\t']],
      ['worker.concurrency', 'SNAPWORKER_CONCURRENCY', String, [0, 1, 64, 65, 2.5]],
      ['worker.metricsPort', 'SNAPWORKER_METRICS_PORT', String, [0, 1, 9464, 65535, 65536]],
      ['worker.shutdownGraceSeconds', 'SNAPWORKER_SHUTDOWN_GRACE_SECONDS', String, [0, 60, -1]],
      ['worker.zstdThreads', 'SNAPWORKER_ZSTD_THREADS', String, [0, 4, 64, 65]],
      ['worker.logLevel', 'LOG_LEVEL', String, ['info', 'silent', 'trace', 'loud']],
      ['worker.autoInit', 'SNAPWORKER_AUTO_INIT', String, [true, false, 'yes', 1]],
      ['worker.allowedPaths', 'SNAPWORKER_ALLOWED_PATHS', join(':'), [['/data'], ['/data', '/restore'], ['relative'], ['/a:b']]],
      ['worker.natsUrl', 'NATS_URL', String, ['nats://nats.messaging.svc:4222', 'tls://nats:4222', 'http://nats:4222', 'nats://']],
      ['worker.natsAllowedServers', 'SNAPWORKER_NATS_ALLOWED_SERVERS', join(','), [['nats.orders.svc:4222'], ['*'], ['[::1]:4222'], ['nats'], ['a:4222,b:4222']]],
      ['worker.postgresAllowedServers', 'SNAPWORKER_POSTGRES_ALLOWED_SERVERS', join(','), [['db.shop.svc:5432'], ['*'], ['[::1]:5432'], ['db'], ['a:5432,b:5432']]],
    ];
    let compared = 0;
    for (const [valuePath, variable, render, candidates] of cases) {
      for (const candidate of candidates) {
        const values = structuredClone(defaults);
        setPath(values, valuePath, candidate);
        setPath(values, 'worker.repositories', { default: 'file:///srv/repository' });
        if (!validate(values)) continue;
        compared++;
        const problem = workerConfigProblem({ [variable]: render(candidate) });
        assert.equal(problem, undefined, `the schema accepts ${valuePath}=${JSON.stringify(candidate)}, which the worker refuses: ${problem}`);
      }
    }
    assert.ok(compared >= 25, `compared ${compared} accepted values`);
  });

  it('passes worker.natsAllowedServers and worker.postgresAllowedServers as SNAPWORKER_<KIND>_ALLOWED_SERVERS only when set', () => {
    const keda = configData(renderings.find((r) => r.label === 'ci/keda-values.yaml')!.chart.manifests);
    assert.equal(keda.SNAPWORKER_NATS_ALLOWED_SERVERS, 'nats.orders.svc:4222,nats.billing.svc:4222');
    assert.equal(keda.SNAPWORKER_POSTGRES_ALLOWED_SERVERS, 'db.shop.svc:5432');
    assert.equal(keda.SNAPWORKER_AUTO_INIT, 'false', 'worker.autoInit: false reaches the worker');
    const minimal = configData(renderings.find((r) => r.label === 'ci/minimal-values.yaml')!.chart.manifests);
    assert.equal(minimal.SNAPWORKER_NATS_ALLOWED_SERVERS, undefined, 'unset: the worker keeps its own default');
    assert.equal(minimal.SNAPWORKER_POSTGRES_ALLOWED_SERVERS, undefined, 'unset: the worker keeps its own default');
  });

  it('values.schema.json accepts exactly the repository names the worker accepts', async () => {
    const validate = await compileValuesSchema();
    const defaults = await defaultValues();
    const names = ['default', 'prod-eu', 'prod_eu', 'A1', '0', 'x'.repeat(64), 'x'.repeat(65), 'prod.eu', '', 'with space', 'a/b', 'a:b', 'ümlaut', '-lead', 'tab\t'];
    for (const name of names) {
      const values = structuredClone(defaults);
      setPath(values, 'worker.repositories', { [name]: 'file:///srv/repository' });
      setPath(values, 'worker.defaultRepository', name);
      const schemaAccepts = validate(values);
      const workerAccepts = workerAcceptsRepositoryName(name);
      assert.equal(schemaAccepts, workerAccepts, `repository name ${JSON.stringify(name)}: the worker ${workerAccepts ? 'accepts' : 'refuses'} it, the schema does not agree`);
    }
    assert.ok(workerAcceptsRepositoryName('default') && !workerAcceptsRepositoryName('prod.eu'), 'the cases above span both answers');
  });

  it('gives a real worker process, started with the environment each ci values file renders, what it needs to stay up and answer /readyz', async (t) => {
    for (const { label, chart } of renderings) {
      const started = Date.now();
      await runRenderedWorker(label, chart.manifests);
      t.diagnostic(`${label}: ready, stayed up and stopped in ${Date.now() - started} ms`);
    }
  });

  it('renders the chart README quick start install command into valid values whose worker starts', async () => {
    const readme = await readFile(path.join(CHART_DIR, 'README.md'), 'utf8');
    const command = /helm install snap \.\/helm\/snapworker[^`]*?(?=\n\s*```)/.exec(readme)?.[0];
    assert.ok(command, 'the README has a helm install command');
    const values: Record<string, unknown> = {};
    for (const [, flag, assignment] of command.matchAll(/--(set|set-json) ('[^']*'|\S+)/g)) {
      const [key, ...rest] = assignment!.replace(/^'|'$/g, '').split('=');
      const raw = rest.join('=');
      setPath(values, key!, flag === 'set-json' ? JSON.parse(raw) : /^(true|false)$/.test(raw) ? raw === 'true' : /^\d+$/.test(raw) ? Number(raw) : raw);
    }
    assert.ok(Object.keys(values).length >= 4, JSON.stringify(values));
    const validate = await compileValuesSchema();
    const chart = await renderer.render(CHART_DIR, { values });
    if (chart.values) assert.ok(validate(chart.values), JSON.stringify(validate.errors));
    await runRenderedWorker('README quick start', chart.manifests);
  });

  it('renders the values file of docs/kubernetes.md (Install, step 2) into valid values whose worker starts', async () => {
    const guide = await readFile(path.join(CHART_DIR, '..', '..', 'docs', 'kubernetes.md'), 'utf8');
    const block = /Write a values file:\s*\n\s*```yaml\n([\s\S]*?)\n\s*```/.exec(guide)?.[1];
    assert.ok(block, 'docs/kubernetes.md has the example values file');
    const values = parseYaml(block.replace(/^ {3}/gm, '')) as Record<string, unknown>;
    const chart = await renderer.render(CHART_DIR, { values });
    const validate = await compileValuesSchema();
    if (chart.values) assert.ok(validate(chart.values), JSON.stringify(validate.errors));
    await runRenderedWorker('docs/kubernetes.md values', chart.manifests);
  });

  it('values.schema.json accepts the default and ci values and rejects a wrong type in each main value', async () => {
    const validate = await compileValuesSchema();
    const defaults = await defaultValues();
    assert.ok(validate(defaults), JSON.stringify(validate.errors));
    for (const { label, chart } of renderings) {
      if (chart.values) assert.ok(validate(chart.values), `${label}: ${JSON.stringify(validate.errors)}`);
    }

    const wrongTypes: Array<[string, unknown]> = [
      ['image.repository', 5],
      ['image.pullPolicy', 'Sometimes'],
      ['replicaCount', '3'],
      ['worker.queue', 1],
      ['worker.prefix', true],
      ['worker.prefix', 'has:colon'],
      ['worker.zstdThreads', 'auto'],
      ['worker.concurrency', '2'],
      ['worker.repositories', 's3://bucket'],
      ['worker.defaultRepository', 3],
      ['worker.allowedPaths', '/data'],
      ['worker.shutdownGraceSeconds', '60'],
      ['worker.metricsPort', '9464'],
      ['worker.logLevel', 'loud'],
      ['worker.extraEnv', ['A=1']],
      ['worker.autoInit', 'false'],
      ['worker.natsAllowedServers', 'nats:4222'],
      ['worker.natsAllowedServers', ['nats.orders.svc']],
      ['worker.natsAllowedServers', ['a:4222,b:4222']],
      ['worker.postgresAllowedServers', ['db.shop.svc']],
      ['staging.sizeLimit', true],
      ['terminationGracePeriodSeconds', '90'],
      ['redis.existingSecret', 42],
      ['redis.urlKey', null],
      ['s3.existingSecret', false],
      ['seal.existingSecret', {}],
      ['nats.existingSecret', 1],
      ['profiles', []],
      ['profiles.postgres', 'pg-profiles'],
      ['profiles.postgres.existingSecret', 'Not_A_Name'],
      ['profiles.postgres.secret', 'x'],
      ['profiles.Post-gres', { existingSecret: 'pg' }],
      ['serviceAccount.create', 'yes'],
      ['serviceAccount.annotations', ['role']],
      ['resources', []],
      ['livenessProbe.periodSeconds', '20'],
      ['topologySpread.enabled', 'true'],
      ['repositoryVolume.enabled', 1],
      ['service.port', '9464'],
      ['podDisruptionBudget.enabled', 'on'],
      ['autoscaling.enabled', 'true'],
      ['autoscaling.minReplicas', '0'],
      ['autoscaling.maxReplicas', 2.5],
      ['autoscaling.keda.enabled', 1],
      ['autoscaling.keda.cooldownPeriod', '300'],
      ['autoscaling.keda.jobsPerReplica', '4'],
      ['autoscaling.keda.redis.cluster', 'false'],
      ['autoscaling.keda.redis.sentinelMaster', true],
      ['autoscaling.keda.redis.sentinelMaster', 'my master'],
      ['autoscaling.keda.redis.sentinelPasswordKey', 5],
      ['autoscaling.hpa.targetCPUUtilizationPercentage', '70%'],
      ['metrics.serviceMonitor.enabled', 'no'],
      ['prometheusRule.enabled', null],
      ['dashboard.enabled', 0],
      ['dashboard.labels', 'grafana_dashboard'],
      ['unknownTopLevelValue', 1],
      ['worker.concurrencyy', 2],
    ];
    for (const [dotted, wrong] of wrongTypes) {
      const values = structuredClone(defaults);
      setPath(values, dotted, wrong);
      assert.equal(validate(values), false, `schema accepts ${dotted}=${JSON.stringify(wrong)}`);
    }
  });
});

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

async function compileValuesSchema() {
  const schema = JSON.parse(await readFile(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as object;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv.compile(schema);
}

async function defaultValues(): Promise<Record<string, unknown>> {
  return parseYaml(await readFile(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
}

/** The worker's own verdict (shared/config.ts) on a repository name, with nothing else wrong. */
function workerAcceptsRepositoryName(name: string): boolean {
  return (
    workerConfigProblem({
      SNAPWORKER_REPOSITORIES: JSON.stringify({ [name]: 'file:///srv/repository' }),
      SNAPWORKER_DEFAULT_REPOSITORY: name,
    }) === undefined
  );
}

/** What the worker's configuration check (shared/config.ts) says about `env` over sound defaults; undefined when it accepts it. */
function workerConfigProblem(env: Record<string, string>): string | undefined {
  try {
    loadConfig(
      {
        SNAPWORKER_REPOSITORIES: JSON.stringify({ default: 'file:///srv/repository' }),
        SNAPWORKER_ALLOWED_PATHS: '/srv',
        SNAPWORKER_STAGING_DIR: tmpdir(),
        ...env,
      },
      '/srv',
    );
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}

/**
 * Secrets as a user creates them before installing (the chart's README and the ci files name
 * them), pointing at this machine's test Redis and NATS. S3 keys are placeholders: a worker only
 * talks to S3 when a job reaches a repository.
 */
const USER_SECRETS: SecretStubs = {
  'snap-snapworker-redis': { url: REDIS_URL, address: `${REDIS.host}:${REDIS.port}` },
  'snapworker-redis': { url: REDIS_URL, address: `${REDIS.host}:${REDIS.port}`, username: 'default', password: '' },
  'snapworker-nats': { url: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
  'snapworker-nats-profiles': { profiles: '{}' },
  'snapworker-postgres-profiles': { pg: JSON.stringify({ backup: { user: 'backup', hosts: ['db.shop.svc:5432'] } }) },
  'snapworker-seal': { key: 'a5'.repeat(32), keyId: 'seal-2026' },
  'snapworker-s3': { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret', AWS_SESSION_TOKEN: 'example-token' },
  'snapworker-extra': {},
};

/**
 * Starts `snapworker worker` with the environment a rendered pod would get (volume mounts mapped
 * to temp dirs, metrics on a free port, a random queue name on the test Redis), checks that it
 * becomes ready, stays up and ready, and exits 0 on SIGTERM.
 */
async function runRenderedWorker(label: string, manifests: Manifest[]): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'snapworker-chart-worker-'));
  try {
    const { env, mounts } = await workerEnvironment(manifests, USER_SECRETS, root);
    const port = await freePort();
    const queueName = `${env.SNAPWORKER_QUEUE}-${randomBytes(4).toString('hex')}`;
    const tmp = mounts.get('/tmp');
    const child = spawn(process.execPath, snapworkerArgs('worker'), {
      cwd: PROJECT_ROOT,
      // Only what the pod would see, so a developer's own SNAPWORKER_* settings cannot leak in.
      env: { PATH: process.env.PATH, ...env, SNAPWORKER_METRICS_PORT: String(port), SNAPWORKER_QUEUE: queueName, ...(tmp ? { TMPDIR: tmp } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const status = (route: string) => fetch(`http://127.0.0.1:${port}${route}`).then((r) => r.status, () => 0);
    let failure: unknown;
    try {
      await waitFor(`${label}: the worker answers /readyz with 200`, async () => {
        if (child.exitCode !== null) assert.fail(`${label}: the worker exited with ${child.exitCode}:\n${output}`);
        return (await status('/readyz')) === 200;
      }, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(child.exitCode, null, `${label}: the worker stays up:\n${output}`);
      assert.equal(await status('/readyz'), 200, `${label}: still ready`);
      assert.equal(await status('/healthz'), 200, `${label}: healthy`);
    } catch (error) {
      failure = error;
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(timer);
    const queue = new Queue(queueName, { connection: REDIS, prefix: env.SNAPWORKER_PREFIX });
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    if (failure) throw failure;
    assert.equal(code, 0, `${label}: the worker exits 0 on SIGTERM:\n${output}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
