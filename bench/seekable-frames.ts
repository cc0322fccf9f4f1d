/**
 * Seekable zstd frames against one multithreaded zstd stream: compressed size, CPU-seconds and
 * wall time for a tar file, at several frame sizes (docs/archive-format.md, "Frames").
 * Run: node --import tsx bench/seekable-frames.ts <file.tar> [rounds]
 * The tar used for the documented figures: the first 300 MB of linux-source-6.1's tar
 * (`xz -dc /usr/src/linux-source-6.1.tar.xz | head -c 300000000`).
 */
import { createReadStream } from 'node:fs';
import type { Transform } from 'node:stream';
import { CompressStream } from 'zstd-napi';
import { SeekableZstdCompressStream } from '../shared/formats/archive/seekable/frame-compressor.js';

const [file, roundsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: bench/seekable-frames.ts <file.tar> [rounds]');
const rounds = Number(roundsArg ?? 3);
const threads = 2;

async function measure(make: () => Transform): Promise<{ bytes: number; cpu: number; wall: number }> {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const stream = make();
  let bytes = 0;
  const counting = (async () => {
    for await (const chunk of stream as AsyncIterable<Buffer>) bytes += chunk.length;
  })();
  for await (const chunk of createReadStream(file!, { highWaterMark: 1024 * 1024 })) {
    if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve));
  }
  stream.end();
  await counting;
  const cpu = process.cpuUsage(cpu0);
  return { bytes, cpu: (cpu.user + cpu.system) / 1e6, wall: (performance.now() - wall0) / 1000 };
}

const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;
const variants: [string, () => Transform][] = [
  ['one stream, nbWorkers 2 (before)', () => new CompressStream({ compressionLevel: 3, nbWorkers: threads, checksumFlag: true })],
  ...[1, 2, 4, 8].map((mib): [string, () => Transform] => [`frames of ${mib} MiB, 2 threads`, () => new SeekableZstdCompressStream({ level: 3, threads, frameBytes: mib * 1024 * 1024 })]),
];
const results = new Map<string, { bytes: number; cpu: number[]; wall: number[] }>();
for (let round = 0; round < rounds; round += 1) {
  // Alternate variants within each round, so load from others spreads over all of them.
  for (const [name, make] of variants) {
    const r = await measure(make);
    const entry = results.get(name) ?? { bytes: r.bytes, cpu: [], wall: [] };
    entry.cpu.push(r.cpu);
    entry.wall.push(r.wall);
    results.set(name, entry);
  }
}
const base = results.values().next().value!.bytes;
for (const [name, r] of results) {
  console.log(`${name.padEnd(34)} ${String(r.bytes).padStart(11)} B (${(((r.bytes - base) / base) * 100).toFixed(2).padStart(5)}%)  cpu ${median(r.cpu).toFixed(2)} s  wall ${median(r.wall).toFixed(2)} s`);
}
