import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { cancelChannel, cancelKey } from '../jobs/cancel-channel.js';
import { CancelRequests } from '../worker/cancel-requests.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('cancel requests a worker heard or finds in Redis', () => {
  const queue = `cancel-${randomUUID().slice(0, 8)}`;
  const counterKey = `bull:${queue}:id`;
  const redis = new Redis(REDIS_URL);
  const listener = new Redis(REDIS_URL, { lazyConnect: true });
  const aborted: string[] = [];
  const requests = new CancelRequests(listener, 'bull', queue, (jobId) => aborted.push(jobId), async () => Number((await redis.get(counterKey)) ?? 0));
  let keyChecks = 0;
  const exists = (key: string) => {
    keyChecks += 1;
    return redis.exists(key);
  };
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 20));
  };
  after(async () => {
    requests.disconnect();
    await redis.del(counterKey, cancelKey('bull', queue, '5'), cancelKey('bull', queue, '12'));
    redis.disconnect();
  });

  it('answers for jobs added after it subscribed from what it heard, without a round trip per job', async () => {
    await redis.set(counterKey, '10'); // BullMQ had numbered 10 jobs before this worker listened
    await requests.start();
    assert.equal(await requests.requested('11', exists), false);
    assert.equal(keyChecks, 0, 'no key checked for a job whose every request it would have heard');

    await redis.set(cancelKey('bull', queue, '12'), '1', 'EX', 60);
    await redis.publish(cancelChannel('bull', queue), '12');
    await until(() => aborted.includes('12'));
    assert.deepEqual(aborted, ['12'], 'the running job is told at once');
    assert.equal(await requests.requested('12', exists), true, 'and an attempt starting later is cancelled too');
    assert.equal(keyChecks, 0);
  });

  it('checks the cancel key of a job added before it listened, and of a job with an id of its own', async () => {
    await redis.set(cancelKey('bull', queue, '5'), '1', 'EX', 60);
    assert.equal(await requests.requested('5', exists), true, 'a request it never heard is found in its key');
    assert.equal(await requests.requested('7', exists), false);
    assert.equal(await requests.requested('nightly-db', exists), false);
    assert.equal(keyChecks, 3);
  });

  it('checks keys while its connection is broken and for jobs added before it came back', async () => {
    const before = keyChecks;
    const checkedWhileAway = new Promise<boolean>((resolve) => listener.once('close', () => resolve(requests.requested('20', exists))));
    listener.disconnect(true);
    assert.equal(await checkedWhileAway, false);
    assert.equal(keyChecks, before + 1, 'a job checked while the listener was away asks Redis');
    await redis.set(counterKey, '30'); // jobs added while it was away
    await until(() => listener.status === 'ready');
    await new Promise((r) => setTimeout(r, 200)); // the counter is read again once subscribed
    assert.equal(await requests.requested('25', exists), false);
    assert.equal(keyChecks, before + 2, 'a job added while it was away asks Redis');
    assert.equal(await requests.requested('31', exists), false);
    assert.equal(keyChecks, before + 2, 'a job added since it is back does not');
  });
});
