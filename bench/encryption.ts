/**
 * `npm run bench -- --encryption`: the cost of encryption at rest (docs/encryption.md). The same
 * corpus is snapshotted into, and restored from, a plain and an encrypted filesystem repository,
 * in this process, alternating plain and encrypted in every round; wall time and CPU-seconds
 * (`process.cpuUsage`, every thread of the process: zstd's too) per run, medians reported. The
 * goal: encryption costs at most 10% of snapshot and restore throughput.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Repository } from '../shared/catalog/repository.js';
import { parseKeySource } from '../shared/crypto/key-source.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { newSnapshotId } from '../shared/ids.js';
import { restoreSnapshot } from '../shared/pipeline/restore-snapshot.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { median } from './median.js';

export interface EncryptionFigure {
  figure: string;
  plain: string;
  encrypted: string;
  /** Encrypted ÷ plain − 1, as a percentage. */
  overhead: string;
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
 * Runs `rounds` rounds over `corpus`, scratch under `work`.
 * @returns one row per figure (snapshot and restore, wall and CPU), and the raw bytes read.
 */
export async function runEncryptionBench(options: { corpus: string; rounds: number; work: string }): Promise<EncryptionFigure[]> {
  const signal = new AbortController().signal;
  const root = path.join(options.work, 'encryption');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const context: EndpointContext = { checkPath: () => {}, stagingDir: root };
  process.env.SNAPWORKER_BENCH_KEY = randomBytes(32).toString('hex');
  const modes = {
    plain: new Repository('plain', new FsDriver({ root: path.join(root, 'plain') })),
    encrypted: new Repository('encrypted', new FsDriver({ root: path.join(root, 'encrypted') }), undefined, [parseKeySource('env:SNAPWORKER_BENCH_KEY')]),
  };
  for (const repository of Object.values(modes)) await repository.init();
  const samples = { plain: { snapshot: [] as Sample[], restore: [] as Sample[] }, encrypted: { snapshot: [] as Sample[], restore: [] as Sample[] } };
  let rawBytes = 0;
  for (let round = 0; round < options.rounds; round++) {
    // Alternate which goes first, so neither always meets a warm page cache.
    const order = round % 2 === 0 ? (['plain', 'encrypted'] as const) : (['encrypted', 'plain'] as const);
    for (const mode of order) {
      const repository = modes[mode];
      let record: SnapshotRecord | undefined;
      samples[mode].snapshot.push(
        await measure(async () => {
          const source = createDirSource([new URL(`dir://${options.corpus}`)], { name: 'corpus' }, context);
          record = await takeSnapshot({ id: newSnapshotId(), source, repository, labels: {}, compression: 'zstd', level: 3, threads: availableParallelism(), signal, progress: nullProgress });
        }),
      );
      rawBytes = record!.stats.rawBytes;
      const target = path.join(root, `restore-${mode}`);
      samples[mode].restore.push(
        await measure(() => restoreSnapshot({ repository, record: record!, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, signal, progress: nullProgress })),
      );
      rmSync(target, { recursive: true, force: true });
      await repository.delete(record!.id);
      console.log(`round ${round + 1} ${mode}: snapshot ${samples[mode].snapshot.at(-1)!.wall.toFixed(2)} s wall, restore ${samples[mode].restore.at(-1)!.wall.toFixed(2)} s wall`);
    }
  }
  delete process.env.SNAPWORKER_BENCH_KEY;
  rmSync(root, { recursive: true, force: true });
  const mib = rawBytes / 2 ** 20;
  const rows: EncryptionFigure[] = [];
  for (const op of ['snapshot', 'restore'] as const) {
    for (const measureOf of ['wall', 'cpu'] as const) {
      const plain = median(samples.plain[op].map((s) => s[measureOf]));
      const encrypted = median(samples.encrypted[op].map((s) => s[measureOf]));
      const unit = measureOf === 'wall' ? 's wall' : 'CPU-s';
      rows.push({
        figure: `${op}, ${measureOf === 'wall' ? 'wall time' : 'CPU-seconds'}`,
        plain: `${plain.toFixed(2)} ${unit}${measureOf === 'wall' ? ` (${(mib / plain).toFixed(0)} MiB/s)` : ''}`,
        encrypted: `${encrypted.toFixed(2)} ${unit}${measureOf === 'wall' ? ` (${(mib / encrypted).toFixed(0)} MiB/s)` : ''}`,
        overhead: `${((encrypted / plain - 1) * 100).toFixed(1)}%`,
      });
    }
  }
  return rows;
}
