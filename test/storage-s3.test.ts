import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';

import { Repository } from '../shared/catalog/repository.js';
import { AbortedError, InvalidInputError } from '../shared/errors.js';
import { newSnapshotId } from '../shared/ids.js';
import { openDriver, parseByteSize } from '../shared/storage/open-driver.js';
import {
  capacityForUnknownSize,
  MAX_OBJECT_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  partSizeForKnownSize,
  partSizeForPart,
} from '../shared/storage/s3/part-size.js';
import { readParts } from '../shared/storage/s3/part-reader.js';
import { S3Driver } from '../shared/storage/s3/s3-driver.js';
import type { S3DriverOptions } from '../shared/storage/s3/s3-driver-options.js';
import type { StorageObserver } from '../shared/storage/storage-driver.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { chunkedBody, readAll, runStorageDriverSuite, sha256 } from './helpers/storage-suite.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

let s3: S3rverHandle;
let admin: S3Client;

before(async () => {
  s3 = await startS3rver();
  admin = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, maxAttempts: 1 });
});

after(async () => {
  admin?.destroy();
  await s3?.stop();
});

/** A driver on s3rver (directly or through `endpoint`) under a fresh prefix, tuned for quick tests. */
function driverOn(overrides: Partial<S3DriverOptions> = {}): S3Driver {
  return new S3Driver({
    bucket: s3.bucket,
    prefix: `t-${randomUUID()}`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    checksumMode: 'WHEN_REQUIRED',
    partSize: 5 * MiB,
    queueSize: 3,
    maxAttempts: 4,
    retryBaseDelayMs: 5,
    retryMaxDelayMs: 50,
    ...overrides,
  });
}

/** Multipart uploads still open under `prefix`, as any S3 client would see them. */
async function openUploads(prefix: string): Promise<string[]> {
  const answer = await admin.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }));
  return (answer.Uploads ?? []).map((upload) => `${upload.Key} ${upload.UploadId}`);
}

async function listedKeys(driver: S3Driver): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of driver.list('')) keys.push(info.key);
  return keys;
}

async function removeAll(driver: S3Driver): Promise<void> {
  for await (const info of driver.list('')) await driver.delete(info.key);
}

function countingObserver() {
  const counts = { retries: 0, errors: 0, uploaded: 0, downloaded: 0 };
  const observer: StorageObserver = {
    request: (_operation, outcome) => void (outcome === 'error' && counts.errors++),
    retry: () => void counts.retries++,
    uploaded: (bytes) => void (counts.uploaded += bytes),
    downloaded: (bytes) => void (counts.downloaded += bytes),
  };
  return { counts, observer };
}

runStorageDriverSuite(
  's3 on s3rver',
  async () => {
    const driver = driverOn();
    return {
      driver,
      cleanup: () => removeAll(driver),
      leftovers: () => openUploads(driver.options.prefix),
    };
  },
  // s3rver truncates and rewrites an object's file in place, so a reader mid-way may see it change.
  { overwriteMayFailReaders: true },
);

describe('s3 part sizes', () => {
  test('a known size keeps the configured part size until 10,000 parts would not hold it', () => {
    assert.equal(partSizeForKnownSize(100 * MiB, 16 * MiB), 16 * MiB);
    assert.equal(partSizeForKnownSize(MAX_PARTS * 16 * MiB, 16 * MiB), 16 * MiB);
    const tib = 1024 * 1024 * MiB;
    const grown = partSizeForKnownSize(tib, 16 * MiB);
    assert.ok(grown > 16 * MiB && grown % MiB === 0);
    assert.ok(Math.ceil(tib / grown) <= MAX_PARTS);
    const largest = partSizeForKnownSize(MAX_OBJECT_SIZE, 5 * MiB);
    assert.ok(largest <= MAX_PART_SIZE && Math.ceil(MAX_OBJECT_SIZE / largest) <= MAX_PARTS);
  });

  test('an unknown size starts at the configured part size and grows so that 5 TiB still fits', () => {
    assert.equal(partSizeForPart(1, 5 * MiB), 5 * MiB);
    assert.equal(partSizeForPart(800, 5 * MiB), 5 * MiB);
    assert.equal(partSizeForPart(801, 5 * MiB), 10 * MiB);
    assert.ok(partSizeForPart(MAX_PARTS, 5 * MiB) <= MAX_PART_SIZE);
    for (const base of [5 * MiB, 16 * MiB, 64 * MiB]) {
      assert.ok(capacityForUnknownSize(base) >= MAX_OBJECT_SIZE, `capacity with ${base / MiB} MiB parts`);
    }
  });

  test('readParts cuts a body into parts of the planned, growing sizes and hashes them', async () => {
    const bytes = randomBytes(1000);
    const { createHash } = await import('node:crypto');
    const wholeHash = createHash('sha256');
    const parts = [];
    for await (const part of readParts(chunkedBody(bytes, 7), { partSizeOf: (n) => n * 10, wholeHash, label: 'test' })) parts.push(part);
    assert.deepEqual(parts.slice(0, 4).map((part) => part.data.length), [10, 20, 30, 40]);
    assert.ok(Buffer.concat(parts.map((part) => part.data)).equals(bytes));
    for (const part of parts) assert.equal(part.sha256, sha256(part.data));
    assert.equal(wholeHash.digest('hex'), sha256(bytes));
  });
});

