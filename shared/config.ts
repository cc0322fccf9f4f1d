import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { errorMessage, InvalidInputError } from './errors.js';
import { parseNatsServerUrls } from './nats/nats-servers.js';
import { ANY_SERVER, serverAddress } from './kinds/server-policy.js';
import { redactUrl } from './redact-url.js';
import { clusterPrefixProblem, isClusterUrl, redisUrlProblem } from '../jobs/redis-connection.js';
import { writableDirProblem } from './fsutil/writable-dir.js';
import { profileSettings, serverSettings } from './kinds/registry.js';
import type { SealKey } from './formats/archive/seal.js';
import { isRepositoryUri, parseRepositoryUri, REPOSITORY_URI_SCHEMES } from './storage/open-driver.js';
import { parseKeySource, type KeySource } from './crypto/key-source.js';

/** Everything a worker (or a `--local` run) is configured with. Read from the environment only. */
export interface WorkerConfig {
  /**
   * `REDIS_URL`, default `redis://127.0.0.1:6379`: one server (`redis://`, `rediss://` for TLS), a
   * Redis Cluster's seed nodes (`redis+cluster://host:port,host:port`) or Sentinels and their
   * master (`redis+sentinel://host:26379,host:26379/mymaster`); see `RedisSettings`.
   */
  redisUrl: string;
  /** `SNAPWORKER_QUEUE`, default `snapworker`. */
  queueName: string;
  /** `SNAPWORKER_PREFIX`, BullMQ key prefix, default `bull`; may be a Redis Cluster hash tag `{snapworker}`. */
  prefix: string;
  /** `NATS_URL`: where progress events go (comma-separated servers, `user:pass@` or `token@` allowed); unset or empty means no events. */
  natsUrl?: string;
  /**
   * The servers jobs may name, by kind: `SNAPWORKER_<KIND>_ALLOWED_SERVERS` for every kind whose
   * registration has `servers` (comma-separated `host:port`, `*` for any). Defaults: the kind's
   * (`127.0.0.1` and `localhost` on its port), for NATS plus the servers of `NATS_URL`.
   * `SNAPWORKER_NATS_ALLOWED_SERVERS` → `nats`, `SNAPWORKER_POSTGRES_ALLOWED_SERVERS` → `postgres`.
   */
  allowedServers: Record<string, string[]>;
  /** `SNAPWORKER_REPOSITORIES`: name → repository URI. Default `{"default": "file://<cwd>/.snapworker/repo"}`. */
  repositories: Record<string, string>;
  /**
   * `SNAPWORKER_AUTO_INIT`, default true: a snapshot into a repository that does not exist creates
   * it. `false`: it fails ("does not exist", exit 10) until `snapworker init` created it, so a
   * mistyped repository never silently starts a new one. Reads never create a repository.
   */
  autoInit: boolean;
  /** `SNAPWORKER_DEFAULT_REPOSITORY`, default `default`. */
  defaultRepository: string;
  /**
   * `SNAPWORKER_REPOSITORY_KEYS`: repository name → where its key-encryption keys are, as a JSON
   * list of `env:VAR`, `file:/abs/path` or `kms:KEY-ID` (docs/encryption.md). Names the secrets'
   * places, never the secrets. A repository listed here is created encrypted, and must be.
   * Default `{}`: no repository is encrypted.
   */
  repositoryKeys: Record<string, KeySource[]>;
  /** `SNAPWORKER_CONCURRENCY`: jobs run at once per worker, default 2 (replicate jobs not counted). */
  concurrency: number;
  /** `SNAPWORKER_MAX_REPLICATORS`: replicate jobs run at once per worker, in slots of their own, default 4; 0 runs none. */
  maxReplicators: number;
  /** `SNAPWORKER_ALLOWED_PATHS`: colon-separated absolute roots jobs may read and write; default the working directory. */
  allowedPaths: string[];
  /** `SNAPWORKER_STAGING_DIR`: temp files and staging, default the OS temp dir; must exist and be writable at start. */
  stagingDir: string;
  /** `SNAPWORKER_METRICS_PORT`, default 9464; `0` picks a free port. */
  metricsPort: number;
  /** `SNAPWORKER_METRICS_HOST`, default `0.0.0.0`. */
  metricsHost: string;
  /** `SNAPWORKER_SHUTDOWN_GRACE_SECONDS`: how long running jobs may finish after SIGTERM, default 60. */
  shutdownGraceSeconds: number;
  /** `SNAPWORKER_STALL_TIMEOUT_SECONDS`: a snapshot, restore or verify without progress this long fails, default 300; 0 never. */
  stallTimeoutSeconds: number;
  /** `SNAPWORKER_LOCK_DURATION_MS`: BullMQ job lock, default 30000. */
  lockDurationMs: number;
  /** `SNAPWORKER_STALLED_INTERVAL_MS`: how often stalled jobs are looked for, default 30000. */
  stalledIntervalMs: number;
  /** `SNAPWORKER_COMPRESSION_LEVEL`, default 3 (zstd). */
  compressionLevel: number;
  /** `SNAPWORKER_ZSTD_THREADS`: zstd worker threads, default the number of CPUs. */
  zstdThreads: number;
  /** `SNAPWORKER_SEAL_KEY` (hex or base64, at least 32 bytes) and `SNAPWORKER_SEAL_KEY_ID`. */
  seal?: SealKey;
  /**
   * Credentials profiles by kind, then by name: `SNAPWORKER_<KIND>_PROFILES` for every kind whose
   * registration has a `profile` schema (`SNAPWORKER_NATS_PROFILES`: JSON name → NatsProfile), each
   * checked against that schema. A kind without the variable set has no profiles (`{}`).
   */
  profiles: Record<string, Record<string, unknown>>;
  /**
   * `SNAPWORKER_SCHEDULES_FILE`: a JSON array of schedules (the chart's ConfigMap) that the
   * worker reconciles at start and whenever the file changes; only schedules it manages
   * (`managedBy: "helm"`) are touched. Unset: no declarative schedules.
   */
  schedulesFile?: string;
  /** `LOG_LEVEL`, default `info`. */
  logLevel: string;
  /** `SNAPWORKER_RESTORE_SETUID`: directory restores keep setuid, setgid and sticky bits; default false (cleared, as GNU tar does for non-root users). */
  restoreSetuid: boolean;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const wholeNumber = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const port = wholeNumber(0, 65535);

const envSchema = z.object({
  REDIS_URL: z
    .string()
    .superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('redis://127.0.0.1:6379'),
  SNAPWORKER_QUEUE: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('snapworker'),
  SNAPWORKER_PREFIX: z.string().regex(/^[^\s:]+$/, 'no spaces or colons').default('bull'),
  NATS_URL: z.string().optional(),
  SNAPWORKER_REPOSITORIES: z.string().optional(),
  SNAPWORKER_DEFAULT_REPOSITORY: z.string().default('default'),
  SNAPWORKER_REPOSITORY_KEYS: z.string().optional(),
  SNAPWORKER_AUTO_INIT: z.enum(['true', 'false']).default('true'),
  SNAPWORKER_CONCURRENCY: wholeNumber(1, 64).default(2),
  SNAPWORKER_MAX_REPLICATORS: wholeNumber(0, 256).default(4),
  SNAPWORKER_ALLOWED_PATHS: z.string().optional(),
  SNAPWORKER_STAGING_DIR: z.string().optional(),
  SNAPWORKER_METRICS_PORT: port.default(9464),
  SNAPWORKER_METRICS_HOST: z.string().default('0.0.0.0'),
  SNAPWORKER_SHUTDOWN_GRACE_SECONDS: z.coerce.number({ error: 'must be a number' }).min(0, 'must be at least 0').default(60),
  SNAPWORKER_STALL_TIMEOUT_SECONDS: z.coerce.number({ error: 'must be a number' }).min(0, 'must be at least 0').default(300),
  SNAPWORKER_LOCK_DURATION_MS: wholeNumber(1000, 2 ** 31 - 1).default(30000),
  SNAPWORKER_STALLED_INTERVAL_MS: wholeNumber(500, 2 ** 31 - 1).default(30000),
  SNAPWORKER_COMPRESSION_LEVEL: wholeNumber(-7, 22).default(3),
  SNAPWORKER_ZSTD_THREADS: wholeNumber(0, 64).optional(),
  SNAPWORKER_SEAL_KEY: z.string().optional(),
  SNAPWORKER_SEAL_KEY_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _, . and - only, at most 64').optional(),
  SNAPWORKER_RESTORE_SETUID: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  SNAPWORKER_SCHEDULES_FILE: z.string().optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});
type Env = z.infer<typeof envSchema>;

/** The kinds' credentials profiles (`SNAPWORKER_<KIND>_PROFILES`), read beside `envSchema`. */
const PROFILE_SETTINGS = profileSettings();

/** Variables whose values are secrets: a problem with them never prints the value. */
const SECRET_VARIABLES = new Set(['SNAPWORKER_SEAL_KEY', ...PROFILE_SETTINGS.map((setting) => setting.variable)]);

const repositoryName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'repository names are letters, digits, _ and -');
const repositoriesSchema = z.record(repositoryName, z.string().refine(isRepositoryUri, `must be a ${REPOSITORY_URI_SCHEMES} URI`));
const keySourceSchema = z.string().transform((spec, ctx) => {
  try {
    return parseKeySource(spec);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err) });
    return z.NEVER;
  }
});
const repositoryKeysSchema = z.record(repositoryName, z.array(keySourceSchema).min(1, 'list at least one key source'));

