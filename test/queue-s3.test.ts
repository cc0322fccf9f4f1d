/**
 * S3 repositories end to end: real workers (in-process and child processes running the CLI) take
 * jobs enqueued with plain BullMQ and store snapshots in s3rver, directly or through a proxy that
 * injects the failures of a flaky network and a busy S3.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import type { Job } from 'bullmq';
import { assertTreesEqual, makeTree, sha256File, writeRandomFile, type TreeSpec } from './helpers/tree.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { snapworkerArgs } from './helpers/compiled-cli.js';
import {
  createTestEnvironment,
  eventually,
  PROJECT_ROOT,
  sh,
  spawnWorker,
  startTestWorker,
  type TestEnvironment,
  type WorkerProcess,
} from './helpers/worker-fixture.js';
import { Repository } from '../shared/catalog/repository.js';
import { decodeUploadToken } from '../shared/catalog/upload-token.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { BOOKKEEPING_KEY } from '../worker/queue-worker.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);
/** s3rver's fixed account; the workers get it the way a deployment would, from the environment. */
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/** A repository URI as an operator would configure it for s3rver (or a proxy in front of it). */
function s3RepositoryUri(endpoint: string, bucket: string, prefix: string, extra = ''): string {
  return `s3://${bucket}/${prefix}?endpoint=${endpoint}&forcePathStyle=true&checksum=when_required&partSize=5MiB&region=us-east-1${extra}`;
}

/** The worker environment for one S3 repository called `default`. */
function s3Env(uri: string): NodeJS.ProcessEnv {
  return { ...CREDENTIALS, SNAPWORKER_REPOSITORIES: JSON.stringify({ default: uri }), SNAPWORKER_STALLED_INTERVAL_MS: '1000', SNAPWORKER_LOCK_DURATION_MS: '3000' };
}

/** `count` small files spread over a few directories, some compressible, some not. */
function smallFiles(count: number): TreeSpec {
  const spec: TreeSpec = {};
  for (let d = 0; d < 10; d++) {
    const children: TreeSpec = {};
    for (let f = d; f < count; f += 10) children[`file-${f}.txt`] = f % 3 === 0 ? randomBytes(50 + f * 7) : `line ${f}\n`.repeat(f + 1);
    spec[`dir-${d}`] = { type: 'dir', children };
  }
  return spec;
}

