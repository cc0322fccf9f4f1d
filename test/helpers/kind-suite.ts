import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tar from 'tar-stream';
import type { SnapshotRecord } from '../../shared/catalog/snapshot-record.js';
import { loadConfig } from '../../shared/config.js';
import { InvalidInputError } from '../../shared/errors.js';
import { openTarget } from '../../shared/kinds/registry.js';
import { createLogger } from '../../shared/logging.js';
import { nullProgress, type ProgressSink } from '../../shared/progress.js';
import { JobRuntime, runJob } from '../../worker/job-runner.js';
import { formatOf } from '../../shared/formats/registry.js';
import { newChunkedStoreConfig } from '../../shared/formats/chunked/store/store-config.js';
import { testManifest } from './archive-fixtures.js';
import type { KindFixture } from './kind-fixtures/index.js';

/**
 * The behaviour every kind must show, as node:test tests, run through the same job runner a
 * worker uses (registry, pipeline, a file repository), like `storage-suite.ts` is for drivers:
 * - a round trip gives back the same content;
 * - the record and the archive's manifest describe the source alike;
 * - a target refuses a snapshot of another kind, and is left untouched;
 * - a snapshot aborted mid-way leaves no record, no snapshot folder and no staged files;
 * - a restore with `replace` aborted mid-way leaves the existing target exactly as it was.
 * Each test makes its own source in a fresh directory and removes what it made.
 */