describe('s3 driver on s3rver', () => {
  test('a multipart upload records every part with its size and SHA-256 and reports its upload id', async () => {
    const driver = driverOn();
    try {
      const bytes = randomBytes(12 * MiB + 777);
      const uploadIds: string[] = [];
      const result = await driver.put('snapshots/a/archive.tar.zst', chunkedBody(bytes), {
        size: bytes.length,
        onUploadStarted: (id) => void uploadIds.push(id),
      });
      assert.equal(uploadIds.length, 1);
      assert.deepEqual(result.parts?.map((part) => [part.partNumber, part.size]), [
        [1, 5 * MiB],
        [2, 5 * MiB],
        [3, 2 * MiB + 777],
      ]);
      let offset = 0;
      for (const part of result.parts!) {
        assert.equal(part.sha256, sha256(bytes.subarray(offset, offset + part.size)), `part ${part.partNumber}`);
        offset += part.size;
      }
      assert.equal(result.sha256, sha256(bytes));
      assert.ok((await readAll(await driver.get('snapshots/a/archive.tar.zst'))).equals(bytes));
      assert.deepEqual(await openUploads(driver.options.prefix), []);
    } finally {
      await removeAll(driver);
      await driver.close();
    }
  });

  test('with S3 additional checksums on (WHEN_SUPPORTED) objects still read back byte for byte', async () => {
    // The driver sends parts as buffers with a precomputed x-amz-checksum-sha256 header, never an
    // aws-chunked stream, so even s3rver stores the right bytes in this mode.
    const driver = driverOn({ checksumMode: 'WHEN_SUPPORTED' });
    try {
      for (const size of [1000, 11 * MiB + 3]) {
        const bytes = randomBytes(size);
        await driver.put(`c/${size}`, chunkedBody(bytes));
        assert.ok((await readAll(await driver.get(`c/${size}`))).equals(bytes), `${size} bytes`);
      }
    } finally {
      await removeAll(driver);
      await driver.close();
    }
  });

  test('abortUpload removes an orphan multipart upload left by a crashed attempt, and repeating it is harmless', async () => {
    const driver = driverOn();
    const key = `${driver.options.prefix}/orphan.bin`;
    const created = await admin.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
    await admin.send(
      new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: created.UploadId, PartNumber: 1, Body: randomBytes(1000) }),
    );
    assert.equal((await openUploads(driver.options.prefix)).length, 1);
    await driver.abortUpload('orphan.bin', created.UploadId!);
    assert.deepEqual(await openUploads(driver.options.prefix), []);
    await driver.abortUpload('orphan.bin', created.UploadId!);
    await driver.close();
  });

  test('a put aborted after its upload started aborts the multipart upload', async () => {
    const driver = driverOn();
    try {
      const controller = new AbortController();
      const body = Readable.from(
        (async function* () {
          for (;;) {
            yield randomBytes(MiB);
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })(),
        { objectMode: false },
      );
      const put = driver.put('cancelled.bin', body, {
        signal: controller.signal,
        onUploadStarted: () => void setTimeout(() => controller.abort(), 100),
      });
      await assert.rejects(put, AbortedError);
      assert.deepEqual(await openUploads(driver.options.prefix), []);
      assert.deepEqual(await listedKeys(driver), []);
    } finally {
      await driver.close();
    }
  });

  test('a failing onUploadStarted fails the put and aborts the upload', async () => {
    const driver = driverOn();
    try {
      const put = driver.put('hook.bin', chunkedBody(randomBytes(11 * MiB)), {
        onUploadStarted: () => {
          throw new Error('could not record the upload id');
        },
      });
      await assert.rejects(put, /could not record the upload id/);
      assert.deepEqual(await openUploads(driver.options.prefix), []);
    } finally {
      await driver.close();
    }
  });

  test('an object replaced during a multi-range download fails the stream instead of mixing bytes', async () => {
    const driver = driverOn({ queueSize: 1 });
    try {
      const oldBytes = randomBytes(16 * MiB);
      await driver.put('moving.bin', chunkedBody(oldBytes));
      const reader = await driver.get('moving.bin');
      const first = await new Promise<Buffer>((resolve) => reader.once('data', resolve));
      reader.pause();
      await driver.put('moving.bin', chunkedBody(randomBytes(16 * MiB)));
      let result: Buffer | Error;
      try {
        result = Buffer.concat([first, await readAll(reader)]);
      } catch (err) {
        result = err as Error;
      }
      if (result instanceof Error) assert.match(result.message, /moving\.bin/);
      else assert.ok(result.equals(oldBytes), 'if it succeeds, it is the old object whole');
    } finally {
      await removeAll(driver);
      await driver.close();
    }
  });

  test('a presigned URL downloads the object without credentials', async () => {
    const driver = driverOn();
    try {
      const bytes = randomBytes(200_000);
      await driver.put('shared/link.bin', chunkedBody(bytes));
      const url = await driver.presign('shared/link.bin', 3600);
      const response = await fetch(url);
      assert.equal(response.status, 200);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(bytes));
      await assert.rejects(driver.presign('shared/link.bin', 0), InvalidInputError);
    } finally {
      await removeAll(driver);
      await driver.close();
    }
  });

  test('an independent client (s3cmd) downloads the same bytes the driver uploaded', async (t) => {
    const found = await run('which', ['s3cmd']).then(() => true, () => false);
    if (!found) {
      t.skip('s3cmd is not installed (Debian package s3cmd); CI installs it');
      return;
    }
    const driver = driverOn();
    const dir = await mkdtemp(join(tmpdir(), 'snapworker-s3cmd-'));
    try {
      const bytes = randomBytes(11 * MiB + 99);
      await driver.put('independent.bin', chunkedBody(bytes));
      const host = new URL(s3.endpoint).host;
      const config = join(dir, 's3cfg');
      await writeFile(
        config,
        ['[default]', 'access_key = S3RVER', 'secret_key = S3RVER', `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'signature_v2 = False', ''].join('\n'),
      );
      const target = join(dir, 'download.bin');
      await run('s3cmd', ['-c', config, '--no-progress', 'get', `s3://${s3.bucket}/${driver.options.prefix}/independent.bin`, target]);
      assert.ok((await readFile(target)).equals(bytes));
    } finally {
      await rm(dir, { recursive: true, force: true });
      await removeAll(driver);
      await driver.close();
    }
  });
});

