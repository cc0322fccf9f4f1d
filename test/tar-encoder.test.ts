import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import tar from 'tar-stream';
import { encodeTarHeader, type TarHeaderFields } from '../shared/formats/archive/tar-encoder.js';
import { decodeName } from '../shared/fsutil/byte-name.js';

/** The bytes tar-stream's pack writes for one entry's header (everything before the body). */
async function tarStreamHeader(fields: TarHeaderFields & { type: 'file' | 'directory' | 'symlink' }, paxMtime?: string): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  const header: Parameters<typeof pack.entry>[0] = {
    name: fields.name,
    type: fields.type,
    mode: fields.mode,
    mtime: new Date(Number(fields.mtimeNs / 1_000_000n)),
    size: fields.size,
    uid: 0,
    gid: 0,
    ...(fields.linkname ? { linkname: fields.linkname } : {}),
    ...(paxMtime ? { pax: { mtime: paxMtime } } : {}),
  };
  const sink = pack.entry(header);
  if (fields.size > 0) sink.write(Buffer.alloc(fields.size));
  sink.end(undefined);
  pack.finalize();
  await ended;
  const all = Buffer.concat(chunks);
  const trailer = Math.ceil(fields.size / 512) * 512 + 1024;
  return all.subarray(0, all.length - trailer);
}

describe('tar header encoder', () => {
  const cases: [string, TarHeaderFields & { type: 'file' | 'directory' | 'symlink' }, string?][] = [
    ['a plain file', { name: 'data/a.txt', type: 'file', mode: 0o644, mtimeNs: 1_700_000_000_000_000_000n, size: 5 }],
    ['a directory', { name: 'data/sub', type: 'directory', mode: 0o755, mtimeNs: 1_700_000_000_000_000_000n, size: 0 }],
    ['a symlink', { name: 'data/link', type: 'symlink', mode: 0o777, mtimeNs: 0n, size: 0, linkname: '../target' }],
    ['a name split into ustar prefix and name', { name: `data/${'d'.repeat(90)}/${'f'.repeat(90)}`, type: 'file', mode: 0o600, mtimeNs: 1_000_000_000_000_000_000n, size: 1 }],
    ['a name too long for ustar', { name: `data/${'x'.repeat(300)}`, type: 'file', mode: 0o644, mtimeNs: 1_000_000_000_000_000_000n, size: 3 }],
    ['a non-ASCII name', { name: 'data/été/日本.txt', type: 'file', mode: 0o644, mtimeNs: 1_000_000_000_000_000_000n, size: 2 }],
    ['a long link target', { name: 'data/l', type: 'symlink', mode: 0o777, mtimeNs: 1_000_000_000_000_000_000n, size: 0, linkname: 't/'.repeat(80) }],
    ['a sub-second mtime', { name: 'data/ms', type: 'file', mode: 0o644, mtimeNs: 1_700_000_000_123_000_000n, size: 1 }, '1700000000.123000000'],
    ['setuid and sticky bits', { name: 'data/s', type: 'file', mode: 0o7755, mtimeNs: 1_000_000_000_000_000_000n, size: 0 }],
  ];
  for (const [what, fields, paxMtime] of cases) {
    it(`writes the same header bytes as tar-stream for ${what}`, async () => {
      assert.deepEqual(encodeTarHeader(fields), await tarStreamHeader(fields, paxMtime));
    });
  }

  it('says hdrcharset=BINARY only for a name that is not UTF-8, and stock tar lists both names byte for byte', () => {
    const file = { type: 'file', mode: 0o644, mtimeNs: 1_000_000_000_000_000_000n, size: 0 } as const;
    const utf8 = encodeTarHeader({ ...file, name: 'data/été/日本.txt' });
    const binary = encodeTarHeader({ ...file, name: decodeName(Buffer.from('data/bad\xff', 'latin1')) });
    assert.equal(utf8.includes('hdrcharset'), false);
    assert.equal(binary.includes('hdrcharset=BINARY'), true);
    const list = (headers: Buffer[]) => spawnSync('tar', ['--quoting-style=literal', '-tf', '-'], { input: Buffer.concat([...headers, Buffer.alloc(1024)]) });
    const plain = list([utf8]);
    assert.equal(plain.status, 0, plain.stderr.toString());
    assert.equal(plain.stderr.length, 0, 'no warning for UTF-8 names');
    assert.deepEqual(plain.stdout, Buffer.from('data/été/日本.txt\n'));
    // GNU tar 1.34 warns "Ignoring unknown extended header keyword 'hdrcharset'" here, yet
    // takes the bytes as they are and exits 0 (docs/archive-format.md).
    const both = list([utf8, binary]);
    assert.equal(both.status, 0, both.stderr.toString());
    assert.deepEqual(both.stdout, Buffer.concat([Buffer.from('data/été/日本.txt\n'), Buffer.from('data/bad\xff\n', 'latin1')]));
  });

  it('writes sizes beyond 11 octal digits in base-256, as tar-stream does', () => {
    const header = encodeTarHeader({ name: 'data/huge', type: 'file', mode: 0o644, mtimeNs: 0n, size: 2 ** 34 + 5 });
    assert.equal(header[124], 0x80);
    assert.equal(header.readUIntBE(130, 6), 2 ** 34 + 5);
  });
});
