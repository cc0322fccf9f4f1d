import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IntegrityError } from '../shared/errors.js';
import { encodeName } from '../shared/fsutil/byte-name.js';
import { encodePaxRecord } from '../shared/formats/archive/pax-record.js';
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor, type TarHeaderFields } from '../shared/formats/archive/tar-encoder.js';
import { MAX_LONG_NAME_BYTES, MAX_PAX_HEADER_BYTES, TarHeaderError, TarParser, TarTruncatedError, type TarEntry } from '../shared/formats/archive/tar-parser.js';

const BLOCK = 512;

function fields(overrides: Partial<TarHeaderFields>): TarHeaderFields {
  return { name: 'data/a.txt', type: 'file', mode: 0o644, mtimeNs: 1_700_000_000_000_000_000n, size: 0, ...overrides };
}

/** One entry's tar bytes: header, body, padding. */
function entryBytes(header: TarHeaderFields, body = Buffer.alloc(0)): Buffer {
  return Buffer.concat([encodeTarHeader({ ...header, size: body.length }), body, Buffer.alloc(paddingFor(body.length))]);
}

/** A parser over `bytes` cut into chunks of `chunkSize` (odd sizes make headers and bodies straddle chunks). */
function parserOf(bytes: Buffer, chunkSize = bytes.length || 1): TarParser {
  let offset = 0;
  return new TarParser(async () => {
    if (offset >= bytes.length) return null;
    const chunk = bytes.subarray(offset, offset + chunkSize);
    offset += chunk.length;
    return chunk;
  });
}

/** Every entry with its body, read the way the archive reader does (bytes in hand, else pieces). */
async function readAll(parser: TarParser): Promise<{ entry: TarEntry; body: Buffer }[]> {
  const out: { entry: TarEntry; body: Buffer }[] = [];
  for (let entry = await parser.next(); entry; entry = await parser.next()) {
    const whole = parser.takeBuffered();
    if (whole) {
      out.push({ entry, body: Buffer.from(whole) });
      continue;
    }
    const pieces: Buffer[] = [];
    for (let piece = await parser.bodyChunk(); piece; piece = await parser.bodyChunk()) pieces.push(Buffer.from(piece));
    out.push({ entry, body: Buffer.concat(pieces) });
  }
  return out;
}

/** Sets a header block's checksum field to match its bytes. */
function fixChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** A ustar header block for `name` with the given type flag and raw 12-byte size field. */
function rawHeader(typeflag: string, sizeField: Buffer, name = 'data/x'): Buffer {
  const block = Buffer.from(encodeTarHeader(fields({ name })));
  block[156] = typeflag.charCodeAt(0);
  sizeField.copy(block, 124);
  return fixChecksum(block);
}

function octalSize(size: number): Buffer {
  return Buffer.from(`${size.toString(8).padStart(11, '0')} `, 'latin1');
}

async function assertFails(bytes: Buffer, errorClass: typeof IntegrityError, message: RegExp, chunkSize?: number): Promise<void> {
  await assert.rejects(readAll(parserOf(bytes, chunkSize)), (err: unknown) => {
    assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
    assert.match((err as Error).message, message);
    return true;
  });
}

