/**
 * Workers for tests: in-process (`startTestWorker`) or as real child processes running the CLI
 * (`spawnWorker`), each on a random queue so tests never see each other's jobs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { Queue, QueueEvents } from 'bullmq';
import { loadConfig, type WorkerConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logging.js';
import { startWorker, type RunningWorker } from '../../worker/run-worker.js';
import { snapworkerArgs } from './compiled-cli.js';

export const PROJECT_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const REDIS = { host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) };

/** A temp root (sources, targets, repository live under it) and a random queue name. */
export interface TestEnvironment {
  root: string;
  repoDir: string;
  queueName: string;
  env: NodeJS.ProcessEnv;
  queue: Queue;
  events: QueueEvents;
  cleanup(): Promise<void>;
}

export async function createTestEnvironment(extraEnv: NodeJS.ProcessEnv = {}): Promise<TestEnvironment> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-test-'));
  const repoDir = path.join(root, 'repo');
  const queueName = `test-${randomBytes(6).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    REDIS_URL,
    SNAPWORKER_QUEUE: queueName,
    SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${repoDir}` }),
    SNAPWORKER_ALLOWED_PATHS: root,
    SNAPWORKER_STAGING_DIR: root,
    SNAPWORKER_METRICS_PORT: '0',
    SNAPWORKER_METRICS_HOST: '127.0.0.1',
    SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '5',
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const queue = new Queue(queueName, { connection: REDIS });
  const events = new QueueEvents(queueName, { connection: REDIS });
  await events.waitUntilReady();
  return {
    root,
    repoDir,
    queueName,
    env,
    queue,
    events,
    async cleanup() {
      await events.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A worker in this process, configured for the environment. */
export async function startTestWorker(environment: TestEnvironment, env: NodeJS.ProcessEnv = {}): Promise<{ worker: RunningWorker; config: WorkerConfig }> {
  const config = loadConfig({ ...environment.env, ...env });
  const worker = await startWorker(config, createLogger(config.logLevel));
  return { worker, config };
}

/**
 * Gives the enclosing suite a fresh environment with an in-process worker: registers the
 * `before` and `after` hooks that start and stop them. Read `environment` inside tests.
 */
export function useTestWorker(extraEnv: NodeJS.ProcessEnv = {}): { readonly environment: TestEnvironment } {
  let environment: TestEnvironment | undefined;
  let worker: RunningWorker | undefined;
  before(async () => {
    environment = await createTestEnvironment(extraEnv);
    ({ worker } = await startTestWorker(environment));
  });
  after(async () => {
    await worker?.stop();
    await environment?.cleanup();
  });
  return {
    get environment() {
      if (!environment) throw new Error('the test environment is not started yet');
      return environment;
    },
  };
}

/** A worker as a child process running the real CLI (`snapworker worker`); its stderr is collected. */
export interface WorkerProcess {
  child: ChildProcess;
  logs(): string;
  exited: Promise<number | null>;
}

/** Starts `snapworker worker` with the environment's `env` and `env` over it (LOG_LEVEL info unless given). */
export function spawnWorker(environment: Pick<TestEnvironment, 'env'>, env: NodeJS.ProcessEnv = {}): WorkerProcess {
  const child = spawn(process.execPath, snapworkerArgs('worker'), {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...environment.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let logs = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    logs += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, logs: () => logs, exited };
}

/** Resolves once `check` returns a truthy value, polling; fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T> | T, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a shell pipeline and resolves with its exit code and output. */
export function sh(script: string, cwd?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}
