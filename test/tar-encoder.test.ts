import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import tar from 'tar-stream';
import { encodeTarHeader, type TarHeaderFields } from '../shared/formats/archive/tar-encoder.js';

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

  it('writes sizes beyond 11 octal digits in base-256, as tar-stream does', () => {
    const header = encodeTarHeader({ name: 'data/huge', type: 'file', mode: 0o644, mtimeNs: 0n, size: 2 ** 34 + 5 });
    assert.equal(header[124], 0x80);
    assert.equal(header.readUIntBE(130, 6), 2 ** 34 + 5);
  });
});