describe('tar parser', () => {
  const body = Buffer.from('x'.repeat(1300));
  const rawName = `data/raw-${String.fromCharCode(0xdcff)}-name`;
  const tar = Buffer.concat([
    entryBytes(fields({ name: 'data', type: 'directory', mode: 0o755 })),
    entryBytes(fields({ name: 'data/a.txt' }), body),
    entryBytes(fields({ name: `data/${'long/'.repeat(60)}file`, mtimeNs: -1_500_000_000n }), Buffer.from('deep')),
    entryBytes(fields({ name: rawName, type: 'symlink', linkname: `../${'t'.repeat(150)}` })),
    entryBytes(fields({ name: 'data/dev', type: 'chardev', devMajor: 4095, devMinor: 1_048_575 })),
    END_OF_ARCHIVE,
  ]);

  for (const chunkSize of [tar.length, 4096, 511, 7]) {
    it(`reads names, types, sizes, times, links, devices and bodies from ${chunkSize}-byte chunks`, async () => {
      const read = await readAll(parserOf(tar, chunkSize));
      assert.deepEqual(
        read.map(({ entry }) => [entry.name, entry.typeflag, entry.size, entry.linkname]),
        [
          ['data', '5', 0, ''],
          ['data/a.txt', '0', 1300, ''],
          [`data/${'long/'.repeat(60)}file`, '0', 4, ''],
          [rawName, '2', 0, `../${'t'.repeat(150)}`],
          ['data/dev', '3', 0, ''],
        ],
      );
      assert.ok(read[1]!.body.equals(body));
      assert.equal(read[2]!.body.toString(), 'deep');
      assert.equal(read[2]!.entry.pax?.get('mtime')?.toString(), '-1.500000000');
      assert.deepEqual(encodeName(read[3]!.entry.name), encodeName(rawName));
      assert.deepEqual([read[4]!.entry.devMajor, read[4]!.entry.devMinor], [4095, 1_048_575]);
      assert.equal(read[1]!.entry.dataOffset, 2 * BLOCK);
    });
  }

  it('skips an unread body, and ends at the end of input after the end-of-archive blocks', async () => {
    const parser = parserOf(tar, 100);
    const names: string[] = [];
    for (let entry = await parser.next(); entry; entry = await parser.next()) names.push(entry.name);
    assert.equal(names.length, 5);
    assert.equal(parser.position, tar.length);
  });

  it('applies GNU long names and pax global records', async () => {
    const longName = Buffer.from(`data/${'n'.repeat(300)}\0`);
    const global = encodePaxRecord('comment', 'from a global header');
    const bytes = Buffer.concat([
      rawHeader('g', octalSize(global.length), 'pax_global_header'),
      global,
      Buffer.alloc(paddingFor(global.length)),
      rawHeader('L', octalSize(longName.length), '././@LongLink'),
      longName,
      Buffer.alloc(paddingFor(longName.length)),
      entryBytes(fields({ name: 'short' })),
      END_OF_ARCHIVE,
    ]);
    const [only] = await readAll(parserOf(bytes, 33));
    assert.equal(only!.entry.name, `data/${'n'.repeat(300)}`);
    assert.equal(only!.entry.pax?.get('comment')?.toString(), 'from a global header');
  });

  it('reads base-256 sizes and mtimes, negative mtimes included', async () => {
    const block = Buffer.from(encodeTarHeader(fields({ name: 'data/big' })));
    const size = Buffer.alloc(12);
    size[0] = 0x80;
    size.writeUIntBE(5, 6, 6);
    size.copy(block, 124);
    Buffer.alloc(12, 0xff).copy(block, 136); // -1 in two's complement
    const bytes = Buffer.concat([fixChecksum(block), Buffer.from('12345'), Buffer.alloc(BLOCK - 5), END_OF_ARCHIVE]);
    const [only] = await readAll(parserOf(bytes));
    assert.equal(only!.entry.size, 5);
    assert.equal(only!.entry.mtimeSeconds, -1);
    assert.equal(only!.body.toString(), '12345');
  });

  describe('refuses hostile input with one clear error', () => {
    it('a header cut short', async () => {
      await assertFails(tar.subarray(0, BLOCK + 100), TarTruncatedError, /tar data ends early/, 64);
    });

    it('a body cut short', async () => {
      await assertFails(tar.subarray(0, 2 * BLOCK + 700), TarTruncatedError, /tar data ends early/, 64);
    });

    it('a pax header cut short', async () => {
      const withPax = entryBytes(fields({ name: `data/${'p'.repeat(200)}` }));
      await assertFails(withPax.subarray(0, BLOCK + 10), TarTruncatedError, /tar data ends early/);
    });

    it('a bad header checksum', async () => {
      const bytes = Buffer.from(tar);
      bytes[BLOCK + 3] ^= 0x01; // the second header's name
      await assertFails(bytes, TarHeaderError, /corrupt tar header: checksum mismatch/);
    });

    it('a header without the ustar magic', async () => {
      const block = Buffer.from(encodeTarHeader(fields({})));
      block.write('nope!!', 257, 'latin1');
      await assertFails(Buffer.concat([fixChecksum(block), END_OF_ARCHIVE]), TarHeaderError, /unknown format/);
    });

    it('a negative size (base-256)', async () => {
      await assertFails(Buffer.concat([rawHeader('0', Buffer.alloc(12, 0xff)), END_OF_ARCHIVE]), TarHeaderError, /negative size -1/);
    });

    it('a size beyond a safe integer', async () => {
      const size = Buffer.alloc(12, 0x7f);
      size[0] = 0x80;
      await assertFails(Buffer.concat([rawHeader('0', size), END_OF_ARCHIVE]), TarHeaderError, /size does not fit a safe integer/);
    });

    it('a size that is not octal', async () => {
      await assertFails(Buffer.concat([rawHeader('0', Buffer.from('0000000009a ', 'latin1')), END_OF_ARCHIVE]), TarHeaderError, /size is not an octal number/);
    });

    it('an oversized pax header, refused before its bytes are read', async () => {
      // Only the header block is there: the parser must refuse by the size alone.
      await assertFails(rawHeader('x', octalSize(MAX_PAX_HEADER_BYTES + 1)), TarHeaderError, /pax header of 4194305 bytes, more than 4194304/);
    });

    it('an oversized GNU long name', async () => {
      await assertFails(rawHeader('L', octalSize(MAX_LONG_NAME_BYTES + 1)), TarHeaderError, /GNU long name of 65537 bytes/);
    });

    it('a pax record whose length runs past its header', async () => {
      const pax = Buffer.from('99 path=data/x\n');
      const bytes = Buffer.concat([rawHeader('x', octalSize(pax.length)), pax, Buffer.alloc(paddingFor(pax.length)), entryBytes(fields({})), END_OF_ARCHIVE]);
      await assertFails(bytes, IntegrityError, /malformed pax record at byte 0/);
    });

    it('a pax size that is not a byte count', async () => {
      const pax = encodePaxRecord('size', '-5');
      const bytes = Buffer.concat([rawHeader('x', octalSize(pax.length)), pax, Buffer.alloc(paddingFor(pax.length)), entryBytes(fields({})), END_OF_ARCHIVE]);
      await assertFails(bytes, TarHeaderError, /pax size "-5" is not a byte count/);
    });

    it('a pax size that points past the end of input', async () => {
      const pax = encodePaxRecord('size', '1000000');
      const bytes = Buffer.concat([rawHeader('x', octalSize(pax.length)), pax, Buffer.alloc(paddingFor(pax.length)), entryBytes(fields({})), END_OF_ARCHIVE]);
      await assertFails(bytes, TarTruncatedError, /tar data ends early/);
    });
  });
});
