import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { cancelChannel, cancelKey } from '../jobs/cancel-channel.js';
import { CancelRequests } from '../worker/cancel-requests.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('cancel requests a worker heard or finds in Redis', () => {
  const queue = `cancel-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(REDIS_URL);
  const listener = new Redis(REDIS_URL, { lazyConnect: true });
  const aborted: string[] = [];
  const requests = new CancelRequests(listener, 'bull', queue, (jobId) => aborted.push(jobId));
  let keyChecks = 0;
  const exists = (key: string) => {
    keyChecks += 1;
    return redis.exists(key);
  };
  after(async () => {
    requests.disconnect();
    await redis.del(cancelKey('bull', queue, 'old-job'), cancelKey('bull', queue, 'heard-job'));
    redis.disconnect();
  });

  it('answers a job added after its subscription from what it heard, without a round trip per job', async () => {
    await requests.start();
    const addedLater = Date.now() + 120_000;
    assert.equal(await requests.requested('quiet-job', addedLater, exists), false);
    assert.equal(keyChecks, 0, 'no key checked for a job whose every request it would have heard');

    await redis.set(cancelKey('bull', queue, 'heard-job'), '1', 'EX', 60);
    await redis.publish(cancelChannel('bull', queue), 'heard-job');
    for (let i = 0; i < 100 && !aborted.includes('heard-job'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(aborted, ['heard-job'], 'the running job is told at once');
    assert.equal(await requests.requested('heard-job', addedLater, exists), true, 'and an attempt starting later is cancelled too');
    assert.equal(keyChecks, 0);
  });

  it('checks the cancel key of a job added before it was surely listening', async () => {
    await redis.set(cancelKey('bull', queue, 'old-job'), '1', 'EX', 60);
    const addedBefore = Date.now() - 1000;
    assert.equal(await requests.requested('old-job', addedBefore, exists), true, 'a request it never heard is found in its key');
    assert.equal(await requests.requested('other-old-job', addedBefore, exists), false);
    assert.equal(keyChecks, 2);
  });

  it('checks keys while its connection is broken and just after, since requests published meanwhile were lost', async () => {
    const addedLater = Date.now() + 120_000;
    const before = keyChecks;
    const checkedWhileAway = new Promise<boolean>((resolve) => listener.once('close', () => resolve(requests.requested('while-away', addedLater, exists))));
    const back = new Promise<void>((resolve) => listener.once('ready', () => resolve()));
    listener.disconnect(true);
    assert.equal(await checkedWhileAway, false);
    assert.equal(keyChecks, before + 1, 'a job checked while the listener was away asks Redis');
    await back;
    assert.equal(await requests.requested('just-after', Date.now(), exists), false);
    assert.equal(keyChecks, before + 2, 'so does a job added just after it came back');
    assert.equal(await requests.requested('much-later', addedLater, exists), false);
    assert.equal(keyChecks, before + 2);
  });
});
