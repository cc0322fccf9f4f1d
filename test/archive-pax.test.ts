import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { EntryHeader } from '../shared/snapshot/entry.js';
import { readArchive } from '../shared/formats/archive/archive-reader.js';
import { writeArchive } from '../shared/formats/archive/archive-writer.js';
import { encodePaxRecord, parsePaxRecords } from '../shared/formats/archive/pax-record.js';
import { encodeSparseMap, readSparseMap, sparseHeaderFromPax } from '../shared/formats/archive/pax-sparse.js';
import type { DataSegment } from '../shared/snapshot/sparse-segments.js';
import type { Xattr } from '../shared/snapshot/xattr.js';
import { encodeXattrRecords, xattrsFromPax } from '../shared/formats/archive/pax-xattrs.js';
import { SparseContentHash } from '../shared/formats/archive/sparse-content.js';
import { IntegrityError } from '../shared/errors.js';
import { getXattr } from '../shared/fsutil/native-fs.js';
import { nullProgress } from '../shared/progress.js';
import { asAsync, testManifest, type MemoryEntry } from './helpers/archive-fixtures.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'snapworker-pax-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const MTIME = new Date('2024-06-01T12:00:00.000Z');

/** The logical content of a sparse layout: zeros, with `fill` bytes in the segments. */
function expand(segments: readonly DataSegment[], size: number, fill = (i: number) => (i * 7 + 1) & 0xff): { logical: Buffer; packed: Buffer } {
  const logical = Buffer.alloc(size);
  const packed: Buffer[] = [];
  for (const { offset, length } of segments) {
    for (let i = offset; i < offset + length; i++) logical[i] = fill(i) || 1;
    packed.push(logical.subarray(offset, offset + length));
  }
  return { logical, packed: Buffer.concat(packed) };
}

function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) chunks.push(bytes.subarray(offset, offset + size));
  return chunks;
}

function iterate(chunks: Buffer[]): AsyncIterator<Buffer> {
  return (async function* () {
    yield* chunks;
  })();
}

function sparseEntry(entryPath: string, segments: DataSegment[], size: number, xattrs?: Xattr[]): MemoryEntry & { logical: Buffer } {
  const { logical, packed } = expand(segments, size);
  return {
    path: entryPath,
    type: 'file',
    mode: 0o640,
    mtime: MTIME,
    size,
    sparse: segments,
    ...(xattrs ? { xattrs } : {}),
    open: () => Readable.from(chunksOf(packed, 3000)),
    logical,
  };
}

async function writeToBuffer(entries: MemoryEntry[], compression: 'none' | 'zstd' = 'none'): Promise<Buffer> {
  const { stream, done } = writeArchive({ manifest: testManifest({ compression }), entries: asAsync(entries), signal: new AbortController().signal, progress: nullProgress });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  await done;
  return Buffer.concat(chunks);
}

async function readBack(bytes: Buffer): Promise<{ headers: EntryHeader[]; bodies: Map<string, Buffer> }> {
  const headers: EntryHeader[] = [];
  const bodies = new Map<string, Buffer>();
  await readArchive(Readable.from(chunksOf(bytes, 7919)), {
    signal: new AbortController().signal,
    onEntry: async (header, body) => {
      headers.push(header);
      if (body) bodies.set(header.path, Buffer.concat(await body.toArray()));
    },
  });
  return { headers, bodies };
}

function run(command: string, cwd: string): string {
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', command], { cwd, encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} failed: ${result.stderr}`);
  return result.stdout;
}

describe('pax records', () => {
  it('round-trip values as raw bytes, NULs, newlines and non-UTF-8 included', () => {
    const value = Buffer.from([0xff, 0x00, 0x0a, 0x3d, 0xc3]);
    const bytes = Buffer.concat([encodePaxRecord('SCHILY.xattr.user.a', value), encodePaxRecord('path', 'data/x')]);
    const records = parsePaxRecords(bytes);
    assert.deepEqual(records.get('SCHILY.xattr.user.a'), value);
    assert.equal(records.get('path')?.toString(), 'data/x');
  });

  it('count their own length across a change in digits (9 → 10, 99 → 100)', () => {
    for (let n = 0; n < 200; n++) {
      const record = encodePaxRecord('k', 'v'.repeat(n));
      assert.equal(Number(record.toString().split(' ')[0]), record.length);
    }
  });

  it('refuse a malformed header with an IntegrityError', () => {
    for (const bad of ['5 k=v\n', '12 kv\n      ', '999 k=v\n', 'x k=v\n']) {
      assert.throws(() => parsePaxRecords(Buffer.from(bad)), IntegrityError, bad);
    }
  });
});

