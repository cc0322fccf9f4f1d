/**
 * Faults and safety of configuration and input: every bad configuration value named on its own
 * line, names from input that match a property of Object, repository URIs named without
 * secrets, S3 leftovers that cannot be cleaned up, credentials in NATS_URL, NATS servers jobs may
 * name, and restore targets that are an allowed root. Real Redis, NATS, s3rver and worker
 * processes; the fault proxy answers what a restrictive S3 would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { connect } from '@nats-io/transport-node';
import type { Job } from 'bullmq';
import { pino } from 'pino';
import { runCli } from './helpers/cli-runner.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startNatsServer } from './helpers/nats-server.js';
import { startS3rver } from './helpers/s3rver.js';
import { makeTree } from './helpers/tree.js';
import { createTestEnvironment, eventually, spawnWorker, startTestWorker, type TestEnvironment } from './helpers/worker-fixture.js';
import { parseJobData } from '../jobs/validate.js';
import { loadConfig } from '../shared/config.js';
import { InvalidInputError, isRetryable } from '../shared/errors.js';
import { redactUrl } from '../shared/redact-url.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { runJob } from '../worker/job-runner.js';
import { startWorker } from '../worker/run-worker.js';
import { BOOKKEEPING_KEY } from '../worker/queue-worker.js';

/** Names that are properties of every object: a lookup by them must find nothing. */
const OBJECT_PROPERTY_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];


/** Waits for a job to end and returns it as stored. */
async function settled(environment: TestEnvironment, job: Job, timeoutMs = 30_000): Promise<Job> {
  await job.waitUntilFinished(environment.events, timeoutMs).catch(() => {});
  return (await environment.queue.getJob(job.id!))!;
}

/** A pino logger whose lines are kept in memory, for asserting on what a worker logged. */
function capturingLogger(): { logger: pino.Logger; lines: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines: () => text };
}

describe('configuration errors', () => {
  const threeBad = { SNAPWORKER_CONCURRENCY: 'lots', SNAPWORKER_ALLOWED_PATHS: 'relative/dir', SNAPWORKER_REPOSITORIES: '{"main":"ftp://x"}', NATS_URL: '' };

  for (const args of [['worker'], ['ls']]) {
    it(`${args[0]}: lists every bad value on a line of its own and exits 2`, async () => {
      const { code, stderr } = await runCli(args, threeBad);
      assert.equal(code, 2, stderr);
      const lines = stderr.trimEnd().split('\n');
      assert.match(lines[0]!, /invalid configuration \(3 problems\)/);
      assert.equal(lines.length, 4, stderr);
      assert.match(lines[1]!, /^ {2}SNAPWORKER_CONCURRENCY="lots": must be a number$/);
      assert.match(lines[2]!, /^ {2}SNAPWORKER_REPOSITORIES\.main: must be a file:\/\/ or s3:\/\/ URI$/);
      assert.match(lines[3]!, /^ {2}SNAPWORKER_ALLOWED_PATHS: "relative\/dir" is not an absolute path$/);
    });
  }
});

