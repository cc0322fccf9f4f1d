import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checksumHeader, type SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { loadConfig } from '../shared/config.js';
import { IntegrityError } from '../shared/errors.js';
import { createLogger } from '../shared/logging.js';
import { nullProgress } from '../shared/progress.js';
import { JobRuntime, runJob } from '../worker/job-runner.js';
import { craftArchive, testManifest, type CraftOptions, type RawEntry } from './helpers/archive-fixtures.js';

/**
 * Archives that restore refuses must fail verify too, with the same message: a verify that says
 * OK for an archive that can never be restored is a lie an operator finds out too late.
 */
describe('verify and restore apply the same checks', () => {
  let root: string;
  let repoDir: string;
  let runtime: JobRuntime;
  let record: SnapshotRecord;
  const signal = new AbortController().signal;
  const STREAM = `AGREE_${process.pid}`;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-agree-'));
    repoDir = path.join(root, 'repo');
    const config = loadConfig({ SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${repoDir}` }), SNAPWORKER_ALLOWED_PATHS: root, SNAPWORKER_STAGING_DIR: root, SNAPWORKER_POSTGRES_PROFILES: '{"test":{"user":"postgres"}}' });
    runtime = new JobRuntime(config, createLogger('silent'));
    const source = path.join(root, 'site');
    await mkdir(source);
    await writeFile(path.join(source, 'index.html'), '<h1>hi</h1>');
    record = await runJob({ kind: 'snapshot', data: { v: 1, source: `dir://${source}`, name: 'site' }, signal, progress: nullProgress }, runtime);
  });
  after(async () => {
    await runtime?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Replaces the stored archive with `bytes` and updates the record to match, as a consistent (but hostile) snapshot. */
  async function store(bytes: Buffer, source: SnapshotRecord['source']): Promise<void> {
    await writeFile(path.join(repoDir, record.archive!.key), bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await runtime.repository(undefined).putRecord({ ...record, source, archive: { ...record.archive!, size: bytes.length, sha256, checksum: checksumHeader(sha256) } });
  }

  /** A restore target of the kind the archive claims, so the target takes it and the archive's own checks decide. */
  function targetFor(kind: string): string {
    if (kind === 'sqlite') return `sqlite://${path.join(root, 'restored.db')}`;
    if (kind === 'nats') return `nats://127.0.0.1:4222/${STREAM}`;
    if (kind === 'postgres') return 'postgres://127.0.0.1:5432/snapworker_agree_never_created?profile=test';
    return `dir://${path.join(root, 'restored')}`;
  }

  async function assertBothRefuse(payload: RawEntry[], options: CraftOptions & { recordSource?: SnapshotRecord['source'] }, message: RegExp): Promise<void> {
    const manifest = typeof options.manifest === 'object' ? options.manifest : {};
    const source = options.recordSource ?? { ...testManifest().source, ...manifest.source };
    await store(await craftArchive(payload, { ...options, manifest: { snapshotId: record.id, ...manifest } }), source);
    for (const [kind, data] of [
      ['verify', { v: 1, snapshot: record.id }],
      ['restore', { v: 1, snapshot: record.id, target: targetFor(source.kind) }],
    ] as const) {
      await assert.rejects(runJob({ kind, data, signal, progress: nullProgress } as Parameters<typeof runJob>[0], runtime), (err: unknown) => {
        assert.ok(err instanceof IntegrityError, `${kind}: an IntegrityError, got ${String(err)}`);
        assert.match(err.message, message, kind);
        return true;
      });
    }
    assert.deepEqual((await readdir(root)).sort(), ['repo', 'site'], 'restore left nothing behind');
  }

  it('refuses a manifest with a source kind this version does not know', async () => {
    await assertBothRefuse([{ name: 'dump.sql', data: 'select 1;' }], { manifest: { source: { kind: 'mysql', uri: 'mysql://db/app', name: 'app' } }, recordSource: testManifest().source }, /unknown source kind "mysql"/);
  });

  it('refuses a postgres archive with an entry outside dump/, or without the dump\'s toc.dat', async () => {
    const postgres = { manifest: { source: { kind: 'postgres', uri: 'postgres://db:5432/app', name: 'app' } }, recordSource: { kind: 'postgres', uri: 'postgres://db:5432/app', name: 'app' } };
    await assertBothRefuse([{ name: 'dump.sql', data: 'select 1;' }], postgres, /entry dump\.sql: a file does not belong in a postgres snapshot/);
    await assertBothRefuse([{ name: 'dump/3001.dat', data: '1\n' }], postgres, /a postgres snapshot needs dump\/toc\.dat, which is missing/);
  });

  it('refuses a directory archive with an entry outside data/, or data as a file', async () => {
    await assertBothRefuse([{ name: 'data', type: 'directory' }, { name: 'data/a', data: 'a' }, { name: 'other/x', data: 'x' }], {}, /entry other\/x: a file does not belong in a dir snapshot/);
    await assertBothRefuse([{ name: 'data', data: 'not a directory' }], {}, /entry data: a file does not belong in a dir snapshot \(expected data\/ as a directory\)/);
    await assertBothRefuse([{ name: 'data', type: 'directory' }, { name: 'databases/app', data: 'x' }], {}, /entry databases\/app: a file does not belong in a dir snapshot/);
  });

  it('refuses nats and sqlite archives that miss or add entries, or whose backup.json restore cannot read', async () => {
    const nats = { source: { kind: 'nats', uri: `nats://127.0.0.1:4222/${STREAM}`, name: STREAM } };
    const backup = JSON.stringify({ config: { name: STREAM }, state: {} });
    await assertBothRefuse([{ name: 'backup.json', data: backup }], { manifest: nats }, /a nats snapshot needs stream\.tar\.s2, which is missing/);
    await assertBothRefuse([{ name: 'backup.json', data: backup }, { name: 'stream.tar.s2', data: 'x' }, { name: 'data/x', data: 'x' }], { manifest: nats }, /entry data\/x: a file does not belong in a nats snapshot/);
    await assertBothRefuse([{ name: 'backup.json', data: '{}' }, { name: 'stream.tar.s2', data: 'x' }], { manifest: nats }, /^nats: backup\.json: expected \{"config": \{\.\.\.\}, "state": \{\.\.\.\}\}$/);
    const sqlite = { source: { kind: 'sqlite', uri: 'sqlite:///srv/app.db', name: 'app' } };
    await assertBothRefuse([], { manifest: sqlite }, /a sqlite snapshot needs at least one database/);
    await assertBothRefuse([{ name: 'databases', type: 'directory' }], { manifest: sqlite }, /entry databases: a directory does not belong in a sqlite snapshot/);
  });

  it('refuses a manifest whose source URI carries credentials', async () => {
    const leaky = testManifest().source;
    await assertBothRefuse([{ name: 'data', type: 'directory' }], { manifest: { source: { ...leaky, uri: 'dir://admin:hunter2@backup-host/srv/app' } } }, /manifest\.json: source\.uri carries credentials/);
    await assertBothRefuse([{ name: 'backup.json', data: '{}' }, { name: 'stream.tar.s2', data: 'x' }], { manifest: { source: { kind: 'nats', uri: `nats://s3cr3t-token@127.0.0.1:4222/${STREAM}`, name: STREAM } } }, /source\.uri carries credentials/);
  });
});