/** Thrown at start when configuration is wrong; the message has one line per bad value. */
export class ConfigError extends InvalidInputError {
  constructor(readonly problems: string[]) {
    super(`invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the configuration from `env`. Collects every problem before failing, so an
 * operator fixes them in one go: a bad value is reported and its default used to go on checking
 * the rest. A variable set to the empty string (or only spaces) counts as unset, so
 * `NATS_URL=` means no events, as with a variable left out of a Kubernetes manifest.
 * @throws ConfigError naming each bad variable, its value (never a secret's) and why, one per line.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): WorkerConfig {
  const problems: string[] = [];
  const e = readEnv(env, problems);

  const repositories = parseJsonSetting('SNAPWORKER_REPOSITORIES', e.SNAPWORKER_REPOSITORIES, repositoriesSchema, problems) ?? {
    default: `file://${path.join(cwd, '.snapworker', 'repo')}`,
  };
  for (const [name, uri] of Object.entries(repositories)) {
    try {
      parseRepositoryUri(uri);
    } catch (err) {
      problems.push(`SNAPWORKER_REPOSITORIES.${name}: ${errorMessage(err)}`);
    }
  }
  if (!Object.hasOwn(repositories, e.SNAPWORKER_DEFAULT_REPOSITORY)) {
    problems.push(`SNAPWORKER_DEFAULT_REPOSITORY=${quote(e.SNAPWORKER_DEFAULT_REPOSITORY)}: not one of SNAPWORKER_REPOSITORIES (${Object.keys(repositories).join(', ')})`);
  }
  const repositoryKeys = parseJsonSetting('SNAPWORKER_REPOSITORY_KEYS', e.SNAPWORKER_REPOSITORY_KEYS, repositoryKeysSchema, problems) ?? {};
  for (const name of Object.keys(repositoryKeys)) {
    if (!Object.hasOwn(repositories, name)) problems.push(`SNAPWORKER_REPOSITORY_KEYS.${name}: not one of SNAPWORKER_REPOSITORIES (${Object.keys(repositories).join(', ')})`);
  }
  if (isClusterUrl(e.REDIS_URL)) {
    const problem = clusterPrefixProblem(e.SNAPWORKER_PREFIX);
    if (problem) problems.push(`SNAPWORKER_PREFIX=${quote(e.SNAPWORKER_PREFIX)}: ${problem}`);
  }
  const profiles: Record<string, Record<string, unknown>> = {};
  for (const { kind, variable, profile } of PROFILE_SETTINGS) {
    profiles[kind] = parseJsonSetting(variable, envValue(env, variable), z.record(z.string(), profile), problems) ?? {};
  }

  let natsServers: string[] = [];
  if (e.NATS_URL !== undefined) {
    try {
      natsServers = parseNatsServerUrls(e.NATS_URL).servers;
    } catch (err) {
      problems.push(`NATS_URL=${quote(redactUrl(e.NATS_URL))}: ${errorMessage(err)}`);
    }
  }
  const allowedServers: Record<string, string[]> = {};
  for (const { kind, variable, defaultPort, defaults } of serverSettings()) {
    // The event server is one the operator already trusts, so NATS jobs may name it too.
    const given = envValue(env, variable)?.split(',').map((s) => s.trim()).filter(Boolean);
    allowedServers[kind] = given ?? [...defaults, ...(kind === 'nats' ? natsServers : [])];
    for (const server of allowedServers[kind]) {
      if (server === ANY_SERVER) continue;
      try {
        serverAddress(server, defaultPort);
      } catch {
        problems.push(`${variable}: ${quote(server)} is not host:port`);
      }
    }
  }

  const allowedPaths = (e.SNAPWORKER_ALLOWED_PATHS ?? cwd).split(':').filter(Boolean);
  for (const p of allowedPaths) if (!path.isAbsolute(p)) problems.push(`SNAPWORKER_ALLOWED_PATHS: ${quote(p)} is not an absolute path`);
  const stagingDir = e.SNAPWORKER_STAGING_DIR ?? os.tmpdir();
  if (!path.isAbsolute(stagingDir)) problems.push(`SNAPWORKER_STAGING_DIR=${quote(stagingDir)}: not an absolute path`);
  else {
    const problem = writableDirProblem(stagingDir);
    if (problem) problems.push(`SNAPWORKER_STAGING_DIR=${quote(stagingDir)}: ${problem}`);
  }

  let seal: SealKey | undefined;
  if (e.SNAPWORKER_SEAL_KEY !== undefined) {
    const key = decodeKey(e.SNAPWORKER_SEAL_KEY);
    if (!key || key.length < 32) problems.push('SNAPWORKER_SEAL_KEY: must be hex or base64 of at least 32 bytes');
    else seal = { keyId: e.SNAPWORKER_SEAL_KEY_ID ?? 'default', key };
  } else if (e.SNAPWORKER_SEAL_KEY_ID !== undefined) {
    problems.push('SNAPWORKER_SEAL_KEY_ID: set without SNAPWORKER_SEAL_KEY');
  }
  if (e.SNAPWORKER_SCHEDULES_FILE !== undefined && !path.isAbsolute(e.SNAPWORKER_SCHEDULES_FILE)) {
    problems.push(`SNAPWORKER_SCHEDULES_FILE=${quote(e.SNAPWORKER_SCHEDULES_FILE)}: not an absolute path`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    redisUrl: e.REDIS_URL,
    queueName: e.SNAPWORKER_QUEUE,
    prefix: e.SNAPWORKER_PREFIX,
    natsUrl: e.NATS_URL,
    allowedServers,
    repositories,
    defaultRepository: e.SNAPWORKER_DEFAULT_REPOSITORY,
    repositoryKeys,
    autoInit: e.SNAPWORKER_AUTO_INIT === 'true',
    concurrency: e.SNAPWORKER_CONCURRENCY,
    maxReplicators: e.SNAPWORKER_MAX_REPLICATORS,
    allowedPaths,
    stagingDir,
    metricsPort: e.SNAPWORKER_METRICS_PORT,
    metricsHost: e.SNAPWORKER_METRICS_HOST,
    shutdownGraceSeconds: e.SNAPWORKER_SHUTDOWN_GRACE_SECONDS,
    stallTimeoutSeconds: e.SNAPWORKER_STALL_TIMEOUT_SECONDS,
    lockDurationMs: e.SNAPWORKER_LOCK_DURATION_MS,
    stalledIntervalMs: e.SNAPWORKER_STALLED_INTERVAL_MS,
    compressionLevel: e.SNAPWORKER_COMPRESSION_LEVEL,
    zstdThreads: e.SNAPWORKER_ZSTD_THREADS ?? os.availableParallelism(),
    seal,
    profiles,
    ...(e.SNAPWORKER_SCHEDULES_FILE ? { schedulesFile: e.SNAPWORKER_SCHEDULES_FILE } : {}),
    logLevel: e.LOG_LEVEL,
    restoreSetuid: e.SNAPWORKER_RESTORE_SETUID === 'true',
  };
}

/**
 * Each variable on its own, so one bad value never hides the next: a bad one is reported (with
 * its value, unless secret) and replaced by its default.
 */
function readEnv(env: NodeJS.ProcessEnv, problems: string[]): Env {
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(envSchema.shape)) {
    const given = envValue(env, name);
    const parsed = schema.safeParse(given);
    if (parsed.success) {
      values[name] = parsed.data;
      continue;
    }
    const shown = SECRET_VARIABLES.has(name) ? '' : `=${quote(redactUrl(given ?? ''))}`;
    problems.push(`${name}${shown}: ${oneLine(parsed.error.issues[0]?.message ?? 'invalid')}`);
    values[name] = schema.safeParse(undefined).data;
  }
  return values as Env;
}

/** The value of variable `name`; the empty string (or only spaces) counts as unset. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = Object.hasOwn(env, name) ? env[name] : undefined;
  return raw === undefined || raw.trim() === '' ? undefined : raw;
}

/** A value for a one-line message: quoted, control characters escaped, long ones cut. */
function quote(value: string): string {
  const text = JSON.stringify(value);
  return text.length > 82 ? `${text.slice(0, 80)}…"` : text;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

function parseJsonSetting<T>(name: string, raw: string | undefined, schema: z.ZodType<T>, problems: string[]): T | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    // V8's message quotes the text around the error, which in a profiles variable is a password.
    problems.push(`${name}: not valid JSON${SECRET_VARIABLES.has(name) ? '' : ` (${oneLine(errorMessage(err))})`}`);
    return undefined;
  }
  // JSON.parse keeps "__proto__" as an own key, but a record built from it would drop the
  // entry silently (or change its prototype): refuse the name instead.
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
    problems.push(`${name}: "__proto__" cannot be a name`);
    return undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${name}${issue.path.length ? '.' + issue.path.join('.') : ''}: ${oneLine(issue.message)}`);
    return undefined;
  }
  return parsed.data;
}

function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/=_-]+$/.test(text)) return Buffer.from(text, 'base64');
  return undefined;
}
