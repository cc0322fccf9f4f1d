/**
 * The chunked store's own figures (issue 14), not part of `npm run bench` or the tests:
 *
 *   node --expose-gc --import tsx bench/chunked-store.ts [--rounds 3] [--mib 256] [--blobs 1000000]
 *
 * - chunker: FastCDC over random bytes, MiB/s of wall and of CPU time (user + system);
 * - store: save (chunk, id, zstd, pack, upload to a file repository) of half random, half
 *   compressible data; the same again (every blob deduplicated); loadMany of every blob;
 * - index: memory of the in-memory index at `--blobs` blobs (bytes per blob, measured as heap and
 *   external growth), and the time to open a store whose index objects list that many blobs.
 * Prints medians over the rounds. Nothing here asserts a time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Repository } from '../shared/catalog/repository.js';
import { BLOB_ENTRY_BYTES, writeBlobEntry } from '../shared/formats/chunked/store/blob-entry.js';
import { BlobIndex } from '../shared/formats/chunked/store/blob-index.js';
import { openBlobStore } from '../shared/formats/chunked/store/blob-store.js';
import { chunkStream, gearTableFor } from '../shared/formats/chunked/store/chunker.js';
import { encodeIndex, type PackRecord } from '../shared/formats/chunked/store/index-format.js';
import { indexKey } from '../shared/formats/chunked/store/store-layout.js';
import { newChunkedStoreConfig, plainCipherOf, readChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { median } from './median.js';

const flag = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const ROUNDS = flag('rounds', 3);
const MIB = flag('mib', 256);
const BLOBS = flag('blobs', 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Runs `fn`, resolving with wall and CPU seconds. */
async function timed(fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const cpu = process.cpuUsage(cpu0);
  return { wall: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

function rate(mib: number, runs: { wall: number; cpu: number }[]): string {
  return `${(mib / median(runs.map((r) => r.wall))).toFixed(0)} MiB/s wall, ${(mib / median(runs.map((r) => r.cpu))).toFixed(0)} MiB/s CPU`;
}

/** `mib` MiB in 1 MiB pieces: half random, half runs of repeated text (compressible). */
function corpus(mib: number): Buffer[] {
  return Array.from({ length: mib }, (_, i) => (i % 2 === 0 ? randomBytes(1 << 20) : Buffer.alloc(1 << 20, `line ${i} of a compressible log file\n`)));
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'snapworker-bench-chunked-'));
  try {
    // The in-memory index at BLOBS blobs, filled as opening a store fills it (index entries in bulk).
    let entries: Buffer | undefined = randomBytes(BLOB_ENTRY_BYTES * BLOBS);
    for (let i = 0; i < BLOBS; i++) entries[i * BLOB_ENTRY_BYTES] = 0;
    const settle = async () => {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 100)); // array buffers are freed a moment later
      gc();
    };
    await settle();
    const before = process.memoryUsage();
    const index = new BlobIndex();
    const built = await timed(async () => {
      for (let p = 0; p < BLOBS; p += 64) index.addEntries(entries!.subarray(p * BLOB_ENTRY_BYTES, (p + 64) * BLOB_ENTRY_BYTES), p >> 6);
      index.has('00'.repeat(32));
    });
    const inputBytes = entries.length;
    entries = undefined;
    await settle();
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers) + inputBytes;
    console.log(`in-memory index, ${BLOBS} blobs: ${(grown / BLOBS).toFixed(1)} bytes/blob measured (${(grown / 2 ** 20).toFixed(0)} MiB; table ${(index.tableBytes() / BLOBS).toFixed(1)}), built in ${built.cpu.toFixed(1)} s CPU`);

    const data = corpus(MIB);

    const chunking: { wall: number; cpu: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      chunking.push(await timed(async () => {
        for await (const _chunk of chunkStream(Readable.from(data))) void _chunk;
      }));
    }
    console.log(`chunker (FastCDC, 512 KiB/1 MiB/8 MiB), ${MIB} MiB: ${rate(MIB, chunking)}`);

    const saving: { wall: number; cpu: number }[] = [];
    const deduping: { wall: number; cpu: number }[] = [];
    const loading: { wall: number; cpu: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const uri = `file://${path.join(root, `store-${round}`)}`;
      const repository = new Repository(uri, openDriver(uri));
      await repository.init({ snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig() } });
      const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
      const gear = gearTableFor(cipher);
      const ids: string[] = [];
      const save = async (into: string[] | undefined) => {
        const store = await openBlobStore(repository, { cipher });
        for await (const chunk of chunkStream(Readable.from(data), { gear })) {
          const { id } = await store.save('data', chunk);
          into?.push(id);
        }
        await store.flush();
        await store.close();
      };
      saving.push(await timed(() => save(ids)));
      deduping.push(await timed(() => save(undefined)));
      loading.push(await timed(async () => {
        const store = await openBlobStore(repository, { cipher });
        for await (const _blob of store.loadMany(ids, { concurrency: 4 })) void _blob;
        await store.close();
      }));
      await repository.close();
    }
    console.log(`store save (chunk, id, zstd 3, pack, fs), new data: ${rate(MIB, saving)}`);
    console.log(`store save, all deduplicated: ${rate(MIB, deduping)}`);
    console.log(`store loadMany (fs): ${rate(MIB, loading)}`);

    // Opening a store whose index lists BLOBS blobs (one index object per 100,000 blobs).
    const uri = `file://${path.join(root, 'big-index')}`;
    const repository = new Repository(uri, openDriver(uri));
    await repository.init({ snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig() } });
    const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
    for (let first = 0; first < BLOBS; first += 100_000) {
      const packs: PackRecord[] = [];
      for (let p = first; p < Math.min(BLOBS, first + 100_000); p += 64) {
        const entries = Buffer.alloc(64 * BLOB_ENTRY_BYTES);
        for (let j = 0; j < 64; j++) writeBlobEntry(entries, j * BLOB_ENTRY_BYTES, { type: 'data', id: randomBytes(32).toString('hex'), offset: j * 1000, length: 1000, rawLength: 1000 });
        packs.push({ packId: randomBytes(32).toString('hex'), state: 'listed', at: Date.now(), deleteAfter: 0, size: 64 * 1000 + 100, entries });
      }
      const stored = encodeIndex({ supersedes: [], packs }, cipher);
      await repository.blobStorage().put(indexKey(randomBytes(32).toString('hex')), Readable.from([stored]), { size: stored.length });
    }
    gc();
    const rss0 = process.memoryUsage().rss;
    let blobCount = 0;
    const opened = await timed(async () => {
      const store = await openBlobStore(repository, { cipher });
      blobCount = store.blobCount;
      await store.close();
    });
    console.log(`open a store of ${blobCount} blobs: ${opened.wall.toFixed(1)} s wall, ${opened.cpu.toFixed(1)} s CPU, RSS +${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB`);
    await repository.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