describe('names from input that are properties of Object', () => {
  let environment: TestEnvironment;
  let stop: () => Promise<void>;

  before(async () => {
    environment = await createTestEnvironment();
    await makeTree(path.join(environment.root, 'src'), { 'a.txt': 'a\n' });
    ({ stop } = (await startTestWorker(environment)).worker);
  });
  after(async () => {
    await stop?.();
    await environment?.cleanup();
  });

  for (const name of OBJECT_PROPERTY_NAMES) {
    it(`a job with repo "${name}" fails at once as an unknown repository`, async () => {
      const source = `dir://${path.join(environment.root, 'src')}`;
      for (const [kind, data] of [
        ['snapshot', { v: 1, source, repo: name }],
        ['prune', { v: 1, keepLast: 1, repo: name }],
      ] as const) {
        const job = await settled(environment, await environment.queue.add(kind, data, { attempts: 3, backoff: { type: 'fixed', delay: 100 } }));
        assert.equal(await job.getState(), 'failed', kind);
        assert.equal(job.attemptsMade, 1, `${kind}: not retried`);
        assert.equal(job.failedReason, `unknown repository ${JSON.stringify(name)} (configured: default)`);
      }
    });
  }

  it('--repo NAME is an unknown repository in the CLI, one line, exit 2', async () => {
    const source = `dir://${path.join(environment.root, 'src')}`;
    const commands = [...OBJECT_PROPERTY_NAMES.map((name) => ({ name, args: ['ls'] })), { name: 'constructor', args: ['snapshot', source, '--local'] }];
    const runs = commands.map(async ({ name, args }) => ({ name, args, ...(await runCli([...args, '--repo', name], environment.env)) }));
    for (const { name, args, code, stderr } of await Promise.all(runs)) {
      assert.equal(code, 2, `${args[0]} --repo ${name}: ${stderr}`);
      assert.equal(stderr, `snapworker: unknown repository ${JSON.stringify(name)} (configured: default)\n`);
    }
  });

  it('a job name, scheme or NATS profile named after a property of Object is refused as unknown, never retried', async () => {
    assert.throws(() => parseJobData('constructor' as never, { v: 1 }), /unknown job name "constructor"/);
    await assert.rejects(runJob({ kind: 'toString' } as never, undefined as never), /unknown job name "toString"/);
    const job = await settled(environment, await environment.queue.add('snapshot', { v: 1, source: 'constructor://x/y' }, { attempts: 3 }));
    assert.equal(job.attemptsMade, 1);
    assert.match(job.failedReason, /unsupported scheme "constructor:"/);
    for (const name of OBJECT_PROPERTY_NAMES) {
      const source = `nats://127.0.0.1:4222/S?profile=${encodeURIComponent(name)}`;
      const failed = await settled(environment, await environment.queue.add('snapshot', { v: 1, source }, { attempts: 3 }));
      assert.equal(failed.attemptsMade, 1, name);
      assert.match(failed.failedReason, new RegExp(`profile ${JSON.stringify(name)} is not configured on this worker$`));
    }
  });
});

describe('repositories given as URIs', () => {
  it('are named by their URI in messages, never "cli"', async () => {
    const environment = await createTestEnvironment();
    try {
      const repo = `file://${path.join(environment.root, 'other-repo')}`;
      for (const command of ['show', 'verify']) {
        const { code, stderr } = await runCli([command, '20261122T031500123Z-1a2b3c4d', '--repo', repo, ...(command === 'verify' ? ['--local'] : [])], environment.env);
        // Not found (1), or "repository does not exist" (10) once read-only commands check for one.
        assert.ok(code === 1 || code === 10, `${command}: exit ${code}: ${stderr}`);
        assert.match(stderr, new RegExp(`^snapworker: repository ${repo.replace(/[/.]/g, '\\$&')}: `));
        assert.doesNotMatch(stderr, /\bcli\b|_uri/);
      }
    } finally {
      await environment.cleanup();
    }
  });

  it('redactUrl hides user info and secret query parameters and keeps the rest', () => {
    assert.equal(redactUrl('nats://user:pa55@h:4222,nats://token@g:4222'), 'nats://***@h:4222,nats://***@g:4222');
    assert.equal(
      redactUrl('s3://b/p?endpoint=http://k:s@minio:9000&region=eu&X-Amz-Signature=abc&X-Amz-Credential=AK%2F1&token=t'),
      's3://b/p?endpoint=http://***@minio:9000&region=eu&X-Amz-Signature=***&X-Amz-Credential=***&token=***',
    );
    assert.equal(redactUrl('redis://:secret@redis:6379/0'), 'redis://***@redis:6379/0');
    assert.equal(redactUrl('file:///var/lib/repo'), 'file:///var/lib/repo');
  });
});

