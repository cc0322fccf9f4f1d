import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { loadConfig } from '../shared/config.js';
import { DirSource } from '../shared/kinds/dir/dir-source.js';
import type { Source, SourceOpenOptions } from '../shared/kinds/source.js';
import { createLogger } from '../shared/logging.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { pruneSnapshots } from '../shared/pipeline/prune-snapshots.js';
import { formatOf } from '../shared/formats/registry.js';
import { nullProgress, ProgressTracker, type ProgressReport, type ProgressSink } from '../shared/progress.js';
import { WorkerMetrics } from '../shared/metrics/metrics.js';
import { sampleRepository } from '../shared/metrics/repository-sampler.js';
import { formatPruneReport } from '../worker/commands/prune-report.js';
import type { SourceEntry } from '../shared/snapshot/entry.js';
import { JobRuntime, runJob } from '../worker/job-runner.js';
import { newChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { compareTrees, makeTortureTree } from './helpers/torture-tree.js';
import { cli as runCli, spawnCli } from './helpers/cli.js';
import { spawn } from 'node:child_process';
import { exportSnapshot } from '../shared/pipeline/export-snapshot.js';
import { InvalidInputError } from '../shared/errors.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';

const MiB = 1024 * 1024;
const cli = (args: string[]) => runCli(args, { LOG_LEVEL: 'warn' });

/** Bytes of every object under `dir` (packs and index objects of a file repository). */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Complete pack objects (named by their 64-hex id; not a temp file being written) under `dir`. */
async function packFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile() && /^[0-9a-f]{64}$/.test(entry.name)).length;
}

