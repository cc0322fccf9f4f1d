import { seekTableBytes } from '../shared/formats/archive/seekable/seek-table.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { decompress as zstdDecompress } from 'zstd-napi';
import type { EntryHeader } from '../shared/snapshot/entry.js';
import { readArchive, type ReadArchiveOptions, type ReadResult } from '../shared/formats/archive/archive-reader.js';
import { writeArchive, type ArchiveStats, type WriteArchiveOptions } from '../shared/formats/archive/archive-writer.js';
import { archiveFileName, detectCompression } from '../shared/formats/archive/compression.js';
import type { Compression } from '../shared/formats/archive/manifest.js';
import type { SealKey } from '../shared/formats/archive/seal.js';
import { AbortedError, IntegrityError, InvalidInputError, UnsafeEntryError, UnsafePathError } from '../shared/errors.js';
import { nullProgress, type ProgressSink } from '../shared/progress.js';
import {
  asAsync,
  compressBytes,
  craftArchive,
  fileEntry,
  mixedEntries,
  pseudoRandomBytes,
  sealFor,
  sha256Hex,
  sumsFor,
  symlinkEntry,
  testManifest,
  type MemoryEntry,
  type RawEntry,
} from './helpers/archive-fixtures.js';

const COMPRESSIONS: Compression[] = ['zstd', 'gzip', 'none'];
const KEY: SealKey = { keyId: 'ops-2025', key: Buffer.alloc(32, 0x5a) };

function signal(): AbortSignal {
  return new AbortController().signal;
}

async function writeToBuffer(entries: MemoryEntry[], options: Partial<WriteArchiveOptions> & { compression?: Compression } = {}): Promise<{ bytes: Buffer; stats: ArchiveStats }> {
  const { compression = 'zstd', ...rest } = options;
  const { stream, done } = writeArchive({
    manifest: testManifest({ compression }),
    entries: asAsync(entries),
    signal: signal(),
    progress: nullProgress,
    threads: 2,
    ...rest,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), stats: await done };
}

/** Streams `bytes` in odd-sized chunks, so entries and headers straddle chunk boundaries. */
function streamOf(bytes: Buffer, chunkBytes = 7919): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) chunks.push(bytes.subarray(offset, offset + chunkBytes));
  return Readable.from(chunks, { objectMode: false });
}

interface ReadBack {
  result: ReadResult;
  headers: EntryHeader[];
  contents: Map<string, Buffer>;
}

async function readBack(bytes: Buffer, options: Partial<ReadArchiveOptions> = {}): Promise<ReadBack> {
  const headers: EntryHeader[] = [];
  const contents = new Map<string, Buffer>();
  const result = await readArchive(streamOf(bytes), {
    signal: signal(),
    sealKeys: { [KEY.keyId]: KEY.key },
    onEntry: async (header, body) => {
      headers.push(header);
      if (!body) return;
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      contents.set(header.path, Buffer.concat(chunks));
    },
    ...options,
  });
  return { result, headers, contents };
}

async function assertRefused(bytes: Buffer, errorClass: typeof IntegrityError | typeof UnsafePathError, message: RegExp, options: Partial<ReadArchiveOptions> = {}): Promise<void> {
  await assert.rejects(readBack(bytes, options), (err: unknown) => {
    assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
    assert.match((err as Error).message, message);
    return true;
  });
}