/** Hex SHA-256 of a byte range of a file, streamed. */
async function sha256OfRange(filePath: string, start: number, size: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(filePath);
  try {
    for await (const chunk of handle.createReadStream({ start, end: start + size - 1, highWaterMark: MiB })) hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Waits for a job to end, returning the job as stored (completed or failed). */
async function settled(environment: TestEnvironment, job: Job, timeoutMs = 60_000): Promise<Job> {
  try {
    await job.waitUntilFinished(environment.events, timeoutMs);
  } catch {
    // failed: the stored job says why
  }
  return (await environment.queue.getJob(job.id!))!;
}

/** Requests the proxy answered with a fault so far. */
function injected(proxy: FaultProxy): number {
  return proxy.counts.error500 + proxy.counts.slowdown503 + proxy.counts.reset;
}

async function stopProcess(worker: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill(signal);
  await worker.exited;
}

describe('S3 repositories through the queue', () => {
  let s3: S3rverHandle;
  let admin: S3Client;
  let environment: TestEnvironment;
  let uri: string;
  let repository: Repository;
  /** 300 MB in two files and a few hundred small ones; shared by the tests that need size. */
  let bigTree: string;

  /** Multipart uploads still open under `prefix`, as any S3 client sees them: `key uploadId`. */
  const openUploads = async (prefix: string): Promise<string[]> => {
    const answer = await admin.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }));
    return (answer.Uploads ?? []).map((upload) => `${upload.Key} ${upload.UploadId}`);
  };

  before(async () => {
    s3 = await startS3rver('snapshots');
    admin = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    uri = s3RepositoryUri(s3.endpoint, s3.bucket, 'main');
    environment = await createTestEnvironment(s3Env(uri));
    repository = new Repository('default', openDriver(uri));
    bigTree = path.join(environment.root, 'big-tree');
    await makeTree(bigTree, { 'README.md': '# data\n', small: { type: 'dir', children: smallFiles(300) } });
    await writeRandomFile(path.join(bigTree, 'blob-a.bin'), 200 * MiB + 12_345);
    await writeRandomFile(path.join(bigTree, 'blob-b.bin'), 100 * MiB);
  });
  after(async () => {
    await repository?.close();
    admin?.destroy();
    await environment?.cleanup();
    await s3?.stop();
  });

  it('round-trips 300 MB and 300 small files byte-identical, in an archive s3cmd, zstd, tar and sha256sum accept', async () => {
    const { worker } = await startTestWorker(environment);
    const out = path.join(environment.root, 'stock-tools');
    const restored = path.join(environment.root, 'restored');
    const archive = path.join(environment.root, 'archive.tar.zst');
    try {
      const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${bigTree}`, name: 'big', labels: { app: 'shop' } }, { attempts: 3 });
      const record = (await job.waitUntilFinished(environment.events, 120_000)) as SnapshotRecord;
      assert.equal(record.stats.files, 303);
      assert.ok(record.archive!.size > 300 * MiB, `archive of ${record.archive!.size} bytes`);
      const parts = record.archive!.parts ?? [];
      assert.ok(parts.length >= 60, `${parts.length} parts of 5 MiB`);
      assert.deepEqual(parts.map((p) => p.partNumber), parts.map((_, i) => i + 1));
      assert.equal(parts.reduce((sum, p) => sum + p.size, 0), record.archive!.size);

      const restore = await environment.queue.add('restore', { v: 1, snapshot: 'latest', labels: { app: 'shop' }, target: `dir://${restored}` });
      assert.equal(((await restore.waitUntilFinished(environment.events, 120_000)) as { snapshotId: string }).snapshotId, record.id);
      await assertTreesEqual(bigTree, restored);

      // An independent S3 client downloads the archive; stock tools check and unpack it.
      await mkdir(out);
      const host = new URL(s3.endpoint).host;
      const config = path.join(environment.root, 's3cfg');
      await writeFile(
        config,
        ['[default]', `access_key = ${CREDENTIALS.AWS_ACCESS_KEY_ID}`, `secret_key = ${CREDENTIALS.AWS_SECRET_ACCESS_KEY}`, `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'signature_v2 = False', ''].join('\n'),
      );
      await run('s3cmd', ['-c', config, '--no-progress', 'get', `s3://${s3.bucket}/main/${record.archive!.key}`, archive]);
      assert.equal(await sha256File(archive), record.archive!.sha256);
      let offset = 0;
      for (const part of parts) {
        assert.equal(await sha256OfRange(archive, offset, part.size), part.sha256, `part ${part.partNumber}`);
        offset += part.size;
      }
      const stock = await sh(`zstd -d < '${archive}' | tar -x && sha256sum -c --quiet SHA256SUMS && echo sums-ok`, out);
      assert.equal(stock.code, 0, stock.output);
      assert.match(stock.output, /sums-ok/);
      assert.equal(await sha256File(path.join(out, 'data', 'blob-a.bin')), await sha256File(path.join(bigTree, 'blob-a.bin')));
      assert.deepEqual(await openUploads('main/'), []);
    } finally {
      await worker.stop();
      // 600 MB of copies the later tests do not need.
      await Promise.all([out, restored, archive].map((p) => rm(p, { recursive: true, force: true })));
    }
  });

  it('snapshots and restores through a network where 20% of requests fail, leaving no upload open', async () => {
    const proxy = await startFaultProxy({ target: s3.endpoint, faultRate: 0.2, seed: 3 });
    const flaky = await createTestEnvironment(s3Env(s3RepositoryUri(proxy.endpoint, s3.bucket, 'flaky', '&maxAttempts=10')));
    const { worker } = await startTestWorker(flaky);
    try {
      const source = path.join(flaky.root, 'source');
      await makeTree(source, { notes: { type: 'dir', children: smallFiles(40) } });
      await writeRandomFile(path.join(source, 'data.bin'), 32 * MiB + 7);
      const snapshot = await flaky.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'flaky' });
      const record = (await snapshot.waitUntilFinished(flaky.events, 60_000)) as SnapshotRecord;
      assert.ok((record.archive!.parts?.length ?? 0) >= 7);
      const injectedSoFar = injected(proxy);

      const target = path.join(flaky.root, 'restored');
      const restore = await flaky.queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}` });
      await restore.waitUntilFinished(flaky.events, 60_000);
      await assertTreesEqual(source, target);

      for (const job of [snapshot, restore]) assert.equal((await flaky.queue.getJob(job.id!))!.attemptsMade, 1, `${job.name} needed no job retry`);
      assert.ok(injectedSoFar >= 1, `faults hit the snapshot: ${injectedSoFar}`);
      assert.ok(injected(proxy) - injectedSoFar >= 1, `faults hit the restore: ${JSON.stringify(proxy.counts)}`);
      assert.deepEqual(await openUploads('flaky/'), []);
    } finally {
      await worker.stop();
      await flaky.cleanup();
      await proxy.close();
    }
  });

  it('fails a snapshot whose part uploads never get through with a clear error after its retries, leaving nothing open or listed', async () => {
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      faultRate: 1,
      eligible: (req) => req.method === 'PUT' && (req.url ?? '').includes('uploadId='),
    });
    const doomedUri = s3RepositoryUri(proxy.endpoint, s3.bucket, 'doomed', '&maxAttempts=3');
    const doomed = await createTestEnvironment(s3Env(doomedUri));
    const { worker } = await startTestWorker(doomed);
    const doomedRepository = new Repository('default', openDriver(doomedUri));
    try {
      const source = path.join(doomed.root, 'source');
      await makeTree(source, {});
      await writeRandomFile(path.join(source, 'data.bin'), 12 * MiB);
      const job = await doomed.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'doomed' }, { attempts: 2, backoff: { type: 'fixed', delay: 100 } });
      const failed = await settled(doomed, job);
      assert.equal(await failed.getState(), 'failed');
      assert.equal(failed.attemptsMade, 2, 'the job was retried, then given up');
      assert.match(failed.failedReason, /^s3: upload_part snapshots\/\S+\/archive\.tar\.zst part \d+: .*\(after 3 attempts\)/);
      assert.ok(proxy.counts.forwarded > 0 && injected(proxy) > 0, `faults were injected: ${JSON.stringify(proxy.counts)}`);
      assert.deepEqual(await openUploads('doomed/'), []);
      assert.deepEqual(await doomedRepository.list(), []);
    } finally {
      await doomedRepository.close();
      await worker.stop();
      await doomed.cleanup();
      await proxy.close();
    }
  });

  it('aborts the upload a SIGKILLed worker left open before the retry completes the snapshot, listed once', async () => {
    const doomed = spawnWorker(environment);
    let rescuer: WorkerProcess | undefined;
    try {
      const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${bigTree}`, name: 'killed' }, { attempts: 1 });
      const orphan = await eventually(
        'the job to upload with its upload id recorded',
        async () => {
          const current = await environment.queue.getJob(job.id!);
          const progress = current?.progress as { bytesDone?: number } | undefined;
          const pending = (current?.data as Record<string, { pendingUpload?: { token: string } }> | undefined)?.[BOOKKEEPING_KEY]?.pendingUpload;
          // The token is opaque to the worker; the test looks inside to find the upload in S3.
          return (progress?.bytesDone ?? 0) > 0 && pending ? decodeUploadToken(pending.token) : undefined;
        },
        60_000,
      );
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      const orphanEntry = `main/${orphan.key} ${orphan.uploadId}`;
      assert.ok((await openUploads('main/')).includes(orphanEntry), 'the killed worker left its upload open');
      assert.deepEqual(await repository.list({ source: 'killed' }), [], 'nothing listed while the snapshot is unfinished');

      rescuer = spawnWorker(environment);
      const record = (await job.waitUntilFinished(environment.events, 120_000)) as SnapshotRecord;
      assert.match(rescuer.logs(), /aborted the upload a crashed attempt left open/);
      assert.equal(orphan.key, record.archive!.key, 'the retry wrote the same snapshot');
      assert.ok(!(await openUploads('main/')).includes(orphanEntry), 'the orphan upload is gone');
      assert.deepEqual(await openUploads('main/'), []);
      assert.deepEqual((await repository.list({ source: 'killed' })).map((r) => r.id), [record.id], 'the snapshot is listed once');
    } finally {
      await stopProcess(doomed, 'SIGKILL');
      if (rescuer) await stopProcess(rescuer);
    }
  });

  it('prints a presigned link with `snapworker link` that downloads the archive without credentials', async () => {
    const { worker } = await startTestWorker(environment);
    try {
      const source = path.join(environment.root, 'linked');
      await makeTree(source, { 'page.html': '<h1>hi</h1>' });
      await writeRandomFile(path.join(source, 'data.bin'), 12 * MiB);
      const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'linked' });
      const record = (await job.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;

      const { stdout } = await run(process.execPath, snapworkerArgs('link', record.id, '--repo', 'default', '--expires', '10m'), {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...environment.env },
      });
      const url = new URL(stdout.trim());
      assert.equal(url.origin, s3.endpoint);
      assert.ok(url.searchParams.has('X-Amz-Signature'));
      assert.equal(url.searchParams.get('X-Amz-Expires'), '600');

      const response = await fetch(url);
      assert.equal(response.status, 200);
      const hash = createHash('sha256');
      for await (const chunk of response.body!) hash.update(chunk);
      assert.equal(hash.digest('hex'), record.archive!.sha256);
    } finally {
      await worker.stop();
    }
  });
});