describe('the chunked snapshot format', () => {
  let root: string;
  let serial = 0;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-chunked-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A job runtime over a fresh chunked repository `repo` (a file:// or s3:// URI). */
  async function chunkedRuntime(repo: string, env: NodeJS.ProcessEnv = {}, metrics?: WorkerMetrics): Promise<JobRuntime> {
    await mkdir(path.join(root, 'staging'), { recursive: true });
    const config = loadConfig({
      SNAPWORKER_REPOSITORIES: JSON.stringify({ default: repo }),
      SNAPWORKER_ALLOWED_PATHS: root,
      SNAPWORKER_STAGING_DIR: path.join(root, 'staging'),
      ...env,
    });
    const runtime = new JobRuntime(config, createLogger('silent'), metrics);
    if (!(await runtime.repository(undefined).exists())) await runtime.repository(undefined).init({ snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig() } });
    return runtime;
  }

  const signal = () => new AbortController().signal;
  function snapshot(runtime: JobRuntime, dir: string, extra: Record<string, unknown> = {}, progress: ProgressSink = nullProgress): Promise<SnapshotRecord> {
    return runJob({ kind: 'snapshot', data: { v: 1, source: `dir://${dir}`, ...extra }, signal: signal(), progress }, runtime) as Promise<SnapshotRecord>;
  }
  function restore(runtime: JobRuntime, id: string, target: string) {
    return runJob({ kind: 'restore', data: { v: 1, snapshot: id, target: `dir://${target}` }, signal: signal(), progress: nullProgress }, runtime);
  }

  it('round-trips the torture tree through a file repository, verifies, and exports an archive that stock tar and sha256sum -c accept', async () => {
    const tree = await makeTortureTree(path.join(root, 'torture'));
    const runtime = await chunkedRuntime(`file://${path.join(root, 'repo-torture')}`);
    try {
      const record = await snapshot(runtime, tree.root);
      assert.equal(record.format, 'chunked');
      assert.match(record.tree!, /^[0-9a-f]{64}$/);
      const target = path.join(root, 'torture-restored');
      await restore(runtime, record.id, target);
      assert.deepEqual(compareTrees(tree.root, target, { ignore: tree.unsupported }), []);
      await runJob({ kind: 'verify', data: { v: 1, snapshot: record.id }, signal: signal(), progress: nullProgress }, runtime);

      // What `snapworker export` writes, into stock zstd, tar and sha256sum.
      const out = path.join(root, 'exported');
      await mkdir(out);
      const tools = spawn('sh', ['-c', "zstd -dq | tar --xattrs --xattrs-include='*' -x 2>/dev/null && sha256sum --quiet -c SHA256SUMS"], { cwd: out, stdio: ['pipe', 'inherit', 'inherit'] });
      const toolsDone = new Promise<number | null>((resolve) => tools.once('exit', resolve));
      const repository = runtime.repository(undefined);
      await exportSnapshot({ repository, record, output: tools.stdin!, signal: signal(), progress: nullProgress });
      tools.stdin!.end();
      assert.equal(await toolsDone, 0);
      assert.deepEqual(compareTrees(tree.root, path.join(out, 'data'), { ignore: tree.unsupported }), []);
    } finally {
      await runtime.close();
    }
  });

  it('is checked by check: sound after two snapshots, a data subset read whole, and a missing pack named', async () => {
    const dir = path.join(root, 'checked');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'a.bin'), randomBytes(300_000));
    await writeFile(path.join(dir, 'b.txt'), 'hello\n'.repeat(1000));
    const repoDir = path.join(root, 'repo-checked');
    const runtime = await chunkedRuntime(`file://${repoDir}`);
    try {
      await snapshot(runtime, dir);
      await writeFile(path.join(dir, 'c.bin'), randomBytes(200_000));
      await snapshot(runtime, dir);
      const check = (data: Record<string, unknown> = {}) =>
        runJob({ kind: 'check', data: { v: 1, ...data }, signal: signal(), progress: nullProgress }, runtime) as Promise<{ ok: boolean; problems: { message: string }[]; read: string[] }>;
      const sound = await check({ readDataSubset: '100%' });
      assert.equal(sound.ok, true, JSON.stringify(sound.problems));
      assert.equal(sound.read.length, 2);
      const packs = (await readdir(path.join(repoDir, 'packs'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name));
      await rm(path.join(packs[0]!.parentPath, packs[0]!.name));
      // A pack of the right size whose trailer names a header longer than the pack: its reader names the pack, and check must not name it again.
      assert.ok(packs.length >= 2, 'two snapshots write at least two packs');
      const flipped = path.join(packs[1]!.parentPath, packs[1]!.name);
      const bytes = await readFile(flipped);
      bytes[bytes.length - 1]! ^= 0xff;
      await writeFile(flipped, bytes);
      const damaged = await check();
      assert.equal(damaged.ok, false);
      assert.ok(damaged.problems.some((p) => p.message.includes(packs[0]!.name)), JSON.stringify(damaged.problems));
      assert.ok(damaged.problems.some((p) => p.message.includes(packs[1]!.name)), JSON.stringify(damaged.problems));
      for (const { message } of damaged.problems) assert.doesNotMatch(message, /(pack \w+): \1/, `no doubled prefix: ${message}`);
    } finally {
      await runtime.close();
    }
  });

  it('refuses to restore a snapshot whose pack has a flipped byte, leaving the target untouched, and verify names the chunk', async () => {
    const dir = path.join(root, 'flipped');
    await mkdir(path.join(dir, 'small'), { recursive: true });
    await writeFile(path.join(dir, 'a.bin'), randomBytes(200_000)); // first in the pack: the byte flipped below is in it
    for (let i = 0; i < 20; i++) await writeFile(path.join(dir, 'small', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
    const repoDir = path.join(root, 'repo-flipped');
    const runtime = await chunkedRuntime(`file://${repoDir}`);
    try {
      const record = await snapshot(runtime, dir);
      const packs = (await readdir(path.join(repoDir, 'packs'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name));
      assert.equal(packs.length, 1);
      const pack = await open(path.join(packs[0]!.parentPath, packs[0]!.name), 'r+');
      const byte = Buffer.alloc(1);
      await pack.read(byte, 0, 1, 1000);
      byte[0]! ^= 0x40;
      await pack.write(byte, 0, 1, 1000);
      await pack.close();

      const target = path.join(root, 'flipped-target');
      await mkdir(target);
      await writeFile(path.join(target, 'old.txt'), 'before\n');
      const damaged = /blob [0-9a-f]{64}: (content does not match its id|does not decompress) \(damaged pack\)/;
      await assert.rejects(
        runJob({ kind: 'restore', data: { v: 1, snapshot: record.id, target: `dir://${target}`, replace: true }, signal: signal(), progress: nullProgress }, runtime),
        (err: Error) => damaged.test(err.message) && err.message.includes(record.id),
      );
      assert.deepEqual(await readdir(target), ['old.txt']);
      assert.equal(await readFile(path.join(target, 'old.txt'), 'utf8'), 'before\n');
      assert.deepEqual((await readdir(root)).filter((name) => name.includes('flipped-target.snapworker')), [], 'no staging left behind');
      await assert.rejects(runJob({ kind: 'verify', data: { v: 1, snapshot: record.id }, signal: signal(), progress: nullProgress }, runtime), (err: Error) => damaged.test(err.message));
    } finally {
      await runtime.close();
    }
  });

  it('round-trips the torture tree through S3 (s3rver), reading every byte back', async () => {
    let s3: S3rverHandle | undefined;
    let runtime: JobRuntime | undefined;
    try {
      s3 = await startS3rver('chunked');
      const tree = await makeTortureTree(path.join(root, 'torture-s3'));
      runtime = await chunkedRuntime(`s3://chunked/repo?endpoint=${s3.endpoint}&forcePathStyle=true&checksum=when_required&region=us-east-1`, {
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      });
      const record = await snapshot(runtime, tree.root);
      const target = path.join(root, 'torture-s3-restored');
      await restore(runtime, record.id, target);
      assert.deepEqual(compareTrees(tree.root, target, { ignore: tree.unsupported }), []);
    } finally {
      await runtime?.close();
      await s3?.stop();
    }
  });

  describe('deduplication', () => {
    let runtime: JobRuntime;
    let repoDir: string;
    let dir: string;
    const metrics = new WorkerMetrics({ collectDefaultMetrics: false });

    before(async () => {
      repoDir = path.join(root, 'repo-dedup');
      runtime = await chunkedRuntime(`file://${repoDir}`, {}, metrics);
      dir = path.join(root, 'dedup-src');
      await mkdir(path.join(dir, 'sub'), { recursive: true });
      await writeFile(path.join(dir, 'big.bin'), randomBytes(6 * MiB));
      for (let i = 0; i < 20; i++) await writeFile(path.join(dir, 'sub', `f${i}.bin`), randomBytes(20_000));
    });
    after(() => runtime.close());

    it('stores three snapshots of the same directory (one of them reading every file) in about the space of one', async () => {
      // New and deduplicated bytes as progress reports them: the last report of each snapshot.
      const runs = [0, 1, 2].map(() => new ProgressTracker(() => {}, 0));
      const first = await snapshot(runtime, dir, {}, runs[0]);
      const afterOne = await bytesUnder(repoDir);
      const second = await snapshot(runtime, dir, {}, runs[1]);
      const third = await snapshot(runtime, dir, { force: true }, runs[2]);
      const afterThree = await bytesUnder(repoDir);
      const size = 6 * MiB + 20 * 20_000;
      const reports: ProgressReport[] = runs.map((run) => run.snapshot());
      const sampled = await sampleRepository(runtime.repository(undefined));
      assert.equal(sampled!.packBytes + sampled!.indexBytes, (await bytesUnder(path.join(repoDir, 'packs'))) + (await bytesUnder(path.join(repoDir, 'pack-index'))));
      assert.ok(sampled!.packs >= 1 && sampled!.indexObjects >= 1);
      assert.deepEqual(reports.map((r) => [r.bytesNew, r.bytesDeduplicated]), [[size, 0], [0, size], [0, size]], 'the first stores everything, the unchanged one reuses it, the forced one finds every chunk stored');
      const exposition = await metrics.metrics();
      assert.match(exposition, new RegExp(`snapworker_dedup_bytes_total\\{source_kind="dir",result="new"\\} ${size}\\b`));
      assert.match(exposition, new RegExp(`snapworker_dedup_bytes_total\\{source_kind="dir",result="deduplicated"\\} ${2 * size}\\b`));
      assert.ok(afterOne >= size && afterOne < size * 1.05, `one snapshot: ${afterOne} bytes for ${size}`);
      assert.ok(afterThree < afterOne * 1.02, `three snapshots: ${afterThree} bytes, one: ${afterOne}`);
      assert.equal(second.parent, first.id);
      assert.equal(third.parent, undefined);
      assert.equal(second.stats.storedBytes, 0);
      assert.equal(third.stats.storedBytes, 0);
      assert.equal(second.tree, first.tree, 'an unchanged directory gives the same root tree');
    });

    it('stores about one chunk more after a one-byte change in the middle of a big file', async () => {
      const before = await snapshot(runtime, dir);
      const handle = await open(path.join(dir, 'big.bin'), 'r+');
      await handle.write(Buffer.from([0x5a]), 0, 1, 3 * MiB);
      await handle.close();
      const changed = await snapshot(runtime, dir);
      assert.equal(changed.parent, before.id);
      // The chunk holding the byte is new (at most the 8 MiB maximum, 1 MiB on average), plus the trees.
      assert.ok(changed.stats.storedBytes > 0 && changed.stats.storedBytes < 3 * MiB, `stored ${changed.stats.storedBytes} bytes`);
      const target = path.join(root, 'dedup-restored');
      await restore(runtime, changed.id, target);
      assert.deepEqual(compareTrees(dir, target), []);
    });
  });

  it('reads only the changed files of a directory whose parent snapshot holds the rest', async () => {
    const runtime = await chunkedRuntime(`file://${path.join(root, 'repo-incremental')}`);
    try {
      const dir = path.join(root, 'incremental-src');
      await mkdir(path.join(dir, 'a'), { recursive: true });
      for (let i = 0; i < 10; i++) await writeFile(path.join(dir, 'a', `small${i}`), `small file ${i}\n`);
      await writeFile(path.join(dir, 'big'), randomBytes(2 * MiB));
      const repository = runtime.repository(undefined);
      const take = async (source: Source) =>
        takeSnapshot({ id: `20261129T2200${String(++serial).padStart(5, '0')}Z-0000000${serial}`, source, repository, labels: {}, compression: 'zstd', signal: signal(), progress: nullProgress });

      const first = await take(new DirSource(dir, `dir://${dir}`, {}));
      await writeFile(path.join(dir, 'a', 'small3'), 'changed\n');
      const read: string[] = [];
      const second = await take(watchedReads(new DirSource(dir, `dir://${dir}`, {}), read));
      assert.equal(second.parent, first.id);
      assert.deepEqual(read, ['data/a/small3'], 'only the changed file was read (ahead or opened)');
      const target = path.join(root, 'incremental-restored');
      await restore(runtime, second.id, target);
      assert.deepEqual(compareTrees(dir, target), []);
    } finally {
      await runtime.close();
    }
  });

  it('keeps two snapshots restorable that deduplicated against packs a collection marked while they ran', async () => {
    const runtime = await chunkedRuntime(`file://${path.join(root, 'repo-gc')}`);
    try {
      const dirs = [path.join(root, 'gc-src-a'), path.join(root, 'gc-src-b')];
      const contents = [0, 1, 2].map(() => randomBytes(MiB));
      for (const dir of dirs) {
        await mkdir(dir);
        for (let i = 0; i < 3; i++) await writeFile(path.join(dir, `f${i}`), contents[i]!);
      }
      const repository = runtime.repository(undefined);
      const old = await snapshot(runtime, dirs[0]!);
      await formatOf(old).delete(repository, old); // its packs are garbage now
      const graceSeconds = 2;
      await new Promise((r) => setTimeout(r, graceSeconds * 1000 + 500)); // and older than the grace window below
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const writers = dirs.map((dir, n) => {
        let paused!: () => void;
        const reached = new Promise<void>((resolve) => (paused = resolve));
        const source = new DirSource(dir, `dir://${dir}`, {});
        const gated: Source = {
          descriptor: source.descriptor,
          async *entries(options) {
            let count = 0;
            for await (const entry of source.entries(options)) {
              if (count++ === 2) {
                paused();
                await gate; // two files saved (deduplicated against the garbage packs), one to go
              }
              yield entry;
            }
          },
        };
        const running = takeSnapshot({ id: `20261129T22000000${n}Z-0000abc${n}`, source: gated, repository, labels: {}, compression: 'zstd', parent: false, signal: signal(), progress: nullProgress });
        return { running, reached };
      });
      await Promise.all(writers.map((writer) => writer.reached));
      // Marks the old packs (no record references them), to be deleted once the window passed.
      const during = await prune(runtime, graceSeconds);
      release();
      const records = await Promise.all(writers.map((writer) => writer.running)); // their flushes list the marked packs again
      await new Promise((r) => setTimeout(r, graceSeconds * 1000 + 100));
      const afterwards = await prune(runtime, graceSeconds);
      assert.ok(during.removedObjects === undefined && afterwards.removedObjects === undefined, 'no pack the running snapshots used was deleted');
      assert.ok(during.garbage!.packsMarked > 0 && during.garbage!.packsDeleted === 0, JSON.stringify(during.garbage));
      assert.equal(afterwards.garbage!.packsDeleted, 0);
      for (const [i, record] of records.entries()) {
        const target = path.join(root, `gc-restored-${i}`);
        await restore(runtime, record.id, target);
        assert.deepEqual(compareTrees(dirs[i]!, target), []);
        await runJob({ kind: 'verify', data: { v: 1, snapshot: record.id }, signal: signal(), progress: nullProgress }, runtime);
      }
    } finally {
      await runtime.close();
    }
  });

  it('refuses a parent or force for an archive repository, in one line', async () => {
    await mkdir(path.join(root, 'staging'), { recursive: true });
    const config = loadConfig({
      SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${path.join(root, 'repo-archive')}` }),
      SNAPWORKER_ALLOWED_PATHS: root,
      SNAPWORKER_STAGING_DIR: path.join(root, 'staging'),
      SNAPWORKER_AUTO_INIT: 'true',
    });
    const runtime = new JobRuntime(config, createLogger('silent'));
    try {
      const dir = path.join(root, 'archive-src');
      await mkdir(dir);
      await assert.rejects(snapshot(runtime, dir, { force: true }), (err: Error) => err instanceof InvalidInputError && /archive format takes no parent snapshot/.test(err.message));
    } finally {
      await runtime.close();
    }
  });

  it('takes a good snapshot after a worker was SIGKILLed in the middle of one, and prune removes the dead snapshot\'s packs', async () => {
    const repoDir = path.join(root, 'repo-kill');
    const repo = `file://${repoDir}`;
    assert.equal((await cli(['init', '--repo', repo, '--format', 'chunked'])).code, 0);
    const dir = path.join(root, 'kill-src');
    await mkdir(dir);
    for (let i = 0; i < 6; i++) await writeFile(path.join(dir, `f${i}`), randomBytes(4 * MiB));
    const running = spawnCli(['snapshot', `dir://${dir}`, '--repo', repo, '--local'], { LOG_LEVEL: 'warn' });
    // Killed once it uploaded a pack: its blobs are stored, its index and record are not.
    // Generous: the CLI's start alone took 25 s on a loaded 2-core machine; the wait ends at the first pack.
    const deadline = Date.now() + 120_000;
    while ((await packFiles(path.join(repoDir, 'packs'))) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    running.child.kill('SIGKILL');
    await running.done;
    assert.ok(Date.now() < deadline, 'the killed snapshot stored a pack in time');
    const runtime = await chunkedRuntime(repo);
    try {
      assert.deepEqual(await runtime.repository(undefined).list(), []);
      const record = await snapshot(runtime, dir);
      const packBytes = await bytesUnder(path.join(repoDir, 'packs'));
      // A put the kill cut short leaves a temp file beside the packs; one is planted too, so the
      // sweep is checked whether or not the kill landed mid-put.
      const folder = (await readdir(path.join(repoDir, 'packs')))[0]!;
      const planted = path.join(repoDir, 'packs', folder, '.tmp-00112233aabbccdd');
      await writeFile(planted, randomBytes(1000));
      await utimes(planted, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const pruned = await prune(runtime);
      assert.ok((pruned.removedObjects ?? []).length > 0, 'the dead snapshot left packs to remove');
      assert.ok(pruned.garbage && pruned.garbage.debrisDeleted > 0 && pruned.garbage.packsDeleted === pruned.removedObjects!.length && pruned.garbage.bytesFreed > 0, JSON.stringify(pruned.garbage));
      assert.match(formatPruneReport(pruned), new RegExp(`^garbage collection: deleted ${pruned.garbage.packsDeleted} pack\\(s\\) \\(${pruned.garbage.debrisDeleted} left by dead writers\\), freed [\\d.]+ (KiB|MiB); repacked 0 pack\\(s\\)`, 'm'));
      assert.ok((await bytesUnder(path.join(repoDir, 'packs'))) < packBytes);
      const leftovers = (await readdir(path.join(repoDir, 'packs'), { recursive: true })).filter((name) => name.includes('.tmp-'));
      assert.deepEqual(leftovers, [], 'temp files of dead puts are removed');
      const target = path.join(root, 'kill-restored');
      await restore(runtime, record.id, target);
      assert.deepEqual(compareTrees(dir, target), []);
    } finally {
      await runtime.close();
    }
  });
});

/** Prune with a grace window of `graceSeconds` (default 0: every incomplete or unreferenced object is fair game at once). */
function prune(runtime: JobRuntime, graceSeconds = 0) {
  return pruneSnapshots({ repository: runtime.repository(undefined), policy: { keepLast: 100 }, filter: {}, incompleteGraceSeconds: graceSeconds, dryRun: false, signal: new AbortController().signal });
}

/** The source, with every file it reads (ahead, or when opened) named in `read`. */
function watchedReads(source: DirSource, read: string[]): Source {
  return {
    descriptor: source.descriptor,
    estimateBytes: (signal) => source.estimateBytes(signal),
    async *entries(options: SourceOpenOptions): AsyncGenerator<SourceEntry> {
      for await (const entry of source.entries(options)) {
        if (entry.type === 'file' && entry.bytes !== undefined) read.push(entry.path);
        else if (entry.open) {
          const opening = entry.open;
          entry.open = () => {
            read.push(entry.path);
            return opening();
          };
        }
        yield entry;
      }
    },
  };
}
