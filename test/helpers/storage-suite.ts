import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';

import { InvalidInputError, IntegrityError, NotFoundError } from '../../shared/errors.js';
import type { StorageDriver } from '../../shared/storage/storage-driver.js';

/** A driver under test and how to throw it away. */
export interface DriverFixture {
  driver: StorageDriver;
  cleanup(): Promise<void>;
  /**
   * What a failed put may have left behind that `list` does not show (temp files, open multipart
   * uploads), so the suite can check that nothing is. Optional: without it only `list` is checked.
   */
  leftovers?(): Promise<string[]>;
}

export interface StorageSuiteOptions {
  /**
   * The backend rewrites objects in place (s3rver does), so a reader that started before an
   * overwrite may see the store change under it. The driver must then fail that read rather than
   * return mixed bytes. Default false: the reader must get the old bytes or the new ones.
   */
  overwriteMayFailReaders?: boolean;
}

const MiB = 1024 * 1024;

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A body that arrives in uneven chunks, as network and compressor output do. */
export function chunkedBody(bytes: Buffer, chunkSize = 100_003): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < bytes.length; offset += chunkSize) yield bytes.subarray(offset, offset + chunkSize);
    })(),
    { objectMode: false },
  );
}

async function listKeys(driver: StorageDriver, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of driver.list(prefix)) keys.push(info.key);
  return keys.sort();
}

/**
 * The behaviour every `StorageDriver` must show, as node:test tests. Each test gets a fresh driver
 * from `makeDriver` (its own directory or prefix) and cleans it up.
 */