describe('S3 leftovers a crashed attempt left', () => {
  for (const fault of ['methodNotAllowed405', 'accessDenied403'] as const) {
    it(`an orphaned upload that cannot be aborted (${fault}) is warned about and counted, and the job completes`, async () => {
      const s3 = await startS3rver('snapshots');
      const proxy = await startFaultProxy({
        target: s3.endpoint,
        faultRate: 1,
        faults: [fault],
        eligible: (req) => req.method === 'DELETE' && /[?&]uploadId=/.test(req.url ?? ''),
      });
      const uri = `s3://${s3.bucket}/main?endpoint=${proxy.endpoint}&forcePathStyle=true&checksum=when_required&region=us-east-1`;
      const environment = await createTestEnvironment({ SNAPWORKER_REPOSITORIES: JSON.stringify({ default: uri }) });
      const admin = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
      const { logger, lines } = capturingLogger();
      const worker = await startWorker(loadConfig(environment.env), logger);
      try {
        const key = 'snapshots/20261122T031500123Z-1a2b3c4d/archive.tar.zst';
        const { UploadId } = await admin.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: `main/${key}` }));
        await makeTree(path.join(environment.root, 'src'), { 'a.txt': 'a\n' });
        const data = { v: 1, source: `dir://${path.join(environment.root, 'src')}`, [BOOKKEEPING_KEY]: { pendingUpload: { key, uploadId: UploadId } } };
        const job = await settled(environment, await environment.queue.add('snapshot', data, { attempts: 1 }));
        assert.equal(await job.getState(), 'completed', job.failedReason);
        assert.equal(proxy.counts[fault], 1, 'the abort was tried once and refused');
        assert.equal((job.data as Record<string, unknown>)[BOOKKEEPING_KEY], undefined, 'the bookkeeping is dropped');
        assert.match(lines(), /could not abort the upload a crashed attempt left open; going on/);
        const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
        assert.match(metrics, /^snapworker_cleanup_failures_total\{kind="multipart_upload"\} 1$/m);
        const open = await admin.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: 'main/' }));
        assert.deepEqual(open.Uploads?.map((u) => u.UploadId), [UploadId], 'left for the lifecycle rule');
      } finally {
        await worker.stop();
        admin.destroy();
        await environment.cleanup();
        await proxy.close();
        await s3.stop();
      }
    });
  }
});

describe('S3 uploads that fail and cannot be aborted', () => {
  it('keep the failure as it was, so a failure that is not retried stays not retried', async () => {
    const s3 = await startS3rver('snapshots');
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      faultRate: 1,
      faults: ['methodNotAllowed405'],
      eligible: (req) => req.method === 'DELETE' && /[?&]uploadId=/.test(req.url ?? ''),
    });
    const driver = openDriver(`s3://${s3.bucket}/main?endpoint=${proxy.endpoint}&forcePathStyle=true&checksum=when_required&region=us-east-1&partSize=5MiB`);
    try {
      const body = Readable.from(
        (async function* () {
          yield randomBytes(6 * 1024 * 1024);
          throw new InvalidInputError('source: entry changed its type while read');
        })(),
      );
      const err = await driver.put('snapshots/x/archive.tar.zst', body).then(
        () => assert.fail('the put succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof InvalidInputError, `still an InvalidInputError: ${String(err)}`);
      assert.equal(isRetryable(err), false);
      assert.match(err.message, /^source: entry changed its type while read; aborting upload \S+ also failed: .*MethodNotAllowed/);
      assert.equal(proxy.counts.methodNotAllowed405, 1);
    } finally {
      await driver.close?.();
      await proxy.close();
      await s3.stop();
    }
  });
});

describe('NATS servers', () => {
  it('NATS_URL with user and password: the worker logs in, events flow, the password is in no log line', async () => {
    const password = `pw-${randomBytes(6).toString('hex')}`;
    const nats = await startNatsServer(['--user', 'snap', '--pass', password]);
    const environment = await createTestEnvironment();
    const url = `nats://snap:${password}@127.0.0.1:${nats.port}`;
    const worker = spawnWorker(environment, { NATS_URL: url, LOG_LEVEL: 'debug' });
    const listener = await connect({ servers: nats.url, user: 'snap', pass: password });
    try {
      const events: string[] = [];
      const subscription = listener.subscribe('snapworker.jobs.>');
      void (async () => {
        for await (const message of subscription) events.push(message.subject);
      })();
      await listener.flush();
      await eventually('the worker connected to NATS', () => /events: connected to nats/.test(worker.logs()));
      await makeTree(path.join(environment.root, 'src'), { 'a.txt': 'a\n' });
      const job = await settled(environment, await environment.queue.add('snapshot', { v: 1, source: `dir://${path.join(environment.root, 'src')}` }));
      assert.equal(await job.getState(), 'completed', job.failedReason);
      await eventually('the completed event', () => events.some((subject) => subject.endsWith('.completed')), 10_000);
      assert.ok(events.some((subject) => subject.endsWith('.started')));
      assert.match(worker.logs(), new RegExp(`nats://\\*\\*\\*@127\\.0\\.0\\.1:${nats.port}`));
    } finally {
      await listener.close();
      worker.child.kill('SIGTERM');
      await worker.exited;
      await environment.cleanup();
      await nats.stop();
    }
    assert.ok(!worker.logs().includes(password), 'no log line carries the password');
  });

  describe('that jobs name', () => {
    let environment: TestEnvironment;
    let stop: () => Promise<void>;
    before(async () => {
      environment = await createTestEnvironment();
      ({ stop } = (await startTestWorker(environment)).worker);
    });
    after(async () => {
      await stop?.();
      await environment?.cleanup();
    });

    for (const [kind, data] of [
      ['snapshot', { v: 1, source: 'nats://169.254.169.254:80/S' }],
      ['restore', { v: 1, snapshot: '20261122T031500123Z-1a2b3c4d', target: 'nats://10.0.0.1/S', replace: true }],
    ] as const) {
      it(`a ${kind} naming a server outside SNAPWORKER_NATS_ALLOWED_SERVERS is refused at once, without connecting`, async () => {
        const started = Date.now();
        const job = await settled(environment, await environment.queue.add(kind, data, { attempts: 3, backoff: { type: 'fixed', delay: 100 } }));
        assert.equal(job.attemptsMade, 1, 'not retried');
        assert.match(job.failedReason, /^nats: (source|target) server [\d.]+:\d+ is not one of the allowed servers \(127\.0\.0\.1:4222, localhost:4222\); see SNAPWORKER_NATS_ALLOWED_SERVERS$/);
        assert.ok(Date.now() - started < 5000, 'no connection attempt and no retries');
      });
    }
  });
});

