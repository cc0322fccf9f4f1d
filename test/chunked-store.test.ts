import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import { IntegrityError, NotFoundError } from '../shared/errors.js';
import { openBlobStore, type BlobStore, type SaveResult } from '../shared/formats/chunked/store/blob-store.js';
import { newChunkedStoreConfig, plainCipherOf, readChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { collectGarbage } from '../shared/formats/chunked/store/garbage-collection.js';
import { checkStore } from '../shared/formats/chunked/store/check-store.js';
import { storageBackends } from './helpers/storage-backends.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';
import { BlobIndex, SORTED_BYTES_PER_BLOB } from '../shared/formats/chunked/store/blob-index.js';
import { BLOB_ENTRY_BYTES, writeBlobEntry } from '../shared/formats/chunked/store/blob-entry.js';

const storage = storageBackends('snapworker-chunked-store-');
/** The drivers every test runs against: the filesystem and s3rver, each on a fresh root. */
const BACKENDS = storage.uris;

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
    const dir = path.join(storage.root(), randomUUID());
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pack objects under `dir`'s `packs/`. */
async function packFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const folder of await readdir(path.join(dir, 'packs')).catch(() => [])) {
    for (const file of await readdir(path.join(dir, 'packs', folder))) if (!file.startsWith('.')) files.push(file);
  }
  return files.sort();
}

describe('garbage collection of the chunked store', () => {
  const WINDOW = 3000;
  async function setUp() {
    const dir = path.join(storage.root(), randomUUID());
    const repository = await newRepository(`file://${dir}`);
    const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
    return { dir, repository, cipher };
  }

  it('marks a pack no snapshot needs, deletes it only after the grace window, and compacts the index objects into one', async () => {
    const { dir, repository, cipher } = await setUp();
    const store = await open(repository, { packSize: 1 });
    const kept = await store.save('data', randomBytes(20_000));
    await store.flush();
    const dropped = await store.save('data', randomBytes(20_000));
    await store.flush();
    await store.close();
    assert.equal((await readdir(path.join(dir, 'pack-index'))).length, 2);
    await sleep(50);
    const live = (id: string) => id === kept.id;

    const dry = await collectGarbage(repository, { cipher, live, olderThan: new Date(), dryRun: true });
    assert.equal(dry.marked.length, 1);
    assert.equal((await readdir(path.join(dir, 'pack-index'))).length, 2, 'a dry run changes nothing');

    const first = await collectGarbage(repository, { cipher, live, olderThan: new Date(Date.now() - 10) });
    assert.equal(first.marked.length, 1);
    assert.deepEqual(first.deleted, []);
    assert.equal((await packFiles(dir)).length, 2, 'the marked pack stays through its window');
    assert.equal((await readdir(path.join(dir, 'pack-index'))).length, 1, 'one index object after compaction');
    const reader = await open(repository);
    assert.ok(reader.has(kept.id) && !reader.has(dropped.id), 'a new session no longer sees the marked blob');

    await sleep(50);
    const second = await collectGarbage(repository, { cipher, live, olderThan: new Date(Date.now() - 10) });
    assert.equal(second.deleted.length, 1);
    assert.equal((await packFiles(dir)).length, 1);
    assert.deepEqual(await (await open(repository)).load(kept.id), await reader.load(kept.id));
    await repository.close();
  });

  it('keeps every blob a writer saves while a collection marks and sweeps: the writer revives what it deduplicated against', async () => {
    const { repository, cipher } = await setUp();
    const old = Array.from({ length: 6 }, () => randomBytes(8_000));
    const seed = await open(repository, { packSize: 1 });
    const oldIds: string[] = [];
    for (const blob of old) oldIds.push((await seed.save('data', blob)).id);
    await seed.flush();
    await seed.close();
    await sleep(WINDOW);

    // A snapshot in flight: opened before the collection, deduplicates against blobs no
    // finished snapshot references, and saves new blobs while the collector runs.
    const writer = await open(repository, { packSize: 16 * 1024 });
    const saved = new Map<string, Buffer>();
    const nothingLive = () => false;
    const writing = (async () => {
      for (let i = 0; i < 60; i++) {
        const blob = i % 20 === 0 ? old[(i / 10) % old.length]! : randomBytes(3_000);
        saved.set((await writer.save('data', blob)).id, blob);
        if (i % 7 === 0) await sleep(1);
      }
    })();
    const marking = collectGarbage(repository, { cipher, live: nothingLive, olderThan: new Date(Date.now() - WINDOW), repackBelow: 0 });
    const [, report] = await Promise.all([writing, marking]);
    assert.ok(report.marked.length >= 6, 'the old packs were marked');
    await writer.flush();
    await writer.close();
    // The snapshot's record is written: its blobs are live from now on.
    const live = (id: string) => saved.has(id);
    await sleep(WINDOW);
    const sweep = await collectGarbage(repository, { cipher, live, olderThan: new Date(Date.now() - WINDOW) });
    assert.equal(sweep.deleted.length, 3, `unneeded old packs were deleted (${sweep.deleted.length})`);
    const reader = await open(repository);
    for (const [id, blob] of saved) assert.deepEqual(await reader.load(id), blob, `blob ${id} is still loadable`);
    await repository.close();
  });

  it('repacks a mostly-empty pack: its live blob moves to a new pack and the old one goes after the window', async () => {
    const { dir, repository, cipher } = await setUp();
    const store = await open(repository, { packSize: 1024 * 1024 });
    const blobs = Array.from({ length: 10 }, () => randomBytes(10_000));
    const ids: string[] = [];
    for (const blob of blobs) ids.push((await store.save('data', blob)).id);
    await store.flush();
    await store.close();
    const [original] = await packFiles(dir);
    await sleep(20);
    const live = (id: string) => id === ids[3];
    const report = await collectGarbage(repository, { cipher, live, olderThan: new Date(Date.now() - 5) });
    assert.deepEqual(report.repacked, [original]);
    assert.equal(report.blobsRepacked, 1);
    await sleep(20);
    await collectGarbage(repository, { cipher, live, olderThan: new Date(Date.now() - 5) });
    const after = await packFiles(dir);
    assert.equal(after.length, 1);
    assert.notEqual(after[0], original);
    assert.deepEqual(await (await open(repository)).load(ids[3]!), blobs[3]);
    const check = await checkStore(repository, { cipher, readDataSubset: 1 });
    assert.deepEqual(check.problems, []);
    assert.equal(check.blobs, 1);
    await repository.close();
  });
});

