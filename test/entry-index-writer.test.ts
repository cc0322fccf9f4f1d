import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Readable } from 'node:stream';
import { decompress } from 'zstd-napi';
import { EntryIndexWriter } from '../shared/formats/archive/entry-index/entry-index-writer.js';

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes `count` file entries with `pathBytes`-long names; resolves with the index's lines, decompressed. */
async function writeIndex(count: number, pathBytes: number): Promise<string[]> {
  const writer = new EntryIndexWriter('20261122T031500123Z-1a2b3c4d', 'zstd');
  const read = bytesOf(writer.stream);
  for (let i = 0; i < count; i++) {
    const path = `data/${String(i).padStart(8, '0')}-`.padEnd(pathBytes, 'x');
    await writer.entry({ path, type: 'file', mode: 0o644, mtime: new Date(0), size: 1 }, 512 * (2 * i + 1), 1024, 'ab'.repeat(32));
  }
  await writer.finish({ payloadStart: 512, tarBytes: 512 * (2 * count + 3) });
  return decompress(await read).toString().trimEnd().split('\n');
}

test('an index of a few entries is one zstd frame holding the header, every entry and the trailer', async () => {
  const lines = await writeIndex(3, 20);
  assert.equal(lines.length, 5);
  assert.deepEqual(JSON.parse(lines[0]!), { v: 1, snapshotId: '20261122T031500123Z-1a2b3c4d', compression: 'zstd' });
  assert.equal(JSON.parse(lines[2]!).offset, 512 * 3);
  assert.deepEqual(JSON.parse(lines[4]!), { end: true, entries: 3, payloadStart: 512, tarBytes: 512 * 9 });
});

test('an index larger than one batch streams, and reads back whole and in order', async () => {
  const lines = await writeIndex(3000, 200); // about 900 KiB of lines: several batches
  assert.equal(lines.length, 3002);
  for (let i = 0; i < 3000; i += 997) assert.ok((JSON.parse(lines[i + 1]!) as { path: string }).path.startsWith(`data/${String(i).padStart(8, '0')}-`));
  assert.equal(JSON.parse(lines[3001]!).entries, 3000);
});

test('abort ends the index stream with the error, before and after it started streaming', async () => {
  for (const entries of [0, 3000]) {
    const writer = new EntryIndexWriter('20261122T031500123Z-1a2b3c4d', 'zstd');
    const read = bytesOf(writer.stream);
    for (let i = 0; i < entries; i++) {
      // Not awaited past the first batches: nobody reads yet beyond what the stream buffers.
      const pending = writer.entry({ path: `data/${i}`.padEnd(200, 'x'), type: 'file', mode: 0o644, mtime: new Date(0), size: 1 }, 512, 1024);
      if (i < 2000) await pending;
      else void pending.catch(() => {});
    }
    writer.abort(new Error('source failed'));
    await assert.rejects(read, /source failed/);
    await assert.rejects(writer.finish({ payloadStart: 512, tarBytes: 1024 }), /entry index stream closed/);
  }
});