function run(command: string, cwd: string): void {
  const result = spawnSync('sh', ['-c', command], { cwd, encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} failed: ${result.stderr}`);
}

let workDir: string;
before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'snapworker-archive-test-'));
});
after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('archive round trip', () => {
  for (const compression of COMPRESSIONS) {
    it(`reads back every entry, byte for byte, with modes, mtimes and link targets (${compression})`, async () => {
      const entries = mixedEntries();
      const { bytes, stats } = await writeToBuffer(entries, { compression });
      assert.equal(detectCompression(bytes), compression);
      const files = entries.filter((entry) => entry.type === 'file');
      assert.deepEqual(stats, { entries: entries.length, files: files.length, rawBytes: files.reduce((sum, entry) => sum + entry.size, 0) });

      const { result, headers, contents } = await readBack(bytes);
      assert.deepEqual({ ...result, manifest: undefined }, { ...stats, manifest: undefined, sealed: false });
      assert.equal(result.manifest.snapshotId, '01JTESTSNAPSHOT');
      assert.equal(result.manifest.compression, compression);
      assert.deepEqual(
        headers.map((header) => [header.path, header.type, header.mode, header.mtime.getTime(), header.size, header.linkTarget]),
        entries.map((entry) => [entry.path, entry.type, entry.mode, entry.mtime.getTime(), entry.size, entry.linkTarget]),
      );
      for (const entry of files) assert.ok(contents.get(entry.path)?.equals(entry.data!), `content of ${entry.path}`);
    });
  }

  it('reports payload bytes and entries to the progress sink on both sides', async () => {
    const counts = () => {
      const seen = { bytes: 0, entries: 0 };
      const sink: ProgressSink = { ...nullProgress, addBytes: (n) => (seen.bytes += n), addEntries: (n) => (seen.entries += n) };
      return { seen, sink };
    };
    const writing = counts();
    const { bytes, stats } = await writeToBuffer(mixedEntries(), { progress: writing.sink });
    const reading = counts();
    await readArchive(streamOf(bytes), { signal: signal(), progress: reading.sink });
    assert.deepEqual(writing.seen, { bytes: stats.rawBytes, entries: stats.entries });
    assert.deepEqual(reading.seen, writing.seen);
  });

  it('names the archive object after its compression', () => {
    assert.deepEqual(COMPRESSIONS.map(archiveFileName), ['archive.tar.zst', 'archive.tar.gz', 'archive.tar']);
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
    assert.equal(detectCompression(Buffer.from('manifest.json')), 'none');
  });
});

describe('archive and stock tools', () => {
  const unpack: Record<Compression, string> = {
    zstd: 'zstd -d < ../archive | tar -x',
    gzip: 'gzip -d < ../archive | tar -x',
    none: 'tar -x < ../archive',
  };
  for (const compression of COMPRESSIONS) {
    it(`extracts with stock tools and passes sha256sum -c SHA256SUMS (${compression})`, async () => {
      const dir = await mkdtemp(join(workDir, `stock-${compression}-`));
      const { stream, done } = writeArchive({
        manifest: testManifest({ compression }),
        entries: asAsync(mixedEntries()),
        seal: KEY,
        signal: signal(),
        progress: nullProgress,
      });
      await pipeline(stream, createWriteStream(join(dir, 'archive')));
      await done;
      const out = join(dir, 'out');
      run(`mkdir out && cd out && ${unpack[compression]} && sha256sum --strict -c SHA256SUMS`, dir);
      assert.equal(await readFile(join(out, 'data/etc/app.conf'), 'utf8'), 'listen = 8080\n');
      assert.equal(await readlink(join(out, 'data/current.conf')), 'etc/app.conf');
      assert.equal((await lstat(join(out, 'data/run.sh'))).mode & 0o777, 0o755);
      const seal = JSON.parse(await readFile(join(out, 'SHA256SUMS.seal'), 'utf8'));
      assert.equal(seal.keyId, KEY.keyId);
      assert.equal(seal.mac, JSON.parse(sealFor(await readFile(join(out, 'SHA256SUMS'), 'utf8'), KEY)).mac);
      // And the file the stock tools read is one our reader accepts from disk.
      const result = await readArchive(createReadStream(join(dir, 'archive')), { signal: signal(), sealKeys: { [KEY.keyId]: KEY.key } });
      assert.equal(result.sealed, true);
    });
  }
});

describe('archive seal', () => {
  it('verifies a seal made with a configured key', async () => {
    const { bytes } = await writeToBuffer(mixedEntries(), { seal: KEY });
    const { result } = await readBack(bytes, { requireSeal: true });
    assert.equal(result.sealed, true);
    assert.equal(result.manifest.sealKeyId, KEY.keyId);
  });

  it('refuses a seal under an unknown key unless told to ignore it', async () => {
    const { bytes } = await writeToBuffer(mixedEntries(), { seal: KEY });
    await assertRefused(bytes, IntegrityError, /sealed with unknown key "ops-2025"/, { sealKeys: {} });
    const { result } = await readBack(bytes, { sealKeys: {}, ignoreUnknownSealKey: true });
    assert.equal(result.sealed, false);
  });

  it('refuses an unsealed archive when a seal is required', async () => {
    const { bytes } = await writeToBuffer(mixedEntries());
    await assertRefused(bytes, IntegrityError, /not sealed, and a seal is required/, { requireSeal: true });
  });

  it('detects data and sums tampered with together, because the seal no longer matches', async () => {
    const payload: RawEntry[] = [{ name: 'data/a.txt', data: 'hello\n' }];
    const original = await craftArchive(payload, { seal: KEY });
    // The attacker rewrites the file and its sum but cannot recompute the MAC without the key.
    const tamperedPayload: RawEntry[] = [{ name: 'data/a.txt', data: 'evil!\n' }];
    const manifest = JSON.stringify(testManifest({ compression: 'zstd', sealKeyId: KEY.keyId }), null, 2) + '\n';
    const honestSums = sumsFor([{ name: 'manifest.json', data: manifest }, ...payload]);
    const tamperedSums = sumsFor([{ name: 'manifest.json', data: manifest }, ...tamperedPayload]);
    const tampered = await craftArchive(tamperedPayload, { sums: tamperedSums, seal: { raw: sealFor(honestSums, KEY), keyId: KEY.keyId } });
    await readBack(original, { requireSeal: true });
    await assertRefused(tampered, IntegrityError, /entry SHA256SUMS\.seal: does not match SHA256SUMS/);
  });

  it('refuses a seal the manifest does not announce', async () => {
    const bytes = await craftArchive([{ name: 'data/a', data: 'a' }], { after: [{ name: 'SHA256SUMS.seal', data: sealFor('x', KEY) }] });
    await assertRefused(bytes, IntegrityError, /SHA256SUMS\.seal: present, but the manifest names no seal key/);
  });

  it('refuses an announced seal that is missing', async () => {
    const bytes = await craftArchive([{ name: 'data/a', data: 'a' }], { manifest: { sealKeyId: KEY.keyId } });
    await assertRefused(bytes, IntegrityError, /SHA256SUMS\.seal missing/);
  });
});

describe('archive integrity', () => {
  it('names the entry whose byte was flipped (uncompressed and zstd)', async () => {
    const entries = [fileEntry('data/one.txt', 'first file\n'), fileEntry('data/two.txt', 'second file\n')];
    const { bytes: plain } = await writeToBuffer(entries, { compression: 'none' });
    const flipped = Buffer.from(plain);
    const at = flipped.indexOf('second file');
    flipped[at] ^= 0x01;
    await assertRefused(flipped, IntegrityError, /^archive: entry data\/two\.txt: sha256 mismatch$/);

    const { bytes: zstd } = await writeToBuffer(entries, { compression: 'zstd' });
    const tar = Buffer.from(zstdDecompress(zstd));
    tar[tar.indexOf('first file')] ^= 0x20;
    await assertRefused(compressBytes(tar, 'zstd'), IntegrityError, /^archive: entry data\/one\.txt: sha256 mismatch$/);
  });

  it('says where in the archive zstd data stopped decoding (a flipped compressed byte)', async () => {
    // Barely compressible and bigger than one decoded chunk: output flows before the damage.
    const big = fileEntry('data/big.bin', pseudoRandomBytes(3_000_000, 5));
    const { bytes } = await writeToBuffer([fileEntry('data/small', 'x'), big, fileEntry('data/last', 'z')], { compression: 'zstd' });
    const damaged = Buffer.from(bytes);
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    await assertRefused(damaged, IntegrityError, /^archive: (corrupt zstd data (in|after) entry data\/\S+: .+|entry data\/big\.bin: sha256 mismatch)$/);
    const { bytes: small } = await writeToBuffer([fileEntry('data/a', 'a')], { compression: 'zstd' });
    const cut = Buffer.from(small);
    cut[cut.length - seekTableBytes(1) - 2] ^= 0xff; // the frame checksum (before the seek table): nothing decodes before it is checked
    await assertRefused(cut, IntegrityError, /^archive: corrupt zstd data before any entry could be read: /);
  });

  for (const compression of COMPRESSIONS) {
    it(`names the entry a truncated archive was cut in (${compression})`, async () => {
      // Barely compressible, so the middle of the stream is the middle of this file.
      const big = fileEntry('data/big.bin', pseudoRandomBytes(2_000_000, 3));
      const { bytes } = await writeToBuffer([fileEntry('data/small', 'x'), big, fileEntry('data/last', 'z')], { compression });
      const cut = Math.floor(bytes.length / 2);
      await assertRefused(bytes.subarray(0, cut), IntegrityError, /^archive: truncated in entry data\/big\.bin$/);
    });
  }

  it('refuses an archive that ends before SHA256SUMS or before its end marker', async () => {
    const { bytes } = await writeToBuffer([fileEntry('data/a', 'a')], { compression: 'none' });
    const sumsAt = bytes.indexOf('SHA256SUMS\0');
    await assertRefused(bytes.subarray(0, sumsAt), IntegrityError, /truncated: SHA256SUMS missing after entry data\/a/);
    await assertRefused(bytes.subarray(0, bytes.length - 1024), IntegrityError, /truncated: end-of-archive marker missing/);
    await assertRefused(Buffer.alloc(0), IntegrityError, /truncated or empty: no manifest\.json/);
  });

  it('refuses an entry missing from SHA256SUMS and a sum for an entry that is not there', async () => {
    const payload: RawEntry[] = [{ name: 'data/a', data: 'a' }, { name: 'data/extra', data: 'unlisted' }];
    const listed = sumsFor([{ name: 'manifest.json', data: JSON.stringify(testManifest(), null, 2) + '\n' }, payload[0]!]);
    await assertRefused(await craftArchive(payload, { sums: listed }), IntegrityError, /^archive: entry data\/extra: not listed in SHA256SUMS$/);

    const ghost = sumsFor([{ name: 'manifest.json', data: JSON.stringify(testManifest(), null, 2) + '\n' }, ...payload, { name: 'data/ghost', data: 'g' }]);
    await assertRefused(await craftArchive(payload, { sums: ghost }), IntegrityError, /^archive: entry data\/ghost: listed in SHA256SUMS but missing from the archive$/);
  });

  it('refuses unexpected entries after SHA256SUMS', async () => {
    await assertRefused(await craftArchive([{ name: 'data/a', data: 'a' }], { after: [{ name: 'data/late', data: 'late' }] }), IntegrityError, /unexpected entry data\/late after SHA256SUMS/);
  });

  it('refuses trailing garbage after the tar end, after the zstd frame and after the gzip stream', async () => {
    const payload: RawEntry[] = [{ name: 'data/a', data: 'a' }];
    await assertRefused(await craftArchive(payload, { compression: 'none', trailingTar: Buffer.from('garbage') }), IntegrityError, /data after the end of the archive/);
    await assertRefused(await craftArchive(payload, { compression: 'none', trailingTar: Buffer.alloc(512) }), IntegrityError, /data after the end of the archive/);
    await assertRefused(await craftArchive(payload, { compression: 'zstd', trailingTar: Buffer.alloc(4096, 1) }), IntegrityError, /data after the end of the archive/);
    await assertRefused(await craftArchive(payload, { compression: 'zstd', trailingCompressed: Buffer.from('garbage') }), IntegrityError, /data after the end of the zstd frame/);
    await assertRefused(await craftArchive(payload, { compression: 'zstd', trailingCompressed: compressBytes(Buffer.alloc(0), 'zstd') }), IntegrityError, /data after the end of the zstd frame/);
    await assertRefused(await craftArchive(payload, { compression: 'gzip', trailingCompressed: Buffer.alloc(16) }), IntegrityError, /data after the end of the gzip stream/);
    await assertRefused(await craftArchive(payload, { compression: 'gzip', trailingCompressed: Buffer.from('garbage') }), IntegrityError, /corrupt gzip data/);
  });

  it('refuses an archive whose first entry is not the manifest, or whose manifest is not v1', async () => {
    await assertRefused(await craftArchive([{ name: 'data/a', data: 'a' }], { before: [{ name: 'data/first', data: 'x' }] }), IntegrityError, /first entry is data\/first, expected manifest\.json/);
    await assertRefused(await craftArchive([], { manifest: { version: 2 as 1 } }), IntegrityError, /unsupported version 2/);
    await assertRefused(await craftArchive([], { manifest: JSON.stringify({ ...testManifest(), format: 'other' }) }), IntegrityError, /format is "other"/);
    await assertRefused(await craftArchive([], { manifest: JSON.stringify({ ...testManifest(), labels: 'x' }) }), IntegrityError, /manifest\.json: .*labels/);
    await assertRefused(await craftArchive([], { manifest: '{not json' }), IntegrityError, /manifest\.json: not JSON/);
    await assertRefused(await craftArchive([], { compression: 'gzip', manifest: { compression: 'zstd' } }), IntegrityError, /says compression zstd, but the archive is gzip/);
  });

  it('lets onManifest refuse the archive before any payload entry', async () => {
    const { bytes } = await writeToBuffer(mixedEntries());
    let entriesSeen = 0;
    await assert.rejects(
      readArchive(streamOf(bytes), {
        signal: signal(),
        onManifest: (manifest) => {
          throw new InvalidInputError(`restore: snapshot of ${manifest.source.kind}, target wants nats`);
        },
        onEntry: async () => void (entriesSeen += 1),
      }),
      /restore: snapshot of dir, target wants nats/,
    );
    assert.equal(entriesSeen, 0);
  });

  it('fails when onEntry returns without reading the whole body', async () => {
    const { bytes } = await writeToBuffer([fileEntry('data/a', Buffer.alloc(1_000_000, 1))]);
    await assert.rejects(readArchive(streamOf(bytes), { signal: signal(), onEntry: async () => {} }), /entry data\/a: onEntry returned before reading the whole body/);
  });
});

describe('archive path safety', () => {
  const refusals: Array<[string, RawEntry[], typeof IntegrityError | typeof UnsafePathError, RegExp]> = [
    ['an absolute path', [{ name: '/etc/passwd', data: 'x' }], UnsafePathError, /entry \/etc\/passwd: absolute path/],
    ['a ../ path', [{ name: 'data/../../escape', data: 'x' }], UnsafePathError, /entry data\/\.\.\/\.\.\/escape: "\.\." component/],
    [
      'a file written through a symlink',
      [{ name: 'data/dir', type: 'symlink', linkname: 'real' }, { name: 'data/dir/file', data: 'x' }],
      UnsafePathError,
      /entry data\/dir\/file: path goes through the symlink data\/dir/,
    ],
    ['a hard link to a later entry', [{ name: 'data/b', type: 'link', linkname: 'data/a' }, { name: 'data/a', data: 'a' }], UnsafePathError, /entry data\/b: hard link to data\/a, which is not an earlier entry/],
    ['a hard link out of the archive', [{ name: 'data/b', type: 'link', linkname: 'data/../../etc/passwd' }], UnsafeEntryError, /entry data\/b: hard link to data\/\.\.\/\.\.\/etc\/passwd: "\.\." component/],
    ['an absolute hard link', [{ name: 'data/b', type: 'link', linkname: '/tmp/outside' }], UnsafeEntryError, /entry data\/b: hard link to \/tmp\/outside: absolute path/],
    ['a hard link to a directory', [{ name: 'data/d', type: 'directory' }, { name: 'data/b', type: 'link', linkname: 'data/d' }], IntegrityError, /entry data\/b: hard link to the directory data\/d/],
    ['a file written through a device', [{ name: 'data/null', type: 'character-device', devmajor: 1, devminor: 3 }, { name: 'data/null/x', data: 'x' }], IntegrityError, /path goes through the chardev data\/null/],
    ['a duplicate path', [{ name: 'data/a', data: 'a' }, { name: 'data/a', data: 'b' }], IntegrityError, /entry data\/a: duplicate path/],
    ['a payload entry named like the sums', [{ name: 'manifest.json', data: '{}' }], IntegrityError, /duplicate path|reserved/],
  ];
  for (const [what, payload, errorClass, message] of refusals) {
    it(`refuses ${what}`, async () => {
      await assertRefused(await craftArchive(payload), errorClass, message);
    });
  }

  it('accepts any symlink target as data: absolute, escaping, through other links, with backslashes', async () => {
    const payload: RawEntry[] = [
      { name: 'data/a/b', type: 'directory' },
      { name: 'data/a/b/up', type: 'symlink', linkname: '../../x/./y' },
      { name: 'data/root', type: 'symlink', linkname: '.' },
      { name: 'data/out', type: 'symlink', linkname: '../../etc' },
      { name: 'data/abs', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'data/up', type: 'symlink', linkname: 'root/..' },
      { name: 'data/back\\..\\slash', type: 'symlink', linkname: 'a\\b' },
    ];
    const { result } = await readBack(await craftArchive(payload));
    assert.equal(result.entries, 7);
  });

  it('accepts hard links to earlier entries, fifos and devices', async () => {
    const payload: RawEntry[] = [
      { name: 'data/a', data: 'a' },
      { name: 'data/b', type: 'link', linkname: 'data/a' },
      { name: 'data/pipe', type: 'fifo' },
      { name: 'data/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'data/loop', type: 'block-device', devmajor: 7, devminor: 5 },
    ];
    const { result, headers } = await readBack(await craftArchive(payload));
    assert.equal(result.entries, 5);
    assert.deepEqual(
      headers.map((h) => [h.path, h.type, h.linkTarget, h.devMajor, h.devMinor]),
      [
        ['data/a', 'file', undefined, undefined, undefined],
        ['data/b', 'hardlink', 'data/a', undefined, undefined],
        ['data/pipe', 'fifo', undefined, undefined, undefined],
        ['data/null', 'chardev', undefined, 1, 3],
        ['data/loop', 'blockdev', undefined, 7, 5],
      ],
    );
  });

  it('keeps the writer from producing what the reader would refuse', async () => {
    const cases: Array<[MemoryEntry[], RegExp]> = [
      [[fileEntry('../escape', 'x')], /entry \.\.\/escape: "\.\." component/],
      [[{ ...symlinkEntry('data/l', 'x'), type: 'hardlink' }], /hard link to x, which is not an earlier entry/],
      [[fileEntry('data/a', 'a'), fileEntry('data/a', 'b')], /duplicate path/],
      [[fileEntry('SHA256SUMS', 'forged')], /reserved/],
    ];
    for (const [entries, message] of cases) {
      const { stream, done } = writeArchive({ manifest: testManifest(), entries: asAsync(entries), signal: signal(), progress: nullProgress });
      stream.resume();
      await assert.rejects(done, message);
      assert.ok(stream.destroyed);
    }
  });
});

describe('archive writer failures', () => {
  it('fails when a source yields another size than it announced', async () => {
    const entry: MemoryEntry = { ...fileEntry('data/a', 'abc'), size: 10 };
    const { stream, done } = writeArchive({ manifest: testManifest(), entries: asAsync([entry]), signal: signal(), progress: nullProgress });
    stream.resume();
    await assert.rejects(done, /entry data\/a: source yielded 3 bytes, announced 10/);
  });

  it('refuses an invalid manifest or seal key with InvalidInputError', async () => {
    for (const [options, message] of [
      [{ manifest: testManifest({ snapshotId: 'a/b' }) }, /manifest: .*snapshotId/],
      [{ manifest: testManifest(), seal: { keyId: 'k', key: Buffer.alloc(4) } }, /key k: shorter than 16 bytes/],
    ] as const) {
      const { stream, done } = writeArchive({ entries: asAsync([]), signal: signal(), progress: nullProgress, ...options });
      await assert.rejects(done, (err: unknown) => err instanceof InvalidInputError && message.test(err.message));
      assert.ok(stream.destroyed);
    }
  });

  it('stops promptly when aborted, closing the open source file', async () => {
    const controller = new AbortController();
    let sourceDestroyed = false;
    const endless = new Readable({
      read() {
        this.push(Buffer.alloc(64 * 1024, 1));
      },
      destroy(err, callback) {
        sourceDestroyed = true;
        callback(err);
      },
    });
    const entry: MemoryEntry = { path: 'data/endless', type: 'file', mode: 0o644, mtime: new Date(), size: 1e12, open: () => endless };
    const { stream, done } = writeArchive({ manifest: testManifest(), entries: asAsync([entry]), signal: controller.signal, progress: nullProgress, threads: 0 });
    stream.resume();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(done, AbortedError);
    assert.ok(stream.destroyed);
    assert.ok(sourceDestroyed);
  });

  it('stops when the consumer destroys the output stream', async () => {
    const { stream, done } = writeArchive({ manifest: testManifest(), entries: asAsync(mixedEntries()), signal: signal(), progress: nullProgress });
    stream.once('data', () => stream.destroy());
    await assert.rejects(done, /output stream closed before the end/);
  });
});

describe('archive reader abort', () => {
  it('rejects with AbortedError and destroys the input when the signal fires', async () => {
    const { bytes } = await writeToBuffer([fileEntry('data/big', pseudoRandom(4_000_000))]);
    const controller = new AbortController();
    const input = streamOf(bytes, 64 * 1024);
    await assert.rejects(
      readArchive(input, {
        signal: controller.signal,
        onEntry: async (_header, body) => {
          controller.abort();
          for await (const _chunk of body!);
        },
      }),
      AbortedError,
    );
    assert.ok(input.destroyed);
  });
});

function pseudoRandom(length: number): Buffer {
  return Buffer.from(Array.from({ length: Math.ceil(length / 32) }, (_, i) => sha256Hex(String(i)).slice(0, 32)).join('')).subarray(0, length);
}