describe('the chunked store check', () => {
  it('finds a missing pack, a pack of the wrong size, and (reading data) a flipped byte, naming each pack', async () => {
    const dir = path.join(storage.root(), randomUUID());
    const repository = await newRepository(`file://${dir}`);
    const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
    const store = await open(repository, { packSize: 1 });
    for (let i = 0; i < 4; i++) await store.save('data', randomBytes(5_000));
    await store.flush();
    await store.close();
    assert.deepEqual((await checkStore(repository, { cipher, readDataSubset: 1 })).problems, []);
    const [a, b, c] = await packFiles(dir);
    const where = (id: string) => path.join(dir, 'packs', id.slice(0, 2), id);
    await rm(where(a!));
    await writeFile(where(b!), Buffer.concat([await readFile(where(b!)), Buffer.from('x')]));
    const bytes = await readFile(where(c!));
    bytes[10]! ^= 1;
    await writeFile(where(c!), bytes);
    const structural = await checkStore(repository, { cipher });
    assert.equal(structural.problems.length, 2, structural.problems.join('\n'));
    const full = await checkStore(repository, { cipher, readDataSubset: 1 });
    assert.equal(full.problems.filter((line) => line.includes(c!)).length, 2, full.problems.join('\n'));
    assert.ok(full.problems.some((line) => line.includes(a!) && /missing/.test(line)));
    assert.ok(full.problems.some((line) => line.includes(b!) && /bytes, the index says/.test(line)));
    await repository.close();
  });
});

