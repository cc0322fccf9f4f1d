import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { chunkBuffer, chunkStream, DEFAULT_GEAR, gearTable, type ChunkerParams } from '../shared/formats/chunked/store/chunker.js';
import { InvalidInputError } from '../shared/errors.js';

/** Feeds `data` in pieces of `piece` bytes, as a file read would. */
async function chunksOf(data: Buffer, params?: Partial<ChunkerParams>, piece = 256 * 1024): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  const source = (async function* () {
    for (let at = 0; at < data.length; at += piece) yield data.subarray(at, at + piece);
  })();
  for await (const chunk of chunkStream(source, params)) chunks.push(chunk);
  return chunks;
}

const digest = (chunk: Buffer) => createHash('sha256').update(chunk).digest('hex');

describe('the FastCDC chunker', () => {
  const data = randomBytes(20 * 1024 * 1024);

  it('splits 20 MiB of random bytes into chunks between min and max that add up to the input, averaging near 1 MiB', async () => {
    const chunks = await chunksOf(data);
    assert.ok(Buffer.concat(chunks).equals(data));
    for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length >= 512 * 1024 && chunk.length <= 8 * 1024 * 1024, `chunk of ${chunk.length} bytes`);
    const mean = data.length / chunks.length;
    assert.ok(mean > 700 * 1024 && mean < 1600 * 1024, `mean chunk ${Math.round(mean / 1024)} KiB`);
  });

  it('keeps most chunks when bytes are inserted near the start (boundaries follow the content)', async () => {
    const before = (await chunksOf(data)).map(digest);
    const edited = Buffer.concat([data.subarray(0, 1000), randomBytes(37), data.subarray(1000)]);
    const after = new Set((await chunksOf(edited, undefined, 100_000)).map(digest));
    const kept = before.filter((id) => after.has(id)).length;
    assert.ok(kept >= before.length - 2, `${kept} of ${before.length} chunks unchanged`);
  });

  it('cuts the same places whatever the sizes of the pieces fed to it', async () => {
    const small = { min: 4096, avg: 16384, max: 65536 };
    const whole = (await chunksOf(data.subarray(0, 2 * 1024 * 1024), small, 2 * 1024 * 1024)).map(digest);
    const pieces = (await chunksOf(data.subarray(0, 2 * 1024 * 1024), small, 777)).map(digest);
    assert.deepEqual(pieces, whole);
  });

  it('cuts bytes held in memory where the stream chunker cuts them, as views without copies', async () => {
    const small = { min: 4096, avg: 16384, max: 65536 };
    const sample = data.subarray(0, 3 * 1024 * 1024);
    const streamed = (await chunksOf(sample, small, 100_000)).map(digest);
    const views = [...chunkBuffer(sample, small)];
    assert.deepEqual(views.map(digest), streamed);
    assert.ok(views.every((view) => view.buffer === sample.buffer), 'views share the input');
    assert.deepEqual([...chunkBuffer(Buffer.alloc(0))], []);
    assert.deepEqual([...chunkBuffer(Buffer.from('hello'))].map(String), ['hello']);
  });

  it('yields nothing for empty input and one chunk for input under min, from a Readable too', async () => {
    assert.deepEqual(await chunksOf(Buffer.alloc(0)), []);
    const chunks: Buffer[] = [];
    for await (const chunk of chunkStream(Readable.from([Buffer.from('hello'), Buffer.from(' world')]))) chunks.push(chunk);
    assert.deepEqual(chunks.map(String), ['hello world']);
  });

  it('cuts elsewhere under another gear table (a per-repository table hides content by its chunk sizes)', async () => {
    const small = { min: 4096, avg: 16384, max: 65536 };
    const sample = data.subarray(0, 1024 * 1024);
    const fixed = (await chunksOf(sample, { ...small, gear: DEFAULT_GEAR })).map((chunk) => chunk.length);
    const keyed = (await chunksOf(sample, { ...small, gear: gearTable(randomBytes(32)) })).map((chunk) => chunk.length);
    assert.notDeepEqual(keyed, fixed);
  });

  it('refuses sizes out of order in one line', async () => {
    await assert.rejects(chunksOf(data, { min: 4096, avg: 2048, max: 65536 }), (err: Error) => err instanceof InvalidInputError && /min < avg < max/.test(err.message));
  });
});
