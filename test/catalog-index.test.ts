import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { INDEX_MARKER_KEY, lineagePrefix } from '../shared/catalog/index-layout.js';
import { listIndexFolders } from '../shared/catalog/index-store.js';
import { Repository } from '../shared/catalog/repository.js';
import { summarize } from '../shared/catalog/snapshot-summary.js';
import { pruneSnapshots } from '../shared/pipeline/prune-snapshots.js';
import { openDriver } from '../shared/storage/open-driver.js';
import type { StorageDriver } from '../shared/storage/storage-driver.js';
import { commitFakeSnapshots, fakeRecord } from './helpers/catalog-records.js';
import { cli } from './helpers/cli.js';
import { storageBackends } from './helpers/storage-backends.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';

const run = promisify(execFile);

const storage = storageBackends('snapworker-catalog-');
/** The drivers every test runs against: the filesystem and s3rver, each on a fresh root. */
const BACKENDS = storage.uris;

const ids = (snapshots: ReadonlyArray<{ id: string }>) => snapshots.map((s) => s.id);
const sorted = (values: string[]) => [...values].sort();

/** The index objects and pending markers of one lineage, as listed. */
async function lineageObjects(driver: StorageDriver, lineage: string) {
  const folder = (await listIndexFolders(driver, lineagePrefix(lineage))).get(lineagePrefix(lineage));
  return { objects: folder?.objects.length ?? 0, pending: folder?.pending.map((p) => p.id) ?? [] };
}

/** Fails every put of an index object (not of pending markers) while `failing` is set: a crash between record and index. */
function failingIndexAppends(driver: StorageDriver): { driver: StorageDriver; failing: { on: boolean } } {
  const failing = { on: false };
  const indexObject = /^index\/[0-9a-f]{16}\/\d{8}T/;
  const wrapped: StorageDriver = Object.create(driver, {
    put: {
      value: (key: string, body: Readable, options: object) => {
        if (failing.on && indexObject.test(key)) return Promise.reject(new Error(`simulated crash before ${key}`));
        return driver.put(key, body, options);
      },
    },
    // On a filesystem the index entry of a commit is its pending marker renamed: the same crash.
    ...(driver.rename
      ? {
          rename: {
            value: (from: string, to: string, options: object) => {
              if (failing.on && indexObject.test(to)) return Promise.reject(new Error(`simulated crash before ${to}`));
              return driver.rename!(from, to, options);
            },
          },
        }
      : {}),
  });
  return { driver: wrapped, failing };
}

