import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import { IntegrityError, NotFoundError } from '../shared/errors.js';
import { openBlobStore, type BlobStore, type SaveResult } from '../shared/formats/chunked/store/blob-store.js';
import { newChunkedStoreConfig, plainCipherOf, readChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';

let root: string;
let s3: S3rverHandle;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'snapworker-chunked-store-'));
  s3 = await startS3rver();
});
after(async () => {
  await s3?.stop();
  await rm(root, { recursive: true, force: true });
});

/** The backends every test runs against: the filesystem and s3rver, each on a fresh root. */
const BACKENDS: Record<string, () => string> = {
  fs: () => `file://${path.join(root, randomUUID())}`,
  s3: () => `s3://${s3.bucket}/${randomUUID()}?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&forcePathStyle=true&checksum=when_required`,
};

/** A new repository initialised for the chunked store. */
async function newRepository(uri: string): Promise<Repository> {
  const repository = new Repository(uri, openDriver(uri));
  await repository.init({ snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig() } });
  return repository;
}

async function open(repository: Repository, options: { packSize?: number } = {}): Promise<BlobStore> {
  const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
  return openBlobStore(repository, { cipher, packSize: options.packSize ?? 64 * 1024 });
}

for (const [backend, newUri] of Object.entries(BACKENDS)) {
  describe(`the chunked blob store on ${backend}`, () => {
    it('stores each distinct blob once, and another session reads every blob back after flush', async () => {
      const repository = await newRepository(newUri());
      const blobs = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? Buffer.alloc(10_000 + i, i) : randomBytes(5_000 + i)));
      const store = await open(repository);
      const first: SaveResult[] = [];
      for (const blob of blobs) first.push(await store.save('data', blob));
      assert.ok(first.every((result) => result.stored));
      const again = await store.save('data', blobs[5]!);
      assert.deepEqual(again, { id: first[5]!.id, stored: false, storedBytes: 0 }, 'this session deduplicates its unflushed blobs');
      assert.deepEqual(await store.load(first[1]!.id), blobs[1], 'an unflushed blob loads from memory');
      await store.flush();
      await store.close();

      const reader = await open(repository);
      assert.equal(reader.blobCount, blobs.length);
      for (const [i, blob] of blobs.entries()) {
        assert.ok(reader.has(first[i]!.id));
        assert.equal(reader.size(first[i]!.id), blob.length);
        assert.deepEqual(await reader.load(first[i]!.id), blob);
      }
      assert.deepEqual(await reader.save('tree', blobs[7]!), { id: first[7]!.id, stored: false, storedBytes: 0 }, 'a later session deduplicates against the index');
      const order = [3, 1, 2, 39, 0, 0, 20, 21, 22, 23].map((i) => first[i]!.id);
      const loaded: { id: string; data: Buffer }[] = [];
      for await (const { id, data } of reader.loadMany(order, { concurrency: 3 })) loaded.push({ id, data });
      assert.deepEqual(loaded.map((blob) => blob.id), order, 'loadMany keeps the input order');
      for (const { id, data } of loaded) assert.deepEqual(data, blobs[first.findIndex((result) => result.id === id)]);
      await assert.rejects(reader.load('00'.repeat(32)), NotFoundError);
      await reader.close();
      await repository.close();
    });
  });
}

describe('the chunked blob store on a damaged repository', () => {
  it('refuses a blob whose pack has one flipped byte with an IntegrityError, and still serves the others', async () => {
    const dir = path.join(root, randomUUID());
    const repository = await newRepository(`file://${dir}`);
    const store = await open(repository);
    const a = await store.save('data', Buffer.alloc(50_000, 'a'));
    const b = await store.save('data', randomBytes(30_000));
    await store.flush();
    await store.close();
    const packFolder = (await readdir(path.join(dir, 'packs')))[0]!;
    const packFile = path.join(dir, 'packs', packFolder, (await readdir(path.join(dir, 'packs', packFolder)))[0]!);
    const bytes = await readFile(packFile);
    bytes[a.storedBytes + 100]! ^= 0x40; // inside b, the second blob
    await writeFile(packFile, bytes);
    const reader = await open(repository);
    assert.deepEqual(await reader.load(a.id), Buffer.alloc(50_000, 'a'));
    await assert.rejects(reader.load(b.id), IntegrityError);
    await repository.close();
  });
});