export function runStorageDriverSuite(
  name: string,
  makeDriver: () => Promise<DriverFixture>,
  suiteOptions: StorageSuiteOptions = {},
): void {
  async function withDriver(body: (fixture: DriverFixture) => Promise<void>): Promise<void> {
    const fixture = await makeDriver();
    try {
      await body(fixture);
    } finally {
      await fixture.driver.close?.();
      await fixture.cleanup();
    }
  }

  async function assertNothingLeft(fixture: DriverFixture, key: string): Promise<void> {
    assert.deepEqual(await listKeys(fixture.driver, ''), [], 'nothing is listed');
    await assert.rejects(fixture.driver.head(key), NotFoundError);
    if (fixture.leftovers) assert.deepEqual(await fixture.leftovers(), [], 'no temp files or open uploads');
  }

  describe(`storage driver suite: ${name}`, () => {
    for (const [label, size] of [
      ['an empty object', 0],
      ['a small object', 1000],
      ['a multi-MB object of random bytes', 12 * MiB + 12345],
    ] as const) {
      test(`put then get returns ${label} byte for byte, with its size and SHA-256`, () =>
        withDriver(async ({ driver }) => {
          const bytes = randomBytes(size);
          const result = await driver.put('objects/one.bin', chunkedBody(bytes), { size });
          assert.equal(result.key, 'objects/one.bin');
          assert.equal(result.size, size);
          assert.equal(result.sha256, sha256(bytes));
          if (result.parts) {
            assert.equal(result.parts.reduce((sum, part) => sum + part.size, 0), size, 'parts add up to the object');
          }
          const back = await readAll(await driver.get('objects/one.bin'));
          assert.equal(back.length, size);
          assert.ok(back.equals(bytes), 'bytes read back are the bytes written');
        }));
    }

    test('put without a declared size stores the whole body', () =>
      withDriver(async ({ driver }) => {
        const bytes = randomBytes(3 * MiB + 7);
        const result = await driver.put('nosize.bin', chunkedBody(bytes, 65_536));
        assert.equal(result.size, bytes.length);
        assert.ok((await readAll(await driver.get('nosize.bin'))).equals(bytes));
      }));

    test('put reports progress up to the full size', () =>
      withDriver(async ({ driver }) => {
        const bytes = randomBytes(2 * MiB);
        let last = 0;
        await driver.put('progress.bin', chunkedBody(bytes), {
          size: bytes.length,
          onProgress: ({ loaded }) => {
            assert.ok(loaded >= last, 'progress never goes backwards');
            last = loaded;
          },
        });
        assert.equal(last, bytes.length);
      }));

    test('get with a byte range returns exactly those bytes, clamped to the object', () =>
      withDriver(async ({ driver }) => {
        const bytes = randomBytes(11 * MiB + 5);
        await driver.put('ranged.bin', chunkedBody(bytes), { size: bytes.length });
        const cases: Array<{ start: number; end?: number }> = [
          { start: 0, end: 0 },
          { start: 10, end: 99 },
          { start: 5 * MiB - 10, end: 5 * MiB + 10 },
          { start: 3 * MiB },
          { start: bytes.length - 1 },
          { start: 7, end: bytes.length + 1000 },
        ];
        for (const range of cases) {
          const expected = bytes.subarray(range.start, range.end === undefined ? undefined : range.end + 1);
          const back = await readAll(await driver.get('ranged.bin', { range }));
          assert.ok(back.equals(expected), `range ${JSON.stringify(range)}`);
        }
        const beyond = await readAll(await driver.get('ranged.bin', { range: { start: bytes.length + 10 } }));
        assert.equal(beyond.length, 0, 'a range past the end is empty');
        await assert.rejects(driver.get('ranged.bin', { range: { start: 10, end: 5 } }), InvalidInputError);
      }));

    test('head returns the size and a recent modification time', () =>
      withDriver(async ({ driver }) => {
        const before = Date.now();
        await driver.put('dir/head.bin', chunkedBody(randomBytes(4321)));
        const info = await driver.head('dir/head.bin');
        assert.equal(info.key, 'dir/head.bin');
        assert.equal(info.size, 4321);
        assert.ok(Math.abs(info.modifiedAt.getTime() - before) < 60_000, `modifiedAt ${info.modifiedAt.toISOString()}`);
      }));

    test('list returns every object under a prefix and nothing else', () =>
      withDriver(async ({ driver }) => {
        for (const key of ['a/1', 'a/2', 'a/b/3', 'ab/4', 'c']) await driver.put(key, chunkedBody(Buffer.from(key)));
        assert.deepEqual(await listKeys(driver, 'a/'), ['a/1', 'a/2', 'a/b/3']);
        assert.deepEqual(await listKeys(driver, 'a'), ['a/1', 'a/2', 'a/b/3', 'ab/4']);
        assert.deepEqual(await listKeys(driver, 'a/b/'), ['a/b/3']);
        assert.deepEqual(await listKeys(driver, ''), ['a/1', 'a/2', 'a/b/3', 'ab/4', 'c']);
        assert.deepEqual(await listKeys(driver, 'zzz/'), []);
        const sizes = new Map<string, number>();
        for await (const info of driver.list('a/')) sizes.set(info.key, info.size);
        assert.equal(sizes.get('a/b/3'), 5);
      }));

    test('delete removes the object, and deleting a missing object succeeds', () =>
      withDriver(async ({ driver }) => {
        await driver.put('gone/x.bin', chunkedBody(randomBytes(100)));
        await driver.put('kept.bin', chunkedBody(randomBytes(100)));
        await driver.delete('gone/x.bin');
        await assert.rejects(driver.head('gone/x.bin'), NotFoundError);
        assert.deepEqual(await listKeys(driver, ''), ['kept.bin']);
        await driver.delete('gone/x.bin');
        await driver.delete('never/was.bin');
      }));

    test('get and head of a missing object throw NotFoundError naming the key', () =>
      withDriver(async ({ driver }) => {
        await assert.rejects(driver.get('missing/key.bin'), (err: Error) => {
          assert.ok(err instanceof NotFoundError, `${err.name}: ${err.message}`);
          assert.match(err.message, /missing\/key\.bin/);
          return true;
        });
        await assert.rejects(driver.head('missing/key.bin'), NotFoundError);
        await assert.rejects(driver.get('missing/key.bin', { range: { start: 5 } }), NotFoundError);
      }));

    test('an overwrite is atomic: a reader started before it never sees a mix of old and new bytes', () =>
      withDriver(async ({ driver }) => {
        const oldBytes = randomBytes(3 * MiB);
        const newBytes = randomBytes(1 * MiB + 17);
        await driver.put('swap.bin', chunkedBody(oldBytes));
        const reader = await driver.get('swap.bin');
        const firstChunk = await new Promise<Buffer>((resolve, reject) => {
          reader.once('data', resolve);
          reader.once('error', reject);
        });
        reader.pause();
        await driver.put('swap.bin', chunkedBody(newBytes));
        let seen: Buffer | Error;
        try {
          seen = Buffer.concat([firstChunk, await readAll(reader)]);
        } catch (err) {
          seen = err as Error;
        }
        if (seen instanceof Error) {
          assert.ok(suiteOptions.overwriteMayFailReaders, `the reader failed: ${seen.message}`);
        } else {
          assert.ok(seen.equals(oldBytes) || seen.equals(newBytes), 'the reader got the old object or the new one whole');
        }
        assert.ok((await readAll(await driver.get('swap.bin'))).equals(newBytes), 'a later reader gets the new bytes');
      }));

    test('a put aborted mid-stream rejects and leaves nothing behind', () =>
      withDriver(async (fixture) => {
        const controller = new AbortController();
        const body = Readable.from(
          (async function* () {
            for (let i = 0; i < 8; i++) yield randomBytes(MiB);
            setTimeout(() => controller.abort(), 50);
            await new Promise(() => {}); // the source stalls until the put is aborted
          })(),
          { objectMode: false },
        );
        await assert.rejects(fixture.driver.put('aborted/obj.bin', body, { signal: controller.signal }));
        await assertNothingLeft(fixture, 'aborted/obj.bin');
      }));

    test('a put whose body stream fails rejects with that failure and leaves nothing behind', () =>
      withDriver(async (fixture) => {
        const body = Readable.from(
          (async function* () {
            for (let i = 0; i < 7; i++) yield randomBytes(MiB);
            throw new Error('source went away');
          })(),
          { objectMode: false },
        );
        await assert.rejects(fixture.driver.put('failed/obj.bin', body), /source went away/);
        await assertNothingLeft(fixture, 'failed/obj.bin');
      }));

    test('a put whose body does not match the declared size fails with IntegrityError and leaves nothing', () =>
      withDriver(async (fixture) => {
        await assert.rejects(fixture.driver.put('short.bin', chunkedBody(randomBytes(1000)), { size: 1001 }), IntegrityError);
        await assertNothingLeft(fixture, 'short.bin');
      }));

    test('a failed overwrite keeps the previous object intact', () =>
      withDriver(async ({ driver }) => {
        const bytes = randomBytes(2 * MiB);
        await driver.put('keep.bin', chunkedBody(bytes));
        const failing = Readable.from(
          (async function* () {
            yield randomBytes(MiB);
            throw new Error('boom');
          })(),
          { objectMode: false },
        );
        await assert.rejects(driver.put('keep.bin', failing), /boom/);
        assert.ok((await readAll(await driver.get('keep.bin'))).equals(bytes));
      }));

    test('bad keys and prefixes are refused with InvalidInputError', () =>
      withDriver(async ({ driver }) => {
        for (const key of ['', '/etc/passwd', 'a//b', 'a/../b', '..', '../x', 'a/./b', 'a/', 'a\\b']) {
          await assert.rejects(driver.put(key, chunkedBody(Buffer.from('x'))), InvalidInputError, `put ${JSON.stringify(key)}`);
          await assert.rejects(driver.get(key), InvalidInputError, `get ${JSON.stringify(key)}`);
          await assert.rejects(driver.head(key), InvalidInputError, `head ${JSON.stringify(key)}`);
          await assert.rejects(driver.delete(key), InvalidInputError, `delete ${JSON.stringify(key)}`);
        }
        await assert.rejects(listKeys(driver, '../'), InvalidInputError);
        await assert.rejects(listKeys(driver, '/abs'), InvalidInputError);
      }));

    test('a get stream destroyed early releases the object and the driver keeps working', () =>
      withDriver(async ({ driver }) => {
        const bytes = randomBytes(6 * MiB);
        await driver.put('early.bin', chunkedBody(bytes));
        const stream = await driver.get('early.bin');
        await new Promise((resolve) => stream.once('data', resolve));
        stream.destroy();
        assert.ok((await readAll(await driver.get('early.bin'))).equals(bytes));
      }));

    test('a get aborted by its signal ends the stream with an error', () =>
      withDriver(async ({ driver }) => {
        await driver.put('abortget.bin', chunkedBody(randomBytes(6 * MiB)));
        const controller = new AbortController();
        const stream = await driver.get('abortget.bin', { signal: controller.signal });
        await new Promise((resolve) => stream.once('data', resolve));
        controller.abort();
        await assert.rejects(readAll(stream));
      }));
  });

}