for (const [backend, newUri] of Object.entries(BACKENDS)) {
  describe(`the catalog index on ${backend}`, () => {
    const drivers: StorageDriver[] = [];
    const open = (uri: string) => {
      const driver = openDriver(uri);
      drivers.push(driver);
      return driver;
    };
    after(async () => {
      for (const driver of drivers) await driver.close?.();
    });

    it('loses no entry when two processes and many concurrent commits append and compact the same lineage', { timeout: 300_000 }, async () => {
      const uri = newUri();
      const repository = new Repository(uri, open(uri), { compactAt: 4 });
      await repository.init();
      const child = (n: number) => run(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'test', 'helpers', 'catalog-writer-child.ts'), uri, 'app', String(n), '4'], { cwd: PROJECT_ROOT });
      const [first, second, here] = await Promise.all([child(30), child(30), commitFakeSnapshots(repository, 'app', 30, 10)]);
      const committed = sorted([...JSON.parse(first.stdout), ...JSON.parse(second.stdout), ...here]);
      assert.equal(committed.length, 90);

      const reader = new Repository(uri, open(uri));
      assert.deepEqual(ids(await reader.index.snapshots({ source: 'app' })), committed, 'every commit is listed once, oldest first');
      assert.deepEqual(ids(await reader.list({ source: 'app' })), committed, 'and agrees with the records');
      const before = await lineageObjects(reader.driver, 'app');
      assert.ok(before.objects <= 4 + 3 * 8, `compaction kept the lineage short (${before.objects} objects)`);
      assert.deepEqual(before.pending, [], 'no commit left pending');

      await reader.index.compact('app');
      assert.deepEqual(await lineageObjects(reader.driver, 'app'), { objects: 1, pending: [] });
      assert.deepEqual(ids(await reader.index.snapshots({ source: 'app' })), committed);
    });

    it('finds a record whose index append never happened (a crash after the record), and compaction writes it in', async () => {
      const uri = newUri();
      const { driver, failing } = failingIndexAppends(open(uri));
      const repository = new Repository(uri, driver);
      await repository.init();
      const [older] = await commitFakeSnapshots(repository, 'db', 1, 1);
      const crashed = fakeRecord('db', { env: 'prod' });
      failing.on = true;
      await assert.rejects(repository.putRecord(crashed), /simulated crash/);
      failing.on = false;
      assert.equal(await repository.hasRecord(crashed.id), true, 'the record was written');
      assert.deepEqual((await lineageObjects(driver, 'db')).pending, [crashed.id], 'its pending marker is left');

      const reader = new Repository(uri, open(uri));
      assert.deepEqual(ids(await reader.index.snapshots({ source: 'db' })), [older, crashed.id]);
      assert.equal((await reader.resolve('latest', { source: 'db' })).id, crashed.id);
      assert.equal((await reader.resolve('latest', { labels: { env: 'prod' } })).id, crashed.id, 'latest by label reads every lineage');

      const [result] = await reader.index.compact('db');
      assert.deepEqual(result?.healed, [crashed.id]);
      assert.deepEqual(await lineageObjects(driver, 'db'), { objects: 1, pending: [] });
      assert.deepEqual(ids(await reader.index.snapshots({ source: 'db' })), [older, crashed.id]);
    });

    it('lists a commit once when a compaction settled its pending marker before the commit could make it its index entry', async () => {
      const uri = newUri();
      const inner = open(uri);
      // A compaction in another process folds in the pending commit (its record exists) and
      // deletes the marker just before this commit renames it.
      const driver: StorageDriver = Object.create(inner, {
        rename: { value: inner.rename && (async (from: string, to: string, options: object) => {
          await inner.delete(from);
          return inner.rename!(from, to, options);
        }) },
      });
      const repository = new Repository(uri, driver);
      await repository.init();
      const [id] = await commitFakeSnapshots(repository, 'api', 1, 1);
      assert.deepEqual(ids(await new Repository(uri, open(uri)).index.snapshots({ source: 'api' })), [id]);
      assert.deepEqual(await lineageObjects(inner, 'api'), { objects: 1, pending: [] });
    });

    it('hides removed snapshots at once; compaction drops entries whose record is gone and restores a removal that died before the record delete', async () => {
      const uri = newUri();
      const repository = new Repository(uri, open(uri));
      await repository.init();
      const [a, b, c, d] = await commitFakeSnapshots(repository, 'web', 4, 1);

      await repository.delete(a!);
      assert.equal(await repository.hasRecord(a!), false);
      // A remover that died after its tombstone: the record is still there.
      const recordOfB = await repository.getRecord(b!);
      await repository.index.forget([summarize(recordOfB)]);
      // A record deleted behind snapworker's back.
      await repository.driver.delete(repository.recordKey(d!));

      assert.deepEqual(ids(await repository.index.snapshots({ source: 'web' })), [c, d], 'a tombstone hides at once');
      assert.equal((await repository.resolve('latest', { source: 'web' })).id, c, 'latest passes over an entry without its record');

      const young = await repository.index.compact('web');
      assert.deepEqual(young[0]?.restored, [], 'a young tombstone is carried over: its removal may be under way');
      assert.deepEqual(young[0]?.dropped, [d]);

      const graceOver = new Repository(uri, repository.driver, { graceSeconds: 0 });
      const [settled] = await graceOver.index.compact('web');
      assert.deepEqual(settled?.restored, [b], 'the record is the truth once the grace is over');
      assert.deepEqual(ids(await graceOver.index.snapshots({ source: 'web' })), [b, c]);
      assert.deepEqual(await lineageObjects(repository.driver, 'web'), { objects: 1, pending: [] });
    });

    it('rebuilds the index from the records, including records it never saw, while commits go on', { timeout: 300_000 }, async () => {
      const uri = newUri();
      const repository = new Repository(uri, open(uri), { compactAt: 4 });
      await repository.init();
      const early = await commitFakeSnapshots(repository, 'app', 10, 5);
      // A record copied in without the index (another tool, an older version).
      const stranger = fakeRecord('other', { app: 'shop' });
      const body = Buffer.from(JSON.stringify(stranger));
      await repository.driver.put(repository.recordKey(stranger.id), Readable.from([body]), { size: body.length });
      assert.deepEqual(await repository.index.snapshots({ source: 'other' }), []);

      const [late, result] = await Promise.all([commitFakeSnapshots(repository, 'app', 20, 4), repository.index.rebuild()]);
      assert.ok(result.snapshots >= 11, `the rebuild read the records (${result.snapshots})`);
      assert.deepEqual(ids(await repository.index.snapshots({ source: 'app' })), sorted([...early, ...late]), 'no commit during the rebuild is lost');
      assert.deepEqual(ids(await repository.index.snapshots({ source: 'other' })), [stranger.id]);
      assert.deepEqual(ids(await repository.index.snapshots({ labels: { app: 'shop' } })), [stranger.id]);
    });

    it('indexes a repository made before the index on its first read', async () => {
      const uri = newUri();
      const repository = new Repository(uri, open(uri));
      const committed = sorted(await commitFakeSnapshots(repository, 'old', 5, 5));
      for await (const object of repository.driver.list('index/')) await repository.driver.delete(object.key);
      await assert.rejects(repository.driver.head(INDEX_MARKER_KEY));

      const reader = new Repository(uri, open(uri));
      assert.deepEqual(ids(await reader.index.snapshots({ source: 'old' })), committed);
      await reader.driver.head(INDEX_MARKER_KEY); // written by that first read
    });

    it('prune racing commits of the same lineage never removes the newest complete snapshot', { timeout: 300_000 }, async () => {
      const uri = newUri();
      const repository = new Repository(uri, open(uri), { compactAt: 4 });
      await repository.init();
      let newestCommitted: string | undefined;
      let committing = true;
      const start = Date.now();
      const writer = (async () => {
        for (let i = 0; i < 40; i++) {
          // A second apart, so the order of commits is the order of ids and of creation times.
          const record = fakeRecord('race', {}, new Date(start + i * 1000));
          await repository.putRecord(record);
          newestCommitted = record.id;
        }
        committing = false;
      })();
      const pruner = new Repository(uri, open(uri), { compactAt: 4 });
      let prunes = 0;
      writer.catch(() => {}); // awaited below; a failed assertion must not leave it unhandled
      while (committing) {
        const newestBefore = newestCommitted;
        const result = await pruneSnapshots({ repository: pruner, policy: { keepLast: 1 }, filter: { source: 'race' }, dryRun: false, signal: AbortSignal.timeout(120_000) });
        prunes++;
        // What was newest when prune started is kept, or a newer commit it saw is.
        if (newestBefore) assert.ok(result.kept.some((id) => id >= newestBefore), `prune ${prunes} kept nothing as new as ${newestBefore}`);
        // A commit whose record is written counts as complete before its putRecord returns.
        const newestNow = newestCommitted;
        const newestLeft = (await pruner.list({ source: 'race' })).at(-1)?.id;
        if (newestNow) assert.ok(newestLeft !== undefined && newestLeft >= newestNow, `prune ${prunes} removed the newest complete snapshot ${newestNow}`);
      }
      await writer;
      assert.ok(prunes >= 2, `prune ran while commits went on (${prunes} times)`);
      const left = await pruner.list({ source: 'race' });
      assert.equal(left.at(-1)?.id, newestCommitted, 'the newest commit survives');
      assert.deepEqual(ids(await pruner.index.snapshots({ source: 'race' })), ids(left), 'index and records agree');
    });
  });
}