describe('restore targets and allowed roots', () => {
  let environment: TestEnvironment;
  let stop: () => Promise<void>;
  let allowed: string;
  let snapshotId: string;

  before(async () => {
    environment = await createTestEnvironment();
    allowed = path.join(environment.root, 'allowed');
    await makeTree(allowed, { 'keep.txt': 'keep me\n', src: { type: 'dir', children: { 'a.txt': 'a\n' } } });
    await symlink(allowed, path.join(allowed, 'self'));
    await mkdir(path.join(environment.root, 'elsewhere'));
    await writeFile(path.join(environment.root, 'elsewhere', 'secret.txt'), 'no\n');
    environment.env.SNAPWORKER_ALLOWED_PATHS = allowed;
    ({ stop } = (await startTestWorker(environment)).worker);
    const job = await settled(environment, await environment.queue.add('snapshot', { v: 1, source: `dir://${path.join(allowed, 'src')}` }));
    assert.equal(await job.getState(), 'completed', job.failedReason);
    snapshotId = (job.returnvalue as { id: string }).id;
  });
  after(async () => {
    await stop?.();
    await environment?.cleanup();
  });

  for (const [what, target] of [
    ['the allowed root', () => `dir://${allowed}`],
    ['a symlink to the allowed root', () => `dir://${path.join(allowed, 'self')}`],
    ['a SQLite database path that is the allowed root', () => `sqlite://${allowed}`],
  ] as const) {
    it(`--replace onto ${what} is refused; nothing in or beside the root changes`, async () => {
      const before = { inside: (await readdir(allowed)).sort(), beside: (await readdir(environment.root)).sort() };
      const job = await settled(environment, await environment.queue.add('restore', { v: 1, snapshot: snapshotId, target: target(), replace: true }, { attempts: 3 }));
      assert.equal(job.attemptsMade, 1);
      assert.match(job.failedReason, /^target path .* is an allowed root itself; restore into a directory inside it/);
      assert.deepEqual((await readdir(allowed)).sort(), before.inside);
      assert.deepEqual((await readdir(environment.root)).sort(), before.beside, 'no staging or old folder beside the root');
    });
  }

  it('a restore strictly inside the root works, and its staging stays inside the root', async () => {
    const job = await settled(environment, await environment.queue.add('restore', { v: 1, snapshot: snapshotId, target: `dir://${path.join(allowed, 'restored')}` }));
    assert.equal(await job.getState(), 'completed', job.failedReason);
    assert.deepEqual((await readdir(path.join(allowed, 'restored'))).sort(), ['a.txt']);
    assert.ok(!(await readdir(environment.root)).some((name) => name.includes('snapworker-')));
  });

  it('says whether the source or the target is outside the allowed paths', async () => {
    const outside = path.join(environment.root, 'elsewhere');
    const snapshot = await settled(environment, await environment.queue.add('snapshot', { v: 1, source: `dir://${outside}` }));
    assert.match(snapshot.failedReason, new RegExp(`^source path ${outside} is outside the allowed paths`));
    const restore = await settled(environment, await environment.queue.add('restore', { v: 1, snapshot: snapshotId, target: `dir://${outside}/new` }));
    assert.match(restore.failedReason, new RegExp(`^target path ${outside}/new is outside the allowed paths`));
  });
});
