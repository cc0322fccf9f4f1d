/**
 * `npm run bench -- --encryption`: the cost of encryption at rest (docs/encryption.md), for both
 * snapshot formats: the archive format (an age file: ChaCha20-Poly1305 STREAM over the compressed
 * tar) and the chunked format (every blob sealed with AES-256-GCM). The same corpus is
 * snapshotted into, and restored from, a plain and an encrypted filesystem repository of each
 * format, in this process, plain and encrypted alternating in every round (which goes first
 * swaps each round, so neither always meets a warm page cache). Each run gets a fresh repository,
 * so a chunked snapshot stores every blob again instead of deduplicating against the last round.
 * Wall time and CPU-seconds (`process.cpuUsage`: every thread of the process, zstd's included)
 * per run, medians reported. The goal: encryption costs at most 10% of snapshot and restore
 * throughput; on a shared machine read the CPU-seconds, not the wall time.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { parseKeySource, type KeySource } from '../shared/crypto/key-source.js';
import { newChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { newSnapshotId } from '../shared/ids.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { restoreSnapshot } from '../shared/pipeline/restore-snapshot.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { median } from './median.js';

/** The snapshot formats measured, and what encrypts each. */
export const ENCRYPTION_BENCH_FORMATS = {
  archive: 'age file (ChaCha20-Poly1305, 64 KiB STREAM chunks) over the compressed tar',
  chunked: 'AES-256-GCM per blob (chunks, trees, pack headers, indexes)',
} as const;
type Format = keyof typeof ENCRYPTION_BENCH_FORMATS;
const MODES = ['plain', 'encrypted'] as const;
type Mode = (typeof MODES)[number];
const OPS = ['snapshot', 'restore'] as const;

export interface EncryptionFigure {
  format: Format;
  op: (typeof OPS)[number];
  /** Medians over the rounds, seconds. */
  plain: Sample;
  encrypted: Sample;
  /** Encrypted ÷ plain − 1 of the CPU-seconds and of the wall time, as fractions. */
  cpuOverhead: number;
  wallOverhead: number;
  /** Raw (uncompressed) bytes of the corpus as the snapshot counted them. */
  rawBytes: number;
}

interface Sample {
  wall: number;
  cpu: number;
}

async function measure(run: () => Promise<unknown>): Promise<Sample> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run();
  const used = process.cpuUsage(cpu);
  return { wall: (performance.now() - started) / 1000, cpu: (used.user + used.system) / 1e6 };
}

/**
 * Runs `rounds` rounds over `corpus`, scratch under `work` (removed after), each round a snapshot
 * and a restore per format and mode; `log` gets a line per run.
 * @returns one figure per format and operation (snapshot, restore): medians of both modes.
 */
export async function runEncryptionBench(options: {
  corpus: string;
  rounds: number;
  work: string;
  formats?: readonly Format[];
  log?: (line: string) => void;
}): Promise<EncryptionFigure[]> {
  const formats = options.formats ?? (Object.keys(ENCRYPTION_BENCH_FORMATS) as Format[]);
  const log = options.log ?? console.log;
  const signal = new AbortController().signal;
  const root = path.join(options.work, 'encryption');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const context: EndpointContext = { checkPath: () => {}, stagingDir: root };
  process.env.SNAPWORKER_BENCH_KEY = randomBytes(32).toString('hex');
  const keySources: Record<Mode, KeySource[]> = { plain: [], encrypted: [parseKeySource('env:SNAPWORKER_BENCH_KEY')] };
  const samples = new Map<string, Sample[]>();
  const push = (key: string, sample: Sample) => samples.set(key, [...(samples.get(key) ?? []), sample]);
  const rawBytes = new Map<Format, number>();
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const format of formats) {
        for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
          // A fresh repository per run: the chunked one must not deduplicate against an earlier round.
          const dir = path.join(root, `${format}-${mode}`);
          rmSync(dir, { recursive: true, force: true });
          const repository = new Repository(`${format}-${mode}`, new FsDriver({ root: dir }), undefined, keySources[mode]);
          await repository.init(format === 'chunked' ? { snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig({ plain: mode === 'plain' }) } } : {});
          let record: SnapshotRecord | undefined;
          const snapshot = await measure(async () => {
            const source = createDirSource([new URL(`dir://${options.corpus}`)], { name: 'corpus' }, context);
            record = await takeSnapshot({
              id: newSnapshotId(),
              source,
              repository,
              labels: {},
              compression: 'zstd',
              level: 3,
              threads: availableParallelism(),
              signal,
              progress: nullProgress,
              ...(format === 'chunked' ? { parent: false as const } : {}),
            });
          });
          rawBytes.set(format, record!.stats.rawBytes);
          const target = path.join(root, `restore-${format}-${mode}`);
          const restore = await measure(() =>
            restoreSnapshot({ repository, record: record!, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, signal, progress: nullProgress }),
          );
          push(`${format} ${mode} snapshot`, snapshot);
          push(`${format} ${mode} restore`, restore);
          rmSync(target, { recursive: true, force: true });
          rmSync(dir, { recursive: true, force: true });
          log(
            `round ${round + 1} ${format} ${mode}: snapshot ${snapshot.cpu.toFixed(2)} CPU-s ${snapshot.wall.toFixed(2)} s wall, ` +
              `restore ${restore.cpu.toFixed(2)} CPU-s ${restore.wall.toFixed(2)} s wall`,
          );
        }
      }
    }
  } finally {
    delete process.env.SNAPWORKER_BENCH_KEY;
    rmSync(root, { recursive: true, force: true });
  }
  const medianOf = (key: string): Sample => {
    const runs = samples.get(key)!;
    return { wall: median(runs.map((s) => s.wall)), cpu: median(runs.map((s) => s.cpu)) };
  };
  return formats.flatMap((format) =>
    OPS.map((op) => {
      const plain = medianOf(`${format} plain ${op}`);
      const encrypted = medianOf(`${format} encrypted ${op}`);
      return { format, op, plain, encrypted, cpuOverhead: encrypted.cpu / plain.cpu - 1, wallOverhead: encrypted.wall / plain.wall - 1, rawBytes: rawBytes.get(format)! };
    }),
  );
}

