import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parseJobData } from '../jobs/validate.js';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { openSource } from '../shared/kinds/registry.js';
import { InvalidInputError } from '../shared/errors.js';
import { newSnapshotId } from '../shared/ids.js';
import { pruneSnapshots } from '../shared/pipeline/prune-snapshots.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import type { StorageDriver } from '../shared/storage/storage-driver.js';
import { formatPruneReport } from '../worker/commands/prune-report.js';

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'snapworker-prune-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A complete snapshot taken at `createdAt`: a small archive object, then its record. */
async function storeSnapshot(repository: Repository, source: string, createdAt: string, labels: Record<string, string> = {}): Promise<string> {
  const id = newSnapshotId(new Date(createdAt));
  const stored = await repository.putSnapshotObject(id, 'archive.tar', Readable.from([Buffer.from(`archive of ${source} at ${createdAt}`)]));
  const record: SnapshotRecord = {
    v: 1,
    id,
    formatVersion: 1,
    source: { kind: 'dir', uri: `dir:///data/${source}`, name: source },
    labels,
    createdAt,
    completedAt: createdAt,
    archive: { key: stored.key, compression: 'none', size: stored.size, sha256: stored.sha256, checksum: 'sha-256=' },
    stats: { entries: 1, files: 1, rawBytes: stored.size, storedBytes: stored.size, durationSeconds: 0 },
    tool: { name: 'snapworker', version: 'test' },
  };
  await repository.putRecord(record);
  return id;
}

async function freshRepository(name: string, wrap: (driver: StorageDriver) => StorageDriver = (d) => d): Promise<Repository> {
  return new Repository(name, wrap(new FsDriver({ root: path.join(root, name) })));
}

describe('prune with calendar retention', () => {
  it('keeps 2 daily snapshots per lineage in Prague time and lists every snapshot with keep or remove and why', async () => {
    const repository = await freshRepository('calendar');
    // 22:30 UTC is 00:30 the next day in Prague (CEST): three Prague days for "app", one for "db".
    const app = [
      await storeSnapshot(repository, 'app', '2026-06-01T08:00:00.000Z'),
      await storeSnapshot(repository, 'app', '2026-06-01T21:30:00.000Z'),
      await storeSnapshot(repository, 'app', '2026-06-01T22:30:00.000Z'),
      await storeSnapshot(repository, 'app', '2026-06-02T09:00:00.000Z'),
    ];
    const db = [await storeSnapshot(repository, 'db', '2026-06-01T08:30:00.000Z')];
    const request = {
      repository,
      policy: { keepDaily: 2, timeZone: 'Europe/Prague' },
      filter: {},
      signal: new AbortController().signal,
      now: new Date('2026-06-03T00:00:00Z'),
    };

    const dry = await pruneSnapshots({ ...request, dryRun: true });
    assert.deepEqual(
      dry.snapshots.map((s) => [s.group, s.id, s.action, s.reasons.join()]),
      [
        ['source=app', app[0], 'remove', ''],
        ['source=db', db[0], 'keep', 'daily snapshot'],
        ['source=app', app[1], 'keep', 'daily snapshot'],
        ['source=app', app[2], 'remove', ''],
        ['source=app', app[3], 'keep', 'daily snapshot'],
      ],
    );
    assert.equal((await repository.list()).length, 5, 'a dry run removes nothing');
    const report = formatPruneReport(dry);
    assert.match(report, /^Applying policy: keep 2 daily snapshots \(calendar in Europe\/Prague\)$/m);
    assert.match(report, new RegExp(`^  ${app[3]}  2026-06-02T09:00:00.000Z  daily snapshot$`, 'm'));
    assert.match(report, /would remove 2 snapshot\(s\)/);

    const real = await pruneSnapshots({ ...request, dryRun: false });
    assert.deepEqual(real.removed, [app[0], app[2]]);
    assert.deepEqual((await repository.list()).map((r) => r.id), [db[0], app[1], app[3]]);
  });

  it('groups by source and labels with --group-by, and keeps a labelled snapshot with keep-tag', async () => {
    const repository = await freshRepository('grouped');
    const shop = await storeSnapshot(repository, 'app', '2026-06-01T08:00:00.000Z', { tenant: 'shop' });
    const blogOld = await storeSnapshot(repository, 'app', '2026-06-01T09:00:00.000Z', { tenant: 'blog', pin: 'yes' });
    const blog = await storeSnapshot(repository, 'app', '2026-06-01T10:00:00.000Z', { tenant: 'blog' });
    const base = { repository, filter: {}, dryRun: true, signal: new AbortController().signal };
    const bySource = await pruneSnapshots({ ...base, policy: { keepLast: 1 } });
    assert.deepEqual(bySource.kept, [blog]);
    const byLabels = await pruneSnapshots({ ...base, policy: { keepLast: 1 }, groupBy: ['source', 'labels'] });
    assert.deepEqual(byLabels.kept, [shop, blogOld, blog]);
    const tagged = await pruneSnapshots({ ...base, policy: { keepLast: 1, keepTag: ['pin=yes'] } });
    assert.deepEqual(tagged.snapshots.filter((s) => s.action === 'keep').map((s) => [s.id, s.reasons.join()]), [
      [blogOld, 'has labels pin=yes'],
      [blog, 'last snapshot'],
    ]);
  });

  it("accepts today's v1 prune jobs unchanged and the new fields, and refuses bad ones in one line naming the field", () => {
    parseJobData('prune', { v: 1, keepLast: 7, keepWithin: '30d', incompleteGrace: '1h' });
    parseJobData('prune', { v: 1, keepWithin: '90m', keepWithinDaily: '1y2mo', keepDaily: 7, keepWeekly: 4, keepMonthly: 'unlimited' });
    parseJobData('prune', { v: 1, keepTag: ['app=shop,tier=gold'], groupBy: ['source', 'labels'], tz: 'Europe/Prague', keepYearly: 3 });
    parseJobData('prune', { v: 1, groupBy: [], keepHourly: 24 });
    for (const [data, field] of [
      [{ keepDaily: -1 }, 'keepDaily'],
      [{ keepWithinDaily: '1M' }, 'keepWithinDaily'],
      [{ tz: 'Mars/Olympus', keepDaily: 1 }, 'tz'],
      [{ keepTag: ['shop'] }, 'keepTag'],
      [{ groupBy: ['host'] }, 'groupBy'],
    ] as const) {
      assert.throws(
        () => parseJobData('prune', { v: 1, ...data }),
        (err: unknown) => err instanceof InvalidInputError && err.message.includes(field) && !err.message.includes('\n'),
      );
    }
  });
});

