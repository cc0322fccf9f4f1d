import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { InvalidInputError } from './errors.js';
import type { NatsProfile } from './sources/source.js';
import type { SealKey } from './archive/seal.js';

/** Everything a worker (or a `--local` run) is configured with. Read from the environment only. */
export interface WorkerConfig {
  /** `REDIS_URL`, default `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** `SNAPWORKER_QUEUE`, default `snapworker`. */
  queueName: string;
  /** `SNAPWORKER_PREFIX`, BullMQ key prefix, default `bull`; may be a Redis Cluster hash tag `{snapworker}`. */
  prefix: string;
  /** `NATS_URL`: where progress events go; unset means no events. */
  natsUrl?: string;
  /** `SNAPWORKER_REPOSITORIES`: name → repository URI. Default `{"default": "file://<cwd>/.snapworker/repo"}`. */
  repositories: Record<string, string>;
  /** `SNAPWORKER_DEFAULT_REPOSITORY`, default `default`. */
  defaultRepository: string;
  /** `SNAPWORKER_CONCURRENCY`: jobs run at once per worker, default 2. */
  concurrency: number;
  /** `SNAPWORKER_ALLOWED_PATHS`: colon-separated absolute roots jobs may read and write; default the working directory. */
  allowedPaths: string[];
  /** `SNAPWORKER_STAGING_DIR`: temp files and staging, default the OS temp dir. */
  stagingDir: string;
  /** `SNAPWORKER_METRICS_PORT`, default 9464; `0` picks a free port. */
  metricsPort: number;
  /** `SNAPWORKER_METRICS_HOST`, default `0.0.0.0`. */
  metricsHost: string;
  /** `SNAPWORKER_SHUTDOWN_GRACE_SECONDS`: how long running jobs may finish after SIGTERM, default 60. */
  shutdownGraceSeconds: number;
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
  /** `SNAPWORKER_NATS_PROFILES`: JSON name → NatsProfile, for NATS sources and targets. */
  natsProfiles: Record<string, NatsProfile>;
  /** `LOG_LEVEL`, default `info`. */
  logLevel: string;
  /** `SNAPWORKER_RESTORE_SETUID`: directory restores keep setuid, setgid and sticky bits; default false (cleared, as GNU tar does for non-root users). */
  restoreSetuid: boolean;
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const envSchema = z.object({
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').default('redis://127.0.0.1:6379'),
  SNAPWORKER_QUEUE: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('snapworker'),
  SNAPWORKER_PREFIX: z.string().regex(/^[^\s:]+$/, 'no spaces or colons').default('bull'),
  NATS_URL: z.string().regex(/^(nats|tls|wss?):\/\//, 'must start with nats://').optional(),
  SNAPWORKER_REPOSITORIES: z.string().optional(),
  SNAPWORKER_DEFAULT_REPOSITORY: z.string().default('default'),
  SNAPWORKER_CONCURRENCY: positiveInt.max(64).default(2),
  SNAPWORKER_ALLOWED_PATHS: z.string().optional(),
  SNAPWORKER_STAGING_DIR: z.string().optional(),
  SNAPWORKER_METRICS_PORT: port.default(9464),
  SNAPWORKER_METRICS_HOST: z.string().default('0.0.0.0'),
  SNAPWORKER_SHUTDOWN_GRACE_SECONDS: z.coerce.number().min(0).default(60),
  SNAPWORKER_LOCK_DURATION_MS: positiveInt.min(1000).default(30000),
  SNAPWORKER_STALLED_INTERVAL_MS: positiveInt.min(500).default(30000),
  SNAPWORKER_COMPRESSION_LEVEL: z.coerce.number().int().min(-7).max(22).default(3),
  SNAPWORKER_ZSTD_THREADS: z.coerce.number().int().min(0).max(64).optional(),
  SNAPWORKER_SEAL_KEY: z.string().optional(),
  SNAPWORKER_SEAL_KEY_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  SNAPWORKER_NATS_PROFILES: z.string().optional(),
  SNAPWORKER_RESTORE_SETUID: z.enum(['true', 'false'], { message: 'must be true or false' }).default('false'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const repositoryName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'repository names are letters, digits, _ and -');
const repositoriesSchema = z.record(repositoryName, z.string().regex(/^(file|s3):\/\//, 'must be a file:// or s3:// URI'));
const natsProfileSchema = z
  .object({
    token: z.string().optional(),
    user: z.string().optional(),
    pass: z.string().optional(),
    credsFile: z.string().optional(),
    tls: z.object({ caFile: z.string().optional(), certFile: z.string().optional(), keyFile: z.string().optional() }).strict().optional(),
  })
  .strict();
const natsProfilesSchema = z.record(z.string(), natsProfileSchema);

/** Thrown at start when configuration is wrong; the message has one line per bad value. */
export class ConfigError extends InvalidInputError {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the configuration from `env`. Collects every problem before failing, so an
 * operator fixes them in one go.
 * @throws ConfigError naming each bad variable and why.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): WorkerConfig {
  const problems: string[] = [];
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;

  const repositories = parseJsonSetting('SNAPWORKER_REPOSITORIES', e.SNAPWORKER_REPOSITORIES, repositoriesSchema, problems) ?? {
    default: `file://${path.join(cwd, '.snapworker', 'repo')}`,
  };
  if (!(e.SNAPWORKER_DEFAULT_REPOSITORY in repositories)) {
    problems.push(`SNAPWORKER_DEFAULT_REPOSITORY: "${e.SNAPWORKER_DEFAULT_REPOSITORY}" is not one of SNAPWORKER_REPOSITORIES (${Object.keys(repositories).join(', ')})`);
  }
  const natsProfiles = parseJsonSetting('SNAPWORKER_NATS_PROFILES', e.SNAPWORKER_NATS_PROFILES, natsProfilesSchema, problems) ?? {};

  const allowedPaths = (e.SNAPWORKER_ALLOWED_PATHS ?? cwd).split(':').filter(Boolean);
  for (const p of allowedPaths) if (!path.isAbsolute(p)) problems.push(`SNAPWORKER_ALLOWED_PATHS: ${p} is not an absolute path`);
  const stagingDir = e.SNAPWORKER_STAGING_DIR ?? os.tmpdir();
  if (!path.isAbsolute(stagingDir)) problems.push(`SNAPWORKER_STAGING_DIR: ${stagingDir} is not an absolute path`);

  let seal: SealKey | undefined;
  if (e.SNAPWORKER_SEAL_KEY !== undefined) {
    const key = decodeKey(e.SNAPWORKER_SEAL_KEY);
    if (!key || key.length < 32) problems.push('SNAPWORKER_SEAL_KEY: must be hex or base64 of at least 32 bytes');
    else seal = { keyId: e.SNAPWORKER_SEAL_KEY_ID ?? 'default', key };
  } else if (e.SNAPWORKER_SEAL_KEY_ID !== undefined) {
    problems.push('SNAPWORKER_SEAL_KEY_ID: set without SNAPWORKER_SEAL_KEY');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    redisUrl: e.REDIS_URL,
    queueName: e.SNAPWORKER_QUEUE,
    prefix: e.SNAPWORKER_PREFIX,
    natsUrl: e.NATS_URL,
    repositories,
    defaultRepository: e.SNAPWORKER_DEFAULT_REPOSITORY,
    concurrency: e.SNAPWORKER_CONCURRENCY,
    allowedPaths,
    stagingDir,
    metricsPort: e.SNAPWORKER_METRICS_PORT,
    metricsHost: e.SNAPWORKER_METRICS_HOST,
    shutdownGraceSeconds: e.SNAPWORKER_SHUTDOWN_GRACE_SECONDS,
    lockDurationMs: e.SNAPWORKER_LOCK_DURATION_MS,
    stalledIntervalMs: e.SNAPWORKER_STALLED_INTERVAL_MS,
    compressionLevel: e.SNAPWORKER_COMPRESSION_LEVEL,
    zstdThreads: e.SNAPWORKER_ZSTD_THREADS ?? os.availableParallelism(),
    seal,
    natsProfiles,
    logLevel: e.LOG_LEVEL,
    restoreSetuid: e.SNAPWORKER_RESTORE_SETUID === 'true',
  };
}

function parseJsonSetting<T>(name: string, raw: string | undefined, schema: z.ZodType<T>, problems: string[]): T | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    problems.push(`${name}: not valid JSON (${(err as Error).message})`);
    return undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${name}${issue.path.length ? '.' + issue.path.join('.') : ''}: ${issue.message}`);
    return undefined;
  }
  return parsed.data;
}

function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/=_-]+$/.test(text)) return Buffer.from(text, 'base64');
  return undefined;
}