describe('ls --group-by', () => {
  it('prints one table per label value (a group for snapshots without the label), as JSON or text, and refuses an unknown key', async () => {
    const dir = path.join(storage.root(), 'grouped');
    const repository = new Repository('grouped', openDriver(`file://${dir}`));
    await repository.init();
    const shop = [fakeRecord('web', { app: 'shop' }), fakeRecord('db', { app: 'shop', env: 'prod' })];
    const blog = fakeRecord('web', { app: 'blog' });
    const bare = fakeRecord('misc');
    for (const record of [...shop, blog, bare]) await repository.putRecord(record);

    const json = await cli(['ls', '--repo', `file://${dir}`, '--group-by', 'label:app', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const groups = (JSON.parse(json.stdout) as Array<{ group: string; snapshots: Array<{ id: string }> }>).map((g) => [g.group, ids(g.snapshots)]);
    assert.deepEqual(
      groups.sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
      [
        ['app unset', [bare.id]],
        ['app=blog', [blog.id]],
        ['app=shop', sorted(ids(shop))],
      ],
    );

    const text = await cli(['ls', '--repo', `file://${dir}`, '--group-by', 'label:app', '--label', 'app=shop']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^snapshots for app=shop:\nID\s+TIME \(UTC\)\s+SOURCE\s+LABELS\s+SIZE\s+ADDED\n/);
    assert.match(text.stdout, /\n2 snapshots\n$/);

    const bySource = await cli(['ls', '--repo', `file://${dir}`, '--group-by', 'source', '--source', 'web', '--json']);
    assert.deepEqual((JSON.parse(bySource.stdout) as Array<{ group: string }>).map((g) => g.group), ['source=web']);

    const bad = await cli(['ls', '--repo', `file://${dir}`, '--group-by', 'host']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'snapworker: --group-by: "host" is not source, labels or label:KEY (e.g. label:app)\n');
  });
});