export function runKindConformanceSuite(fixture: KindFixture, format: 'archive' | 'chunked' = 'archive'): void {
  describe(`kind ${fixture.kind} conformance${format === 'archive' ? '' : ` (${format} repository)`}`, () => {
    let root: string;
    let repoDir: string;
    let stagingDir: string;
    let runtime: JobRuntime;
    let skip: string | false = false;
    let serial = 0;
    const made: string[][] = [];

    before(async () => {
      skip = (await fixture.skip?.()) ?? false;
      root = await mkdtemp(path.join(os.tmpdir(), `snapworker-kind-${fixture.kind}-`));
      repoDir = path.join(root, 'repo');
      stagingDir = path.join(root, 'staging');
      await mkdir(stagingDir);
      const config = loadConfig({
        SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${repoDir}` }),
        SNAPWORKER_ALLOWED_PATHS: path.join(root, 'work'),
        SNAPWORKER_STAGING_DIR: stagingDir,
        ...fixture.env,
      });
      runtime = new JobRuntime(config, createLogger('silent'));
      if (format === 'chunked') await runtime.repository(undefined).init({ snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig() } });
    });
    after(async () => {
      for (const uris of made) await fixture.cleanup?.(uris);
      await fixture.close?.();
      await runtime?.close();
      await rm(root, { recursive: true, force: true });
    });

    /** A fresh work directory and a source made in it. */
    async function freshSource(): Promise<{ work: string; source: string[] }> {
      const work = path.join(root, 'work', `t${++serial}`);
      await mkdir(work, { recursive: true });
      const source = await fixture.createSource(work);
      made.push(source);
      return { work, source };
    }

    // Each test's source is a new one of the same base name in one repository: a lineage each
    // (a derived name would refuse the second source, see shared/pipeline/lineage-guard.ts).
    function snapshot(source: string[], progress: ProgressSink = nullProgress, signal = new AbortController().signal): Promise<SnapshotRecord> {
      const name = `${fixture.kind}-t${serial}`;
      return runJob({ kind: 'snapshot', data: { v: 1, source, name, compression: 'none', labels: { suite: 'kinds' } }, signal, progress }, runtime);
    }

    function restore(record: SnapshotRecord, target: string[], options: { replace?: boolean; progress?: ProgressSink; signal?: AbortSignal } = {}) {
      const data = { v: 1 as const, snapshot: record.id, target, ...(options.replace ? { replace: true } : {}) };
      return runJob({ kind: 'restore', data, signal: options.signal ?? new AbortController().signal, progress: options.progress ?? nullProgress }, runtime);
    }

    async function assertNothingStaged(): Promise<void> {
      assert.deepEqual(await readdir(stagingDir), [], 'no staged files left behind');
    }

    it('gives back the same content after a snapshot and a restore into a new target', async (t) => {
      if (skip) return t.skip(skip);
      const { work, source } = await freshSource();
      const content = await fixture.readContent(source);
      assert.notEqual(content, undefined, 'the fixture made a source with content');
      const record = await snapshot(source);
      assert.equal(record.source.kind, fixture.kind);
      const target = await fixture.freshTarget(work, source);
      made.push(target);
      assert.equal(await fixture.readContent(target), undefined, 'the target does not exist before the restore');
      const result = await restore(record, target);
      assert.equal(result.snapshotId, record.id);
      assert.deepEqual(await fixture.readContent(target), content);
      await assertNothingStaged();
    });

    it('records the source exactly as the archive manifest describes it', async (t) => {
      if (skip) return t.skip(skip);
      const { source } = await freshSource();
      const record = await snapshot(source);
      const stored = await runtime.repository(undefined).getRecord(record.id);
      assert.deepEqual(stored, record, 'the job result is the stored record');
      if (format === 'chunked') {
        const reader = await formatOf(record).open({ repository: runtime.repository(undefined), record, signal: new AbortController().signal, progress: nullProgress });
        await reader.close();
        assert.deepEqual(reader.manifest, { snapshotId: record.id, createdAt: record.createdAt, source: record.source, labels: record.labels, tool: record.tool });
        return;
      }
      const manifest = (await readTarEntry(path.join(repoDir, record.archive!.key), 'manifest.json')) as { snapshotId: string; source: unknown; labels: unknown; compression: string };
      assert.equal(manifest.snapshotId, record.id);
      assert.deepEqual(manifest.source, record.source);
      assert.deepEqual(manifest.labels, record.labels);
      assert.equal(manifest.compression, record.archive!.compression);
    });

    it('refuses, in the target, a snapshot of another kind and leaves the target untouched', async (t) => {
      if (skip) return t.skip(skip);
      const { work, source } = await freshSource();
      const target = await fixture.freshTarget(work, source);
      made.push(target);
      const opened = await openTarget(target, {}, runtime.endpoints);
      const foreign = testManifest({ source: { kind: `not-${fixture.kind}`, uri: 'other://x', name: 'other' } });
      await assert.rejects(opened.begin(foreign, { signal: new AbortController().signal, progress: nullProgress, replace: true }), (err: Error) => {
        assert.ok(err instanceof InvalidInputError, `an InvalidInputError, got ${err}`);
        assert.match(err.message, new RegExp(`holds a not-${fixture.kind} source`));
        assert.equal(err.message.split('\n').length, 1);
        return true;
      });
      assert.equal(await fixture.readContent(target), undefined, 'nothing was created at the target');
      await assertNothingStaged();
    });

    it('leaves no record, no snapshot folder and no staged files when a snapshot is aborted mid-way', async (t) => {
      if (skip) return t.skip(skip);
      const { source } = await freshSource();
      const before = await listedIds();
      const controller = new AbortController();
      await assert.rejects(snapshot(source, abortingOnFirstData(controller), controller.signal));
      assert.ok(controller.signal.aborted, 'the job was aborted mid-way, not finished');
      assert.deepEqual(await listedIds(), before, 'no new record');
      assert.deepEqual(await snapshotFolders(), before, 'no new snapshot folder or object');
      await assertNothingStaged();
    });

    it('leaves the existing target as it was when a restore with replace is aborted mid-way', async (t) => {
      if (skip) return t.skip(skip);
      const { source } = await freshSource();
      const content = await fixture.readContent(source);
      const record = await snapshot(source);
      const controller = new AbortController();
      await assert.rejects(restore(record, source, { replace: true, progress: abortingOnFirstData(controller), signal: controller.signal }));
      assert.ok(controller.signal.aborted, 'the restore was aborted mid-way, not finished');
      assert.deepEqual(await fixture.readContent(source), content, 'the target is untouched');
      await assertNothingStaged();
    });

    async function listedIds(): Promise<string[]> {
      return (await runtime.repository(undefined).list()).map((r) => r.id).sort();
    }

    async function snapshotFolders(): Promise<string[]> {
      return (await readdir(path.join(repoDir, 'snapshots')).catch(() => [])).sort();
    }
  });
}

/** A progress sink that aborts the job as soon as the first payload bytes or entries move. */
function abortingOnFirstData(controller: AbortController): ProgressSink {
  const abort = () => controller.abort(new Error('aborted by the conformance suite'));
  return { setPhase() {}, setTotal() {}, setTransferred() {}, addStored() {}, addBytes: abort, addEntries: abort };
}

/** The JSON of entry `name` in the uncompressed tar at `file`. */
async function readTarEntry(file: string, name: string): Promise<unknown> {
  const extract = tar.extract();
  createReadStream(file).pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.name === name) {
      extract.destroy();
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    }
  }
  assert.fail(`${file} holds no ${name}`);
}