describe('pax sparse format 1.0', () => {
  it('writes the map exactly as GNU tar does for the same layout', () => {
    // GNU tar 1.34 `--format=pax --sparse` of a 10 MiB file with one 4 KiB block at 4096000.
    assert.deepEqual(encodeSparseMap([{ offset: 4096000, length: 4096 }], 10485760).toString('latin1').replace(/\0+$/, ''), '2\n4096000\n4096\n10485760\n0\n');
    assert.equal(encodeSparseMap([], 5).length, 512);
  });

  it('reads a map split at every byte position, and hands on the data after its padding', async () => {
    const segments = [{ offset: 10, length: 3 }, { offset: 100, length: 5 }];
    const map = encodeSparseMap(segments, 1000);
    const stream = Buffer.concat([map, Buffer.from('abcdefgh')]);
    for (let cut = 1; cut < stream.length; cut += 37) {
      const { segments: read, rest } = await readSparseMap(iterate([stream.subarray(0, cut), stream.subarray(cut)]), stream.length, 1000, 'x');
      assert.deepEqual(read, segments);
      assert.equal(rest.toString(), cut >= map.length ? "abcdefgh".slice(0, cut - map.length) : "abcdefgh");
    }
  });

  it('refuses maps that are not decimal, out of order, overlapping, beyond the size, too many, or do not fill the entry', async () => {
    const cases: [string, number, number][] = [
      ['1\nx\n0\n', 512, 10],
      ['2\n5\n5\n0\n5\n', 522, 20],
      ['2\n0\n5\n3\n5\n', 522, 20],
      ['1\n5\n10\n', 522, 12],
      ['9999999\n', 512, 10],
      ['1\n0\n5\n', 600, 10],
      ['1\n0\n', 512, 10],
    ];
    for (const [text, stored, size] of cases) {
      const padded = Buffer.alloc(512);
      padded.write(text);
      await assert.rejects(readSparseMap(iterate([padded, Buffer.alloc(Math.max(0, stored - 512))]), stored, size, 'data/s'), IntegrityError, JSON.stringify(text));
    }
  });

  it('hashes the logical content (holes as zeros) from the packed data in any chunking', async () => {
    const size = 3 * 1024 * 1024 + 17;
    const segments = [{ offset: 0, length: 1 }, { offset: 4096, length: 8192 }, { offset: 2 * 1024 * 1024, length: 100_000 }];
    const { logical, packed } = expand(segments, size);
    const expected = createHash('sha256').update(logical).digest('hex');
    for (const chunkBytes of [1, 4095, 65536, packed.length]) {
      if (chunkBytes === 1 && packed.length > 200_000) continue;
      let counted = 0;
      const hash = new SparseContentHash(segments, size, 'x', (n) => (counted += n));
      for (const chunk of chunksOf(packed, chunkBytes)) await hash.update(chunk);
      assert.equal(await hash.digest(), expected);
      assert.equal(counted, size);
    }
  });

  it('refuses other sparse versions instead of restoring a wrong file', () => {
    const records = parsePaxRecords(Buffer.concat([encodePaxRecord('GNU.sparse.size', '10'), encodePaxRecord('GNU.sparse.map', '0,1')]));
    assert.throws(() => sparseHeaderFromPax(records, 'data/s'), /sparse format 0\.x is not supported/);
  });
});

describe('extended attribute records', () => {
  it('encode names with % and = escaped as GNU tar does, and decode them back', () => {
    const xattrs = [{ name: 'user.a=b%c', value: Buffer.from('v') }];
    const bytes = encodeXattrRecords(xattrs);
    assert.match(bytes.toString(), /SCHILY\.xattr\.user\.a%3Db%25c=v\n/);
    assert.deepEqual(xattrsFromPax(parsePaxRecords(bytes), 'x'), xattrs);
  });
});

