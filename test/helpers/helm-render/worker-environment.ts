import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from './render-chart.js';

/** Secrets the user created before installing the chart: Secret name → key → value. */
export type SecretStubs = Record<string, Record<string, string>>;

/** The environment a rendered worker container would see, with its volume mounts mapped to local directories. */
export interface WorkerEnvironment {
  /** Variables as the kubelet would set them (envFrom in order, then env), paths rewritten. */
  env: Record<string, string>;
  /** Container mount path → the local directory standing in for it. */
  mounts: Map<string, string>;
}

interface EnvVarView {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

interface ContainerView {
  name: string;
  env?: EnvVarView[];
  envFrom?: Array<{ configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean }; prefix?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

/**
 * Resolves the environment of the Deployment's container `containerName` from rendered
 * manifests, the way the kubelet does: `envFrom` sources in order (ConfigMaps from the rendering,
 * Secrets from `secrets`), then `env` entries, later ones winning. Every volume mount becomes a
 * directory under `localRoot` (created here), and every env value that names a mount path, or a
 * path below one, is rewritten to point into it, so the process runs unprivileged on this machine.
 *
 * @throws Error naming the Secret, ConfigMap or key when a non-optional reference cannot be
 *   resolved (the kubelet would refuse to start the container: CreateContainerConfigError).
 */
export async function workerEnvironment(
  manifests: Manifest[],
  secrets: SecretStubs,
  localRoot: string,
  containerName = 'worker',
): Promise<WorkerEnvironment> {
  const deployment = manifests.find((m) => m.kind === 'Deployment') as
    | (Manifest & { spec: { template: { spec: { containers: ContainerView[] } } } })
    | undefined;
  if (!deployment) throw new Error('the rendering has no Deployment');
  const container = deployment.spec.template.spec.containers.find((c) => c.name === containerName);
  if (!container) throw new Error(`the Deployment has no container ${containerName}`);
  const configMaps = new Map(
    manifests
      .filter((m) => m.kind === 'ConfigMap')
      .map((m) => [m.metadata.name, ((m as { data?: Record<string, string> }).data ?? {}) as Record<string, string>]),
  );

  const source = (kind: 'Secret' | 'ConfigMap', name: string, optional = false): Record<string, string> | undefined => {
    const found = kind === 'Secret' ? secrets[name] : configMaps.get(name);
    if (!found && !optional) throw new Error(`${kind} ${name} does not exist (the container would not start)`);
    return found;
  };
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const data = from.configMapRef
      ? source('ConfigMap', from.configMapRef.name, from.configMapRef.optional)
      : source('Secret', from.secretRef!.name, from.secretRef!.optional);
    for (const [key, value] of Object.entries(data ?? {})) env[(from.prefix ?? '') + key] = value;
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined || !variable.valueFrom) {
      env[variable.name] = variable.value ?? '';
      continue;
    }
    const ref = variable.valueFrom.secretKeyRef ?? variable.valueFrom.configMapKeyRef;
    if (!ref) throw new Error(`env ${variable.name}: only secretKeyRef and configMapKeyRef are resolved here`);
    const kind = variable.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
    const value = source(kind, ref.name, ref.optional)?.[ref.key];
    if (value === undefined) {
      if (ref.optional) continue;
      throw new Error(`env ${variable.name}: ${kind} ${ref.name} has no key ${ref.key} (the container would not start)`);
    }
    env[variable.name] = value;
  }

  const mounts = new Map<string, string>();
  for (const [index, mount] of (container.volumeMounts ?? []).entries()) {
    if (mounts.has(mount.mountPath)) continue;
    const local = path.join(localRoot, `${index}-${mount.name}`);
    await mkdir(local, { recursive: true });
    mounts.set(mount.mountPath, local);
  }
  // One pass with the longest paths first: /var/lib/x/y is not read as /var/lib/x plus a rest, and
  // a local directory put in (itself under /tmp) is not rewritten again for a /tmp mount.
  const pattern = mountPathsPattern([...mounts.keys()].sort((a, b) => b.length - a.length));
  for (const [name, value] of Object.entries(env)) env[name] = value.replace(pattern, (mountPath) => mounts.get(mountPath)!);
  return { env, mounts };
}

/** Mount paths standing as whole paths (or a path's start) inside a value: `/data`, `/data/x`, `file:///data`, `a:/data`. */
function mountPathsPattern(mountPaths: string[]): RegExp {
  const alternatives = mountPaths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return new RegExp(`(?<![\\w.-])(?:${alternatives || '(?!)'})(?![\\w.-])`, 'g');
}