describe('s3 driver through a faulty network', () => {
  test('with 20% of requests failing (500, 503 SlowDown, resets, cut answers) a multipart upload and a ranged download still round-trip', async () => {
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      faultRate: 0.2,
      faults: ['error500', 'slowdown503', 'reset', 'truncate'],
      seed: 42,
    });
    const { counts, observer } = countingObserver();
    const driver = driverOn({ endpoint: proxy.endpoint, maxAttempts: 10, observer });
    try {
      const bytes = randomBytes(31 * MiB + 5);
      const result = await driver.put('flaky/archive.bin', chunkedBody(bytes), { size: bytes.length });
      assert.equal(result.sha256, sha256(bytes));
      assert.equal(result.parts?.length, 7);
      const back = await readAll(await driver.get('flaky/archive.bin'));
      assert.ok(back.equals(bytes), 'bytes read back through the faults are the bytes written');
      const ranged = await readAll(await driver.get('flaky/archive.bin', { range: { start: 3 * MiB, end: 19 * MiB } }));
      assert.ok(ranged.equals(bytes.subarray(3 * MiB, 19 * MiB + 1)));
      assert.deepEqual(await openUploads(driver.options.prefix), []);
      const injected = proxy.counts.error500 + proxy.counts.slowdown503 + proxy.counts.reset + proxy.counts.truncate;
      assert.ok(injected > 0, `faults were injected: ${JSON.stringify(proxy.counts)}`);
      assert.ok(counts.retries > 0, 'the driver retried');
    } finally {
      await removeAll(driver);
      await driver.close();
      await proxy.close();
    }
  });

  test('a download whose ranges stall is retried after the stall timeout and completes', async () => {
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      faultRate: 0.3,
      faults: ['stall'],
      eligible: (req) => req.method === 'GET' && !req.url?.includes('uploads'),
      seed: 7,
    });
    const driver = driverOn({ endpoint: proxy.endpoint, stallTimeoutMs: 400, maxAttempts: 10 });
    try {
      const bytes = randomBytes(16 * MiB);
      await driver.put('stall.bin', chunkedBody(bytes));
      assert.ok((await readAll(await driver.get('stall.bin'))).equals(bytes));
      assert.ok(proxy.counts.stall > 0, `stalls were injected: ${JSON.stringify(proxy.counts)}`);
    } finally {
      proxy.setFaultRate(0);
      await removeAll(driver);
      await driver.close();
      await proxy.close();
    }
  });

  test('when part uploads fail every time the put fails with a clear error after its retries and leaves no upload open', async () => {
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      faultRate: 1,
      faults: ['error500', 'slowdown503', 'reset'],
      eligible: (req) => req.method === 'PUT' && (req.url ?? '').includes('uploadId='),
    });
    const driver = driverOn({ endpoint: proxy.endpoint, maxAttempts: 3 });
    try {
      const started = Date.now();
      await assert.rejects(driver.put('doomed.bin', chunkedBody(randomBytes(12 * MiB))), (err: Error) => {
        assert.match(err.message, /^s3: upload_part doomed\.bin part \d+: .*\(after 3 attempts\)/);
        return true;
      });
      assert.ok(Date.now() - started < 30_000);
      assert.deepEqual(await openUploads(driver.options.prefix), []);
      assert.deepEqual(await listedKeys(driver), []);
    } finally {
      await driver.close();
      await proxy.close();
    }
  });
});

