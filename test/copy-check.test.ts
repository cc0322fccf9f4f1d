import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { loadConfig } from '../shared/config.js';
import { IntegrityError } from '../shared/errors.js';
import { listEntries } from '../shared/formats/list-entries.js';
import { createLogger } from '../shared/logging.js';
import { checkRepository } from '../shared/pipeline/check-repository.js';
import { copySnapshots } from '../shared/pipeline/copy-snapshots.js';
import { parseDataSubset, selectSubset } from '../shared/pipeline/data-subset.js';
import { nullProgress } from '../shared/progress.js';
import { openDriver } from '../shared/storage/open-driver.js';
import type { StorageDriver } from '../shared/storage/storage-driver.js';
import { exitCodeForResult } from '../worker/commands/exit-codes.js';
import { formatCheckReport } from '../worker/commands/browse-reports.js';
import { JobRuntime, runJob } from '../worker/job-runner.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { useTestWorker } from './helpers/worker-fixture.js';
import { mkdtempSync } from 'node:fs';
import type { JobResultByKind } from '../jobs/results.js';
import { compareTrees } from './helpers/torture-tree.js';

const signal = new AbortController().signal;

/** A file driver that notes the key of every object read: what a check or copy really read. */
function countingDriver(uri: string): { driver: StorageDriver; gets: string[] } {
  const inner = openDriver(uri);
  const gets: string[] = [];
  const driver = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property === 'get') return (key: string, options?: object) => (gets.push(key), inner.get(key, options));
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { driver, gets };
}

/** Flips one byte in the middle of a stored object: same size, different bytes. */
async function flipByte(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
}

async function listingOf(repository: Repository, record: SnapshotRecord): Promise<string[]> {
  const lines: string[] = [];
  for await (const e of listEntries(repository, record, { signal })) lines.push(`${e.path} ${e.type} ${e.mode} ${e.size} ${e.mtimeNs} ${e.sha256 ?? ''}`);
  return lines;
}

