import assert from 'node:assert/strict';
import { mkdir, open } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { after, before, describe, it } from 'node:test';
import { startRedisServer } from '../scripts/local-redis.js';
import { cli } from './helpers/cli.js';
import { createTestEnvironment, eventually, spawnWorker, type TestEnvironment } from './helpers/worker-fixture.js';

/** A TCP port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the worker process and the command line under a missing Redis or a taken port', () => {
  let environment: TestEnvironment;
  before(async () => {
    environment = await createTestEnvironment();
  });
  after(async () => {
    await environment.cleanup();
  });

  it('a worker whose Redis went away exits soon after SIGTERM, logging the outage once per state, without stacks', async (t) => {
    const redis = await startRedisServer();
    const worker = spawnWorker(environment, { REDIS_URL: redis.url, SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '5' });
    try {
      await eventually('the worker to start', () => worker.logs().includes('worker started'), 20_000);
      await redis.stop();
      // ioredis retries about once a second: let several retries fail.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      const sent = Date.now();
      worker.child.kill('SIGTERM');
      const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(() => resolve('still alive'), 20_000))]);
      assert.equal(code, 0, `exit code after SIGTERM; logs:\n${worker.logs()}`);
      t.diagnostic(`exited ${(Date.now() - sent) / 1000} s after SIGTERM`);
      assert.ok(Date.now() - sent < 12_000, `exited ${Date.now() - sent} ms after SIGTERM`);
      const logs = worker.logs();
      assert.doesNotMatch(logs, /\\n\s+at /, 'no stack traces');
      const refusals = logs.split('\n').filter((line) => line.includes('ECONNREFUSED'));
      assert.ok(refusals.length >= 1 && refusals.length <= 3, `connection errors logged once per connection and state, got:\n${refusals.join('\n')}`);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await redis.stop();
    }
  });

  it('a worker running a job when its Redis went away exits within the grace and a few seconds of SIGTERM', async (t) => {
    const redis = await startRedisServer();
    const worker = spawnWorker(environment, { REDIS_URL: redis.url, SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '5' });
    const queue = new Queue(environment.queueName, { connection: { host: '127.0.0.1', port: Number(new URL(redis.url).port) } });
    try {
      await eventually('the worker to start', () => worker.logs().includes('worker started'), 20_000);
      const source = path.join(environment.root, 'sparse');
      await mkdir(source);
      const handle = await open(path.join(source, 'zeros.bin'), 'w');
      await handle.truncate(64 * 1024 ** 3);
      await handle.close();
      const job = await queue.add('snapshot', { v: 1, source: `dir://${source}` });
      await eventually('the job to run', async () => (await job.getState()) === 'active', 20_000);
      await queue.close();
      await redis.stop();
      const sent = Date.now();
      worker.child.kill('SIGTERM');
      const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(() => resolve('still alive'), 30_000))]);
      const seconds = (Date.now() - sent) / 1000;
      assert.equal(code, 0, `exit code after SIGTERM; logs:\n${worker.logs()}`);
      t.diagnostic(`exited ${seconds} s after SIGTERM (grace 5 s)`);
      assert.ok(seconds < 5 + 12, `exited ${seconds} s after SIGTERM`);
      assert.match(worker.logs(), /shutdown grace over; returning running jobs to the queue/);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await queue.close().catch(() => {});
      await redis.stop();
    }
  });

  it('a worker that cannot start (metrics port taken) exits 1 at once with one line naming the port', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const worker = spawnWorker(environment, { SNAPWORKER_METRICS_PORT: String(port), SNAPWORKER_METRICS_HOST: '127.0.0.1' });
      const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(() => resolve('still alive'), 20_000))]);
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      assert.equal(code, 1, worker.logs());
      assert.equal(worker.logs().trim().split('\n').length, 1, worker.logs());
      assert.match(worker.logs(), new RegExp(`^snapworker: metrics server: listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    } finally {
      taken.close();
    }
  });

  it('a worker still waiting for an unreachable Redis stops on SIGTERM', async () => {
    const worker = spawnWorker(environment, { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
    try {
      await eventually('a connection error in the log', () => worker.logs().includes('ECONNREFUSED'), 20_000);
      worker.child.kill('SIGTERM');
      const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(() => resolve('still alive'), 15_000))]);
      assert.equal(code, 0, worker.logs());
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  });

  it('a queued command with an unreachable Redis fails within seconds naming the URL without its password', async () => {
    const url = `redis://admin:hunter2@127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    const run = await cli(['snapshot', `dir://${environment.root}`], { ...environment.env, REDIS_URL: url });
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^snapworker: redis redis:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+: not reachable within 5s: .*ECONNREFUSED/);
    assert.doesNotMatch(run.stderr, /hunter2/);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  });
});