describe('prune racing a snapshot of the same lineage', () => {
  /** Runs `takeSnapshot` of a small directory, holding its record's put while `interleave` runs until it calls `commit`. */
  async function raceSnapshot(name: string, interleave: (race: { repository: Repository; previous: string; pending: string; commit: () => Promise<void> }) => Promise<void>) {
    let releaseRecord!: () => void;
    const recordMayGo = new Promise<void>((resolve) => (releaseRecord = resolve));
    let recordWaiting!: () => void;
    const recordReady = new Promise<void>((resolve) => (recordWaiting = resolve));
    let recordStored!: () => void;
    const recordDone = new Promise<void>((resolve) => (recordStored = resolve));
    const pending = newSnapshotId();
    // Holds the record's put until the test says, to force each interleaving a scheduler could produce.
    const repository = await freshRepository(name, (driver) => ({
      kind: driver.kind,
      get: (key, options) => driver.get(key, options),
      head: (key, options) => driver.head(key, options),
      list: (prefix, options) => driver.list(prefix, options),
      delete: (key, options) => driver.delete(key, options),
      async put(key, body, options) {
        if (!key.endsWith('/snapshot.json') || !key.includes(pending)) return driver.put(key, body, options);
        recordWaiting();
        await recordMayGo;
        try {
          return await driver.put(key, body, options);
        } finally {
          recordStored();
        }
      },
    }));
    const previous = await storeSnapshot(repository, 'app', new Date(Date.now() - 60_000).toISOString());
    const dir = path.join(root, `${name}-src`);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'file.txt'), 'data');
    const source = await openSource([`dir://${dir}`], { name: 'app' }, { checkPath: () => {}, stagingDir: root });
    const snapshot = takeSnapshot({ id: pending, source, repository, labels: {}, compression: 'none', signal: new AbortController().signal, progress: nullProgress });
    snapshot.catch(() => {});
    await recordReady;
    const commit = async () => {
      releaseRecord();
      await recordDone;
    };
    await interleave({ repository, previous, pending, commit });
    releaseRecord();
    const outcome = await snapshot.then(
      () => 'committed',
      (err: Error) => err.message,
    );
    return { repository, previous, pending, outcome };
  }

  const prune = (repository: Repository, dryRun = false) =>
    pruneSnapshots({ repository, policy: { keepLast: 1 }, filter: { source: 'app' }, incompleteGraceSeconds: 0, dryRun, signal: new AbortController().signal, now: new Date(Date.now() + 1000) });

  async function assertNewestIsWhole(repository: Repository, expected: string) {
    const records = await repository.list({ source: 'app' });
    assert.equal(records.at(-1)?.id, expected);
    for (const record of records) await repository.head(record.archive!.key); // every record has its archive
  }

  it('keeps a snapshot that commits after the listing: it is neither judged nor taken for debris', async () => {
    const { repository, previous, pending, outcome } = await raceSnapshot('race-commit-first', async ({ repository, previous, commit }) => {
      // prune lists, then the snapshot commits, then prune looks for incomplete snapshots
      const listed = await repository.list({ source: 'app' });
      assert.deepEqual(listed.map((r) => r.id), [previous]);
      await commit();
      const result = await prune(repository);
      assert.deepEqual(result.removedIncomplete, []);
    });
    assert.equal(outcome, 'committed');
    await assertNewestIsWhole(repository, pending);
  });

  it('withdraws the record of a snapshot whose archive a prune removed mid-commit, and the previous newest stays whole', async () => {
    const { repository, previous, pending, outcome } = await raceSnapshot('race-prune-first', async ({ repository, previous, pending, commit }) => {
      const result = await prune(repository);
      assert.deepEqual(result.removedIncomplete, [pending]);
      assert.deepEqual(result.kept, [previous]);
      await commit();
    });
    assert.match(outcome, /was removed while committing.*record withdrawn/);
    await assertNewestIsWhole(repository, previous);
  });
});
