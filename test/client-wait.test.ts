import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { SnapworkerClient } from '../jobs/client.js';
import { REDIS_URL } from './helpers/worker-fixture.js';

/**
 * The one fault here a real worker cannot be made to produce on demand: a job that ends while the
 * client's QueueEvents is still starting its first stream read, so its finish event never reaches
 * the client. It is made by writing a job's end straight into Redis, as BullMQ's scripts store it,
 * without the event. The paths with real workers are in cli-jobs.test.ts (`--wait`).
 */
describe('waiting for a job', () => {
  for (const outcome of ['completed', 'failed'] as const) {
    it(`learns a job ${outcome} even when its finish event never arrives`, async () => {
      const queueName = `wait-${randomBytes(4).toString('hex')}`;
      const client = new SnapworkerClient({ connection: REDIS_URL, queueName });
      const redis = new Redis(REDIS_URL);
      try {
        const job = await client.enqueue('prune', { v: 1, dryRun: true });
        const waiting = client.waitForResult(job);
        await new Promise((resolve) => setTimeout(resolve, 300)); // past the state check BullMQ makes once
        const key = `bull:${queueName}:${job.id}`;
        await redis.lrem(`bull:${queueName}:wait`, 0, job.id!);
        await redis.zrem(`bull:${queueName}:prioritized`, job.id!);
        if (outcome === 'completed') {
          await redis.hset(key, 'returnvalue', JSON.stringify({ ok: 1 }), 'finishedOn', Date.now());
          await redis.zadd(`bull:${queueName}:completed`, Date.now(), job.id!);
          assert.deepEqual(await waiting, { ok: 1 });
        } else {
          await redis.hset(key, 'failedReason', 'bad input', 'finishedOn', Date.now());
          await redis.zadd(`bull:${queueName}:failed`, Date.now(), job.id!);
          await assert.rejects(waiting, /bad input/);
        }
      } finally {
        await client.queue.obliterate({ force: true });
        await client.close();
        redis.disconnect();
      }
    });
  }
});