describe('copy between repositories and check', () => {
  let root: string;
  let s3: S3rverHandle;
  let runtime: JobRuntime;
  let source: string;
  let record: SnapshotRecord;
  const dir = (name: string) => path.join(root, name);

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-copy-'));
    s3 = await startS3rver();
    const s3Uri = `s3://${s3.bucket}/copies?endpoint=${s3.endpoint}&forcePathStyle=true&checksum=when_required&partSize=5MiB&region=us-east-1`;
    const repositories: Record<string, string> = { s3: s3Uri };
    for (const name of ['a', 'c', 'd', 'flip', 'fresh', 'many']) repositories[name] = `file://${dir(name)}`;
    const config = loadConfig({ SNAPWORKER_REPOSITORIES: JSON.stringify(repositories), SNAPWORKER_DEFAULT_REPOSITORY: 'a', SNAPWORKER_ALLOWED_PATHS: root, SNAPWORKER_STAGING_DIR: root });
    runtime = new JobRuntime(config, createLogger('silent'));
    for (const name of Object.keys(repositories)) await runtime.repository(name).init();
    source = dir('src');
    await mkdir(path.join(source, 'conf'), { recursive: true });
    await writeFile(path.join(source, 'conf', 'app.conf'), 'port=8080\n');
    await writeFile(path.join(source, 'big.bin'), Buffer.alloc(300_000, 7));
    record = await runJob({ kind: 'snapshot', data: { v: 1, source: `dir://${source}`, repo: 'a', name: 'app', labels: { app: 'shop' } }, signal, progress: nullProgress }, runtime);
  });
  after(async () => {
    await runtime?.close();
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('copies file → S3 → file byte for byte, keeping the id and record, verified on arrival; a second copy is skipped', async () => {
    const toS3 = await runJob({ kind: 'copy', data: { v: 1, snapshots: [record.id], repo: 'a', to: 's3' }, signal, progress: nullProgress }, runtime);
    assert.deepEqual(toS3.copied.map((c) => [c.id, c.route, c.format]), [[record.id, 'objects', 'archive']]);
    const back = await runJob({ kind: 'copy', data: { v: 1, snapshots: ['latest'], repo: 's3', to: 'c', labels: { app: 'shop' } }, signal, progress: nullProgress }, runtime);
    assert.deepEqual(back.copied.map((c) => c.id), [record.id]);

    assert.deepEqual(await readFile(path.join(dir('c'), record.archive!.key)), await readFile(path.join(dir('a'), record.archive!.key)), 'archive bytes identical');
    assert.deepEqual(await runtime.repository('c').getRecord(record.id), record, 'record identical');
    assert.deepEqual((await runtime.repository('s3').index.snapshots({ source: 'app' })).map((s) => s.id), [record.id], 'listed in the target catalog');
    const target = dir('restored');
    await runJob({ kind: 'restore', data: { v: 1, snapshot: record.id, repo: 'c', target: `dir://${target}` }, signal, progress: nullProgress }, runtime);
    assert.deepEqual(compareTrees(source, target), []);

    const again = await runJob({ kind: 'copy', data: { v: 1, snapshots: [record.id], repo: 'a', to: 's3' }, signal, progress: nullProgress }, runtime);
    assert.deepEqual([again.copied, again.skipped], [[], [record.id]]);
  });

  it('re-writes entries through the formats when routed so: same id, fields and listing', async () => {
    const result = await copySnapshots({ from: runtime.repository('a'), to: runtime.repository('d'), records: [record], signal, progress: nullProgress, route: 'entries' });
    assert.deepEqual(result.copied.map((c) => c.route), ['entries']);
    const copy = await runtime.repository('d').getRecord(record.id);
    assert.deepEqual([copy.source, copy.labels, copy.createdAt, copy.stats.entries, copy.stats.rawBytes], [record.source, record.labels, record.createdAt, record.stats.entries, record.stats.rawBytes]);
    assert.deepEqual(await listingOf(runtime.repository('d'), copy), await listingOf(runtime.repository('a'), record));
  });

  it('refuses a source with a flipped byte, by either route, and commits nothing in the target', async () => {
    await cp(dir('a'), dir('flip'), { recursive: true, force: true });
    await flipByte(path.join(dir('flip'), record.archive!.key));
    await assert.rejects(
      runJob({ kind: 'copy', data: { v: 1, snapshots: [record.id], repo: 'flip', to: 'fresh' }, signal, progress: nullProgress }, runtime),
      (err: Error) => err instanceof IntegrityError && /differs from its record/.test(err.message),
    );
    const fresh = runtime.repository('fresh');
    await assert.rejects(
      copySnapshots({ from: runtime.repository('flip'), to: fresh, records: [record], signal, progress: nullProgress, route: 'entries' }),
      IntegrityError,
    );
    assert.equal(await fresh.hasRecord(record.id), false);
    const left: string[] = [];
    for await (const object of fresh.driver.list('snapshots/')) left.push(object.key);
    assert.deepEqual(left, [], 'no object of the refused copy stays');
    assert.deepEqual(await fresh.index.snapshots(), []);
  });

  describe('check', () => {
    let ids: string[];
    const counted = () => countingDriver(`file://${dir('many')}`);
    const archivesRead = (gets: string[]) => gets.filter((key) => /\/archive\.tar/.test(key)).sort();

    before(async () => {
      ids = [];
      for (let i = 0; i < 10; i++) {
        await writeFile(path.join(source, 'conf', 'app.conf'), `port=${8000 + i}\n`);
        ids.push((await runJob({ kind: 'snapshot', data: { v: 1, source: `dir://${source}`, repo: 'many', name: 'app' }, signal, progress: nullProgress }, runtime)).id);
      }
    });

    it('reads no data without a subset, and exactly the requested share with one', async () => {
      const plain = counted();
      const structure = await checkRepository({ repository: new Repository('many', plain.driver), signal, progress: nullProgress });
      assert.deepEqual([structure.ok, structure.snapshots, structure.read, archivesRead(plain.gets)], [true, 10, [], []]);

      const percent = counted();
      const share = await checkRepository({ repository: new Repository('many', percent.driver), signal, progress: nullProgress, subset: parseDataSubset('30%') });
      assert.equal(share.read.length, 3);
      assert.deepEqual(archivesRead(percent.gets), share.read.map((id) => `snapshots/${id}/archive.tar.zst`).sort(), 'each chosen snapshot read once, nothing else');

      // n/t: fixed groups that together read every snapshot exactly once.
      const seen: string[] = [];
      for (let n = 1; n <= 3; n++) {
        const group = counted();
        const result = await checkRepository({ repository: new Repository('many', group.driver), signal, progress: nullProgress, subset: parseDataSubset(`${n}/3`) });
        assert.deepEqual(result.read, selectSubset(ids, { group: n, of: 3 }));
        assert.equal(archivesRead(group.gets).length, result.read.length);
        seen.push(...result.read);
      }
      assert.deepEqual(seen.sort(), [...ids].sort());
    });

    it('names a missing archive, a truncated one and a flipped byte among the snapshots read; exit code 1', async () => {
      const many = dir('many');
      await flipByte(path.join(many, 'snapshots', ids[0]!, 'archive.tar.zst'));
      await truncate(path.join(many, 'snapshots', ids[1]!, 'archive.tar.zst'), 10);
      await rm(path.join(many, 'snapshots', ids[2]!, 'archive.tar.zst'));
      await writeFile(path.join(many, 'snapshots', ids[3]!, 'snapshot.json'), '{not json');
      const result = await runJob({ kind: 'check', data: { v: 1, repo: 'many', readDataSubset: '100%' }, signal, progress: nullProgress }, runtime);
      assert.equal(result.ok, false);
      assert.equal(exitCodeForResult('check', result), 1);
      const problems = result.problems.map((p) => `${p.snapshot}: ${p.message}`);
      assert.equal(problems.length, 4, problems.join('\n'));
      assert.match(problems[0]!, new RegExp(`^${ids[1]}: .*archive.tar.zst is 10 bytes; its record says \\d+`));
      assert.match(problems[1]!, new RegExp(`^${ids[2]}: .*archive.tar.zst is missing`));
      assert.match(problems[2]!, new RegExp(`^${ids[3]}: .*record of ${ids[3]} is not JSON`));
      assert.match(problems[3]!, new RegExp(`^${ids[0]}: `), 'the flipped byte is found by reading');
      assert.deepEqual(result.read, [ids[0], ...ids.slice(4)], 'every structurally sound snapshot read');
      for (const problem of result.problems) {
        const named = problem.message.split(`snapshot ${problem.snapshot}`).length - 1;
        assert.ok(problem.message.startsWith(`snapshot ${problem.snapshot}`) && named === 1, `names its snapshot once, first: ${problem.message}`);
      }
      const report = formatCheckReport(result);
      assert.doesNotMatch(report, /(snapshot \S+)(:| \(\S+\):) \1/, 'no doubled prefix in what check prints');
    });
  });
});