describe('the chunked store after a writer is SIGKILLed', () => {
  it('leaves only unreferenced packs: the next store opens and works, every flushed blob loads, and collection removes the debris', { timeout: 60_000 }, async () => {
    const dir = path.join(storage.root(), randomUUID());
    const uri = `file://${dir}`;
    const repository = await newRepository(uri);
    const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'test', 'helpers', 'chunked-store-child.ts'), uri], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let flushed: string[] = [];
    let lines = 0;
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
      child.stdout!.on('data', (data: Buffer) => {
        buffered += data.toString();
        const complete = buffered.split('\n');
        buffered = complete.pop()!;
        for (const line of complete) {
          flushed = JSON.parse(line) as string[];
          // Killed a little after a flush: mid-save or mid-upload of the next packs.
          if (++lines === 2) setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 15);
        }
      });
    });
    await new Promise((resolve) => child.once('close', resolve));
    const before = await packFiles(dir);

    const store = await open(repository);
    for (const id of flushed) assert.ok(store.has(id), `flushed blob ${id} is indexed`);
    const again = await store.save('data', randomBytes(1000));
    await store.flush();
    assert.ok((await store.load(again.id)).length === 1000, 'the next session saves and loads');
    await store.close();

    const { unindexedPacks: unindexed } = await checkStore(repository, { cipher });
    await sleep(30);
    const live = (id: string) => flushed.includes(id) || id === again.id;
    const report = await collectGarbage(repository, { cipher, live, olderThan: new Date(Date.now() - 10) });
    const check = await checkStore(repository, { cipher, readDataSubset: 1 });
    assert.deepEqual(check.problems, []);
    assert.equal(check.unindexedPacks, 0, 'no debris left');
    assert.equal(report.debris.length, unindexed, 'collection deleted exactly the packs no index named');
    assert.ok(before.length >= 2);
    const reader = await open(repository);
    for (const id of flushed) assert.ok((await reader.load(id)).length >= 16 * 1024);
    await repository.close();
  });
});

describe('the in-memory blob index', () => {
  it('finds every one of 20,000 blobs added one by one and in bulk, keeps one location per id, and takes 49 bytes per blob', () => {
    const ids = Array.from({ length: 20_000 }, () => randomBytes(32).toString('hex'));
    const index = new BlobIndex(1000);
    ids.slice(0, 10_000).forEach((id, i) => index.add(id, { pack: 1, type: 'tree', offset: i, length: 10, rawLength: 20 }));
    const entries = Buffer.alloc(10_000 * BLOB_ENTRY_BYTES);
    ids.slice(10_000).forEach((id, i) => writeBlobEntry(entries, i * BLOB_ENTRY_BYTES, { type: 'data', id, offset: i, length: 30, rawLength: 40 }));
    index.addEntries(entries, 2);
    index.addEntries(entries.subarray(0, 100 * BLOB_ENTRY_BYTES), 3); // the same blobs in another pack
    index.add(ids[0]!, { pack: 9, type: 'data', offset: 0, length: 1, rawLength: 1 });
    for (const [i, id] of ids.entries()) {
      const found = index.get(id)!;
      const expected = i < 10_000 ? { pack: 1, type: 'tree', offset: i, length: 10, rawLength: 20 } : { pack: 2, type: 'data', offset: i - 10_000, length: 30, rawLength: 40 };
      if (found?.pack !== expected.pack || found.type !== expected.type || found.offset !== expected.offset || found.length !== expected.length || found.rawLength !== expected.rawLength) assert.fail(`blob ${i}: ${JSON.stringify(found)}`);
    }
    assert.equal(index.has(randomBytes(32).toString('hex')), false);
    assert.equal(index.tableBytes() / ids.length, SORTED_BYTES_PER_BLOB);
    assert.equal(index.size, ids.length);
  });
});