describe('s3 repository URIs', () => {
  test('openDriver reads bucket, prefix and every parameter from an s3:// URI', () => {
    const driver = openDriver(
      's3://snaps/team/a?endpoint=http://127.0.0.1:9000&region=eu-west-1&forcePathStyle=true&checksum=when_required&partSize=32MiB&queueSize=8&maxAttempts=5',
    ) as S3Driver;
    assert.equal(driver.kind, 's3');
    assert.equal(driver.options.bucket, 'snaps');
    assert.equal(driver.options.prefix, 'team/a');
    assert.equal(driver.options.endpoint, 'http://127.0.0.1:9000');
    assert.equal(driver.options.region, 'eu-west-1');
    assert.equal(driver.options.forcePathStyle, true);
    assert.equal(driver.options.checksumMode, 'WHEN_REQUIRED');
    assert.equal(driver.options.partSize, 32 * MiB);
    assert.equal(driver.options.queueSize, 8);
    assert.equal(driver.options.maxAttempts, 5);
    assert.equal(parseByteSize('5242880'), 5 * MiB);
    assert.equal(parseByteSize('16 mb'), undefined);
  });

  test('openDriver refuses credentials, unknown parameters and bad values, naming the bad part', () => {
    assert.throws(() => openDriver('s3://AKIA:secret@bucket/p'), (err: Error) => {
      assert.ok(err instanceof InvalidInputError);
      assert.match(err.message, /credentials/);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
    assert.throws(() => openDriver('s3://bucket/p?accessKeyId=x'), /parameter accessKeyId: unknown/);
    assert.throws(() => openDriver('s3://bucket/p?partSize=lots'), /parameter partSize/);
    assert.throws(() => openDriver('s3://bucket/p?partSize=1MiB'), /partSize: must be an integer from 5242880/);
    assert.throws(() => openDriver('s3://bucket/p?checksum=sometimes'), /parameter checksum/);
    assert.throws(() => openDriver('s3://bucket/p?forcePathStyle=yes'), /parameter forcePathStyle/);
    assert.throws(() => openDriver('s3://bucket/p?queueSize=0'), /queueSize/);
    assert.throws(() => openDriver('s3://Bad_Bucket/p'), /bucket/);
    assert.throws(() => openDriver('s3:///p'), /bucket/);
    assert.throws(() => openDriver('s3://bucket/a/../b'), InvalidInputError);
  });
});

describe('s3 repository upload tokens', () => {
  test('a token handed out mid-upload lets another repository object (a later attempt) discard the stranded upload', async () => {
    const driver = driverOn();
    const { prefix } = driver.options;
    const repository = new Repository('tokens', driver);
    const id = newSnapshotId();
    const tokens: string[] = [];
    // A body that sends two parts' worth and then hangs, as a worker does when it is killed mid-upload.
    const body = new Readable({ read() {} });
    body.push(randomBytes(11 * MiB));
    const controller = new AbortController();
    const put = repository.putSnapshotObject(id, 'archive.tar.zst', body, { signal: controller.signal, onUploadToken: (token) => void tokens.push(token) });
    put.catch(() => {});
    try {
      for (let i = 0; i < 600 && tokens.length === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(tokens.length, 1, 'one token for the multipart upload');
      const token = tokens[0]!;
      assert.doesNotMatch(token, /snapshots|archive/, 'the token is opaque: no storage key in plain sight');
      const open = await openUploads('');
      assert.equal(open.filter((entry) => entry.includes(`snapshots/${id}/archive.tar.zst`)).length, 1, 'the upload is open');

      // A fresh repository object on the same storage, as the next attempt's worker would have.
      const later = new Repository('tokens', driverOn({ prefix }));
      await later.discardUpload(token);
      assert.deepEqual((await openUploads('')).filter((entry) => entry.includes(`snapshots/${id}/`)), [], 'the stranded upload is gone');
      await assert.rejects(later.discardUpload('not-a-token'), InvalidInputError);
      await later.close();
    } finally {
      controller.abort();
      await put.catch(() => {});
      await removeAll(driver);
      await repository.close();
    }
  });
});