describe('copy and check as queued jobs', () => {
  const repos = mkdtempSync(path.join(os.tmpdir(), 'snapworker-copy-queue-'));
  const fixture = useTestWorker({
    SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${path.join(repos, 'default')}`, second: `file://${path.join(repos, 'second')}` }),
  });
  after(() => rm(repos, { recursive: true, force: true }));

  it('a worker runs copy and check jobs to their results', async () => {
    const { environment } = fixture;
    await new Repository('second', openDriver(`file://${path.join(repos, 'second')}`)).init();
    const src = path.join(environment.root, 'src');
    await mkdir(src);
    await writeFile(path.join(src, 'file'), 'queued');
    const snapshot = (await (await environment.queue.add('snapshot', { v: 1, source: `dir://${src}` })).waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
    const copyJob = await environment.queue.add('copy', { v: 1, snapshots: [snapshot.id], to: 'second' });
    const copied = (await copyJob.waitUntilFinished(environment.events, 60_000)) as JobResultByKind['copy'];
    assert.deepEqual([copied.from, copied.to, copied.copied.map((c) => c.id)], ['default', 'second', [snapshot.id]]);
    const checkJob = await environment.queue.add('check', { v: 1, repo: 'second', readDataSubset: '1/1' });
    const checked = (await checkJob.waitUntilFinished(environment.events, 60_000)) as JobResultByKind['check'];
    assert.deepEqual([checked.ok, checked.snapshots, checked.read], [true, 1, [snapshot.id]]);
    const bad = await environment.queue.add('check', { v: 1, readDataSubset: 'half' });
    await assert.rejects(bad.waitUntilFinished(environment.events, 60_000), /readDataSubset/);
  });
});