describe('archives with sparse files and extended attributes', () => {
  const xattrs = [
    { name: 'user.binary', value: Buffer.from([0, 0xff, 0x0a, 0x3d, 0x80]) },
    { name: 'user.text', value: Buffer.from('héllo') },
  ];
  const sparse = sparseEntry('data/disk.img', [{ offset: 4096, length: 4096 }, { offset: 1 << 20, length: 10 }], 3 << 20, xattrs);
  const trailingData = sparseEntry('data/ends-in-data', [{ offset: 8192, length: 100 }], 8292);
  const allHole = sparseEntry('data/all-hole', [], 100_000);
  const entries: MemoryEntry[] = [
    { path: 'data', type: 'directory', mode: 0o755, mtime: MTIME, size: 0, xattrs: [{ name: 'user.dir', value: Buffer.from('d') }] },
    sparse,
    trailingData,
    allHole,
    { path: 'data/link', type: 'symlink', mode: 0o777, mtime: MTIME, size: 0, linkTarget: 'disk.img', xattrs: [{ name: 'trusted.t', value: Buffer.from([1]) }] },
  ];

  it('read back with the map, the packed data, and the attributes as written', async () => {
    const { headers, bodies } = await readBack(await writeToBuffer(entries));
    const disk = headers.find((h) => h.path === 'data/disk.img')!;
    assert.equal(disk.size, 3 << 20);
    assert.deepEqual(disk.sparse, sparse.sparse);
    assert.deepEqual(disk.xattrs, xattrs);
    assert.deepEqual(bodies.get('data/disk.img'), expand(sparse.sparse!, sparse.size).packed);
    assert.deepEqual(headers.find((h) => h.path === 'data/all-hole')!.sparse, []);
    assert.deepEqual(headers.find((h) => h.path === 'data')!.xattrs, entries[0]!.xattrs);
    assert.deepEqual(headers.find((h) => h.path === 'data/link')!.xattrs, entries[4]!.xattrs);
  });

  it('are extracted by GNU tar, with and without --sparse, to the same files, sparse, passing sha256sum -c', async () => {
    const archive = path.join(scratch, 'a.tar');
    writeFileSync(archive, await writeToBuffer(entries));
    for (const flags of ['', '--sparse']) {
      const out = mkdtempSync(path.join(scratch, 'gnu-'));
      run(`tar ${flags} --xattrs --xattrs-include='*' -xf ${archive} && sha256sum -c --quiet SHA256SUMS`, out);
      for (const entry of [sparse, trailingData, allHole]) {
        const extracted = path.join(out, entry.path);
        assert.deepEqual(readFileSync(extracted), entry.logical, entry.path);
        assert.ok(statSync(extracted).blocks * 512 <= 2 * 4096 + 8192, `${entry.path} is allocated: ${statSync(extracted).blocks} blocks`);
      }
      assert.deepEqual(getXattr(path.join(out, 'data/disk.img'), 'user.binary', true), xattrs[0]!.value);
      assert.deepEqual(getXattr(path.join(out, 'data/link'), 'trusted.t', true), Buffer.from([1]));
      assert.ok(!run('tar -tf ../a.tar', out).includes('GNUSparseFile'), 'GNU tar lists the real names');
    }
  });

  it('are refused, naming the entry, when the sparse records, the map or a pax record are tampered with', async () => {
    const archive = await writeToBuffer([sparse]);
    const tampered = (from: string, to: string): Buffer => {
      const at = archive.indexOf(from);
      assert.ok(at > 0, from);
      const copy = Buffer.from(archive);
      copy.write(to, at, 'latin1');
      return copy;
    };
    const cases: Array<[string, string, RegExp]> = [
      ['GNU.sparse.minor=0', 'GNU.sparse.minor=1', /data\/disk\.img.*sparse format 1\.1 is not supported/],
      // The map is covered by the logical SHA-256: moving data within the file is a mismatch.
      ['3\n4096\n4096\n', '3\n5096\n4096\n', /data\/disk\.img: sha256 mismatch/],
      ['GNU.sparse.realsize=3145728', 'GNU.sparse.realsize=1045728', /data\/disk\.img.*beyond the size 1045728/],
      ['1048576\n10\n', '1048576\n11\n', /data\/disk\.img: sparse map and data .* do not fill/],
      // A record whose length does not end at its newline.
      ['user.text=h', 'user.text\nh', /malformed pax record|pax record without "="/],
    ];
    for (const [from, to, message] of cases) {
      await assert.rejects(readBack(tampered(from, to)), (err: unknown) => {
        assert.ok(err instanceof IntegrityError, String(err));
        assert.match(err.message, message);
        return true;
      });
    }
  });

  it('hold what GNU tar writes for a sparse file: our reader parses its pax records and map', async () => {
    const file = path.join(scratch, 'gnu-sparse');
    const fd = openSync(file, 'w');
    writeSync(fd, Buffer.from('tail'), 0, 4, 5 * 1024 * 1024);
    closeSync(fd);
    run(`tar --format=pax --sparse -cf gnu.tar gnu-sparse`, scratch);
    const tarBytes = readFileSync(path.join(scratch, 'gnu.tar'));
    const paxSize = parseInt(tarBytes.toString('latin1', 124, 136), 8);
    const records = parsePaxRecords(tarBytes.subarray(512, 512 + paxSize));
    const header = sparseHeaderFromPax(records, 'gnu-sparse')!;
    assert.equal(header.name.toString(), 'gnu-sparse');
    assert.equal(header.realSize, 5 * 1024 * 1024 + 4);
    const dataStart = 512 + Math.ceil(paxSize / 512) * 512 + 512;
    const storedSize = parseInt(tarBytes.toString('latin1', dataStart - 512 + 124, dataStart - 512 + 136), 8);
    const { segments, rest } = await readSparseMap(iterate([tarBytes.subarray(dataStart, dataStart + storedSize)]), storedSize, header.realSize, 'gnu-sparse');
    assert.equal(segments.length, 1);
    assert.equal(segments[0]!.offset + segments[0]!.length, header.realSize);
    assert.equal(rest.toString('latin1', 5 * 1024 * 1024 - segments[0]!.offset), 'tail');
  });
});
