/**
 * `npm run bench -- --catalog`: the catalog at scale (issue 16). Writes N snapshot records (100
 * lineages, default 100,000 records) and their index straight through `Repository` (no archives:
 * the catalog reads records and index objects only), once on the filesystem driver and once on
 * s3rver (a child process, so its CPU is not counted as ours), then times on a fresh `Repository`
 * each round (nothing cached):
 *
 * - `latest --source X`: `resolve('latest', { source })`, the index of one lineage plus its record;
 * - `ls --source X`: `index.snapshots({ source })` of a lineage of N/100 snapshots;
 * - `ls` of everything from the index;
 * - on the filesystem only, `ls --source X` the way it was before the index (every record read).
 *
 * Each lineage's index is written as 10 objects (between compactions a lineage holds 1 to 16).
 */
import { Readable } from 'node:stream';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Repository } from '../shared/catalog/repository.js';
import { summarize } from '../shared/catalog/snapshot-summary.js';
import { mapOrdered } from '../shared/fsutil/map-ordered.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { fakeRecord } from '../test/helpers/catalog-records.js';
import { startS3rverProcess } from './s3.js';

const LINEAGES = 100;
const OBJECTS_PER_LINEAGE = 10;
const WRITE_CONCURRENCY = 32;

export interface CatalogBenchOptions {
  /** Records in all (split evenly over 100 lineages). */
  snapshots: number;
  rounds: number;
  /** Scratch directory for the filesystem repository. */
  work: string;
}

/** One line of the catalog table. */
export interface CatalogFigure {
  figure: string;
  fs: string;
  s3: string;
  goal: string;
}

interface Timing {
  medianMs: number;
  maxMs: number;
}

/** Runs the catalog bench on both drivers; resolves with its table rows and the setup times. */
export async function runCatalogBench(options: CatalogBenchOptions): Promise<{ figures: CatalogFigure[]; notes: string[] }> {
  const perLineage = Math.max(1, Math.floor(options.snapshots / LINEAGES));
  const lineage = `app-${String(LINEAGES / 2).padStart(3, '0')}`;
  const fsRoot = path.join(options.work, 'catalog-repo');
  rmSync(fsRoot, { recursive: true, force: true });
  mkdirSync(options.work, { recursive: true });
  const server = await startS3rverProcess('catalog');
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
  const uris = {
    fs: `file://${fsRoot}`,
    s3: `s3://${server.bucket}/bench?endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1&forcePathStyle=true&checksum=when_required`,
  };
  const results: Record<'fs' | 's3', Record<string, Timing>> = { fs: {}, s3: {} };
  const notes: string[] = [];
  try {
    for (const backend of ['fs', 's3'] as const) {
      const uri = uris[backend];
      const started = Date.now();
      await populate(uri, perLineage);
      const seconds = (Date.now() - started) / 1000;
      notes.push(`${backend}: wrote ${perLineage * LINEAGES} records and ${LINEAGES * OBJECTS_PER_LINEAGE} index objects in ${seconds.toFixed(0)} s`);
      console.log(`catalog ${backend}: ${notes.at(-1)}`);
      const fresh = () => new Repository(backend, openDriver(uri));
      results[backend].latest = await time(options.rounds, fresh, async (r) => {
        await r.resolve('latest', { source: lineage });
      });
      results[backend].lsSource = await time(options.rounds, fresh, async (r) => {
        const listed = await r.index.snapshots({ source: lineage });
        if (listed.length !== perLineage) throw new Error(`ls --source ${lineage} listed ${listed.length}, expected ${perLineage}`);
      });
      results[backend].lsAll = await time(options.rounds, fresh, async (r) => {
        const listed = await r.index.snapshots();
        if (listed.length !== perLineage * LINEAGES) throw new Error(`ls listed ${listed.length}, expected ${perLineage * LINEAGES}`);
      });
      if (backend === 'fs') {
        // Before the index: every record read (one round; it is the slow path being replaced).
        results.fs.lsRecords = await time(1, fresh, async (r) => {
          await r.list({ source: lineage });
        });
      }
      console.log(`catalog ${backend}:`, JSON.stringify(results[backend]));
    }
  } finally {
    await server.stop();
    rmSync(fsRoot, { recursive: true, force: true });
  }
  const show = (t: Timing | undefined) => (t ? `${formatMs(t.medianMs)} (max ${formatMs(t.maxMs)})` : '—');
  const total = perLineage * LINEAGES;
  return {
    figures: [
      { figure: `latest --source X (${total.toLocaleString('en')} snapshots)`, fs: show(results.fs.latest), s3: show(results.s3.latest), goal: 'fs < 200 ms, s3 < 2 s' },
      { figure: `ls --source X (${perLineage.toLocaleString('en')}-snapshot lineage)`, fs: show(results.fs.lsSource), s3: show(results.s3.lsSource), goal: 'fs < 1 s, s3 < 2 s' },
      { figure: `ls, every lineage from the index (${total.toLocaleString('en')})`, fs: show(results.fs.lsAll), s3: show(results.s3.lsAll), goal: '' },
      { figure: 'ls --source X reading every record (before the index)', fs: show(results.fs.lsRecords), s3: 'not run', goal: '' },
    ],
    notes,
  };
}

/** Writes the records (32 at a time) and, per lineage, its index as 10 objects. */
async function populate(uri: string, perLineage: number): Promise<void> {
  const driver = openDriver(uri);
  try {
    const repository = new Repository('bench', driver);
    await repository.init();
    const base = Date.parse('2026-01-01T00:00:00Z');
    const lineages = Array.from({ length: LINEAGES }, (_, i) => `app-${String(i).padStart(3, '0')}`);
    for await (const _ of mapOrdered(lineages, 4, async (lineage) => {
      const records = Array.from({ length: perLineage }, (_, n) => fakeRecord(lineage, { app: lineage, env: n % 2 ? 'prod' : 'test' }, new Date(base + n * 3_600_000)));
      for await (const _put of mapOrdered(records, WRITE_CONCURRENCY / 4, async (record) => {
        const body = Buffer.from(JSON.stringify(record, null, 2) + '\n');
        await driver.put(repository.recordKey(record.id), Readable.from([body]), { size: body.length });
      }));
      const chunk = Math.ceil(records.length / OBJECTS_PER_LINEAGE);
      for (let i = 0; i < records.length; i += chunk) await repository.index.append(lineage, records.slice(i, i + chunk).map(summarize), []);
    }));
  } finally {
    await driver.close?.();
  }
}

/** Median and max of `rounds` runs of `work`, each on a fresh repository (closed after). */
async function time(rounds: number, fresh: () => Repository, work: (repository: Repository) => Promise<void>): Promise<Timing> {
  const runs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const repository = fresh();
    try {
      const started = process.hrtime.bigint();
      await work(repository);
      runs.push(Number(process.hrtime.bigint() - started) / 1e6);
    } finally {
      await repository.driver.close?.();
    }
  }
  runs.sort((a, b) => a - b);
  return { medianMs: runs[runs.length >> 1]!, maxMs: runs.at(-1)! };
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}