/** The figures as a Markdown table: CPU-seconds first (the figure a shared machine keeps), then wall time and throughput. */
export function encryptionTable(figures: readonly EncryptionFigure[]): string {
  const percent = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const wall = (s: Sample, raw: number) => `${s.wall.toFixed(2)} s (${(raw / 2 ** 20 / s.wall).toFixed(0)} MiB/s)`;
  return [
    '| format | operation | plain CPU-s | encrypted CPU-s | CPU overhead | plain wall | encrypted wall | wall overhead |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...figures.map(
      (f) =>
        `| ${f.format} | ${f.op} | ${f.plain.cpu.toFixed(2)} | ${f.encrypted.cpu.toFixed(2)} | ${percent(f.cpuOverhead)} | ${wall(f.plain, f.rawBytes)} | ${wall(f.encrypted, f.rawBytes)} | ${percent(f.wallOverhead)} |`,
    ),
  ].join('\n');
}

/** CPU-seconds of the ciphers alone, plain beside encrypted (medians): steadier than whole runs on a shared machine. */
export interface CipherAloneFigure {
  what: string;
  plain: number;
  encrypted: number;
}

/**
 * The ciphers without the rest of a snapshot: `mib` MiB of 2 MiB pieces (zstd frames' size)
 * stored through `FsDriver.put` plain and through the age stream, read back through
 * `FsDriver.get` plain and through the age stream (64 KiB reads); and `blobs` small blobs
 * (0.2-8 KiB) plus `mib` / 2 blobs of 1 MiB sealed and opened with the AES-256-GCM blob cipher
 * (plain: the plain cipher's identity). `reps` repetitions, scratch under `work` (removed after).
 */
export async function measureCiphersAlone(options: { work: string; mib?: number; blobs?: number; reps?: number }): Promise<CipherAloneFigure[]> {
  const { AgeDecryptStream, AgeEncryptStream } = await import('../shared/crypto/age-stream.js');
  const { AeadBlobCipher } = await import('../shared/crypto/aead-cipher.js');
  const { PlainCipher } = await import('../shared/crypto/plain-cipher.js');
  const { generateX25519Identity, identityToRecipient } = await import('age-encryption');
  const { Readable, Writable } = await import('node:stream');
  const { pipeline } = await import('node:stream/promises');
  const mib = options.mib ?? 96;
  const reps = options.reps ?? 7;
  const root = path.join(options.work, 'ciphers-alone');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const driver = new FsDriver({ root });
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const piece = randomBytes(2 << 20);
  const pieces = () => Readable.from(Array.from({ length: Math.ceil(mib / 2) }, () => piece));
  const sink = () => new Writable({ write: (_chunk, _encoding, done) => done() });
  const blobs = [
    ...Array.from({ length: options.blobs ?? 10_000 }, (_, i) => randomBytes(200 + ((i * 7919) % 8000))),
    ...Array.from({ length: Math.ceil(mib / 2) }, () => randomBytes(1 << 20)),
  ];
  const aad = randomBytes(32);
  const ciphers = { plain: new PlainCipher(randomBytes(32)), encrypted: new AeadBlobCipher('bench', randomBytes(32), randomBytes(32)) };
  const runs = new Map<string, number[]>();
  const record = async (key: string, run: () => Promise<unknown> | unknown) => runs.set(key, [...(runs.get(key) ?? []), (await measure(async () => run())).cpu]);
  try {
    for (let rep = 0; rep < reps; rep++) {
      await record('put plain', () => driver.put('plain', pieces()));
      await record('put encrypted', () => driver.put('sealed', pieces().pipe(new AgeEncryptStream(recipient, identity))));
      await record('get plain', async () => pipeline(await driver.get('plain'), sink()));
      await record('get encrypted', async () => pipeline(await driver.get('sealed'), new AgeDecryptStream(identity, 'bench'), sink()));
      for (const mode of MODES) {
        let sealed: Buffer[] = [];
        await record(`seal ${mode}`, () => (sealed = blobs.map((blob) => ciphers[mode].seal(blob, aad))));
        await record(`open ${mode}`, () => sealed.forEach((blob) => ciphers[mode].open(blob, aad)));
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const what = {
    put: `archive: store ${mib} MiB through FsDriver.put (age stream)`,
    get: `archive: read ${mib} MiB back through FsDriver.get (age stream)`,
    seal: `chunked: seal ${blobs.length} blobs (AES-256-GCM)`,
    open: `chunked: open them`,
  };
  return Object.entries(what).map(([key, label]) => ({ what: label, plain: median(runs.get(`${key} plain`)!), encrypted: median(runs.get(`${key} encrypted`)!) }));
}
