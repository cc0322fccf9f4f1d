/**
 * Archive writer and reader throughput.
 *
 *   node --import tsx bench/archive.ts [--size-mib 1024] [--compression zstd|gzip|none]
 *                                      [--level 3] [--threads N] [--dir /some/tree]
 *
 * Without --dir it generates a mixed payload in memory (many small files, some medium, a few
 * large; data about as compressible as source code), writes the archive to a temp file, reads
 * and verifies it, and prints MiB/s of payload and the peak RSS. With --dir it archives that
 * directory tree instead and also times `tar -cf - | zstd -<level> -T0` on it for comparison.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, opendir, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { SourceEntry } from '../shared/snapshot/entry.js';
import { readArchive } from '../shared/formats/archive/archive-reader.js';
import { writeArchive } from '../shared/formats/archive/archive-writer.js';
import type { Compression } from '../shared/formats/archive/manifest.js';
import { nullProgress } from '../shared/progress.js';
import { pseudoRandomBytes, testManifest } from '../test/helpers/archive-fixtures.js';

const MiB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    compression: { type: 'string', default: 'zstd' },
    level: { type: 'string' },
    threads: { type: 'string' },
    dir: { type: 'string' },
  },
});
const compression = values.compression as Compression;
const level = values.level === undefined ? undefined : Number(values.level);
const threads = values.threads === undefined ? undefined : Number(values.threads);

/** A shared pool the generated files are slices of, so generating costs no memory per file. */
const POOL = pseudoRandomBytes(64 * MiB, 42);

/** Sizes cycle through many small files, some medium ones and a few large ones. */
function* generatedEntries(totalBytes: number): Generator<SourceEntry> {
  const sizes = [700, 3_000, 12_000, 40_000, 150_000, 1_500_000, 9_000_000, 48_000_000];
  const weights = [400, 300, 200, 100, 40, 8, 2, 1];
  const mtime = new Date('2025-01-01T00:00:00Z');
  yield { path: 'data', type: 'directory', mode: 0o755, mtime, size: 0 };
  let produced = 0;
  let index = 0;
  for (let round = 0; produced < totalBytes; round++) {
    yield { path: `data/d${round}`, type: 'directory', mode: 0o755, mtime, size: 0 };
    for (let kind = 0; kind < sizes.length && produced < totalBytes; kind++) {
      for (let n = 0; n < weights[kind]! && produced < totalBytes; n++) {
        const size = Math.min(sizes[kind]!, totalBytes - produced);
        const offset = (index * 7919 * 4096) % (POOL.length - size);
        const bytes = POOL.subarray(offset, offset + size);
        yield { path: `data/d${round}/f${index++}.bin`, type: 'file', mode: 0o644, mtime, size, open: () => Readable.from(chunks(bytes)) };
        produced += size;
      }
    }
  }
}

function* chunks(bytes: Buffer, size = 256 * 1024): Generator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** A directory tree as archive entries under `data/`, in directory-listing order. */
async function* directoryEntries(root: string): AsyncGenerator<SourceEntry> {
  const rootStat = await stat(root);
  yield { path: 'data', type: 'directory', mode: rootStat.mode & 0o7777, mtime: rootStat.mtime, size: 0 };
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.shift()!;
    for await (const dirent of await opendir(dir)) {
      const full = join(dir, dirent.name);
      const path = `data/${relative(root, full).split('\\').join('/')}`;
      const info = await lstat(full);
      if (info.isDirectory()) {
        yield { path, type: 'directory', mode: info.mode & 0o7777, mtime: info.mtime, size: 0 };
        pending.push(full);
      } else if (info.isSymbolicLink()) {
        const target = await readlink(full);
        if (target.startsWith('/') || target.includes('..')) continue; // the bench is not about link rules
        yield { path, type: 'symlink', mode: 0o777, mtime: info.mtime, size: 0, linkTarget: target };
      } else if (info.isFile()) {
        yield { path, type: 'file', mode: info.mode & 0o7777, mtime: info.mtime, size: info.size, open: () => createReadStream(full, { highWaterMark: readBufferBytes(info.size) }) };
      }
    }
  }
}

/**
 * fs streams allocate a whole highWaterMark per read: 256 KiB for a 2 KiB file makes small files
 * cost more than their bytes. Size the buffer to the file (plus one byte to see EOF in one read).
 */
function readBufferBytes(size: number): number {
  return Math.min(256 * 1024, Math.max(size + 1, 1024));
}

function report(label: string, bytes: number, ms: number): void {
  console.log(`${label.padEnd(28)} ${(bytes / MiB).toFixed(0).padStart(6)} MiB in ${(ms / 1000).toFixed(2).padStart(6)} s = ${((bytes / MiB) / (ms / 1000)).toFixed(0).padStart(5)} MiB/s`);
}

function peakRssMiB(): string {
  return `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'snapworker-bench-archive-'));
  const file = join(work, 'archive');
  try {
    const entries = values.dir ? directoryEntries(values.dir) : generatedEntries(Number(values['size-mib']) * MiB);
    const signal = new AbortController().signal;
    let started = performance.now();
    const { stream, done } = writeArchive({
      manifest: testManifest({ compression }),
      entries: (async function* () {
        yield* entries;
      })(),
      level,
      threads,
      signal,
      progress: nullProgress,
    });
    await pipeline(stream, createWriteStream(file));
    const stats = await done;
    const writeMs = performance.now() - started;
    const archiveBytes = (await stat(file)).size;
    console.log(`payload: ${stats.files} files, ${stats.entries} entries, ${(stats.rawBytes / MiB).toFixed(0)} MiB; ${compression} archive ${(archiveBytes / MiB).toFixed(0)} MiB (ratio ${(stats.rawBytes / archiveBytes).toFixed(2)})`);
    report('write (source -> file)', stats.rawBytes, writeMs);
    console.log(`peak RSS after write          ${peakRssMiB()}`);

    started = performance.now();
    const result = await readArchive(createReadStream(file, { highWaterMark: 256 * 1024 }), { signal });
    report('read + verify (file)', result.rawBytes, performance.now() - started);
    console.log(`peak RSS after read           ${peakRssMiB()}`);

    if (values.dir && compression === 'zstd') {
      started = performance.now();
      const stock = spawnSync('sh', ['-c', `tar -cf - -C "$1" . | zstd -${level ?? 3} -T0 -q > "$2"`, 'sh', values.dir, join(work, 'stock.tar.zst')]);
      if (stock.status !== 0) throw new Error(`stock tar | zstd failed: ${stock.stderr}`);
      const stockMs = performance.now() - started;
      report('stock tar | zstd -T0', stats.rawBytes, stockMs);
      console.log(`write speed vs stock: ${(stockMs / writeMs).toFixed(2)}x`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
