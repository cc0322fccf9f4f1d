import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Job } from 'bullmq';
import { snapshotRecordSchema, type SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { encodeJobIdToken } from '../shared/events/job-event-subject.js';
import { EVENT_SCHEMA_PATH } from './helpers/observability.js';
import { createTestEnvironment, eventually, PROJECT_ROOT, type TestEnvironment } from './helpers/worker-fixture.js';
import { snapworkerCommand } from './helpers/compiled-cli.js';

const SHARED_NATS = 'nats://127.0.0.1:4222';
const NOBODY = 65534;
const IS_ROOT = process.getuid?.() === 0;

/**
 * The command prefix that runs a child without root's power to read anything: root ignores
 * `chmod 000`, so as root the child runs as `nobody` (setpriv, util-linux); otherwise as is.
 */
function unprivileged(command: string[]): string[] {
  return IS_ROOT ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...command] : command;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, ...rest] = unprivileged(snapworkerCommand(...args));
  return new Promise((resolve) => {
    const child = spawn(command!, rest, { cwd: PROJECT_ROOT, env: { ...process.env, ...env, HOME: '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `snapworker worker` as a child, unprivileged, with its log collected. */
function startWorker(env: NodeJS.ProcessEnv): { child: ChildProcess; logs: () => string; stop: () => Promise<void> } {
  const [command, ...rest] = unprivileged(snapworkerCommand('worker'));
  const child = spawn(command!, rest, { cwd: PROJECT_ROOT, env: { ...process.env, ...env, HOME: '/tmp', LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr!.on('data', (c: Buffer) => (logs += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    logs: () => logs,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function collect(connection: NatsConnection, subject: string): Msg[] {
  const messages: Msg[] = [];
  const subscription = connection.subscribe(subject);
  void (async () => {
    for await (const message of subscription) messages.push(message);
  })();
  return messages;
}

async function settled(environment: TestEnvironment, job: Job): Promise<Job> {
  return eventually(`job ${job.id} to finish`, async () => {
    const current = await environment.queue.getJob(job.id!);
    const state = await current?.getState();
    return state === 'completed' || state === 'failed' ? current : undefined;
  }, 60_000);
}

describe('entries a snapshot cannot keep are named, never dropped in silence', () => {
  let environment: TestEnvironment;
  let source: string;
  let worker: ReturnType<typeof startWorker>;
  let nats: NatsConnection;
  const SOCKETS = 120;

  before(async () => {
    environment = await createTestEnvironment({ NATS_URL: SHARED_NATS });
    source = path.join(environment.root, 'app');
    await mkdir(path.join(source, 'private'), { recursive: true });
    await writeFile(path.join(source, 'index.html'), '<h1>hi</h1>');
    await writeFile(path.join(source, 'secret.key'), 'only root reads this');
    await writeFile(path.join(source, 'private', 'notes.txt'), 'hidden');
    // Named to sort after the unreadable entries: those are among the first 100 named.
    // Sockets: the one kind of entry no archive can hold. One child binds them all and exits
    // without closing, so the socket files stay (closing a server would unlink them).
    const bindAll = `const net = require('net'); let n = 0; for (const p of process.argv.slice(1)) net.createServer().listen(p, () => { if (++n === ${SOCKETS}) process.exit(0); });`;
    execFileSync(process.execPath, ['-e', bindAll, ...Array.from({ length: SOCKETS }, (_, i) => path.join(source, `zz-sock-${String(i).padStart(3, '0')}`))]);
    // Everything (repository, staging) belongs to the unprivileged user, except what it must not read.
    if (IS_ROOT) execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, environment.root]);
    await chmod(path.join(source, 'secret.key'), 0o000);
    await chmod(path.join(source, 'private'), 0o000);
    if (IS_ROOT) await chown(environment.root, NOBODY, NOBODY);
    nats = await connect({ servers: SHARED_NATS });
    worker = startWorker(environment.env);
  });
  after(async () => {
    await worker?.stop();
    await nats?.close();
    await chmod(path.join(source, 'private'), 0o755).catch(() => {});
    await environment?.cleanup();
  });

  it('reads records written before notices existed as complete', () => {
    const old = {
      v: 1,
      id: '20261101T000000000Z-0a1b2c3d',
      formatVersion: 1,
      source: { kind: 'dir', uri: 'dir:///srv/app', name: 'app' },
      labels: {},
      createdAt: '2026-11-01T00:00:00.000Z',
      completedAt: '2026-11-01T00:00:01.000Z',
      archive: { key: 'snapshots/20261101T000000000Z-0a1b2c3d/archive.tar.zst', compression: 'zstd', size: 1, sha256: '0'.repeat(64), checksum: 'sha-256=' },
      stats: { entries: 0, files: 0, rawBytes: 0, storedBytes: 1, durationSeconds: 1 },
      tool: { name: 'snapworker', version: '0.1.0' },
    };
    const parsed = snapshotRecordSchema.parse(old);
    assert.equal(parsed.incomplete, undefined);
    assert.equal(parsed.notices, undefined);
  });

  it('fails a snapshot with an unreadable file by default, naming the file (exit 1)', async () => {
    const run = await runCli(['snapshot', `dir://${source}`, '--local'], environment.env);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /\/app\/(private|secret\.key)\b.*EACCES: permission denied/);
  });

  it('with --skip-unreadable leaves unreadable entries out, names them and every socket, marks the snapshot incomplete and exits 3', async () => {
    const run = await runCli(['snapshot', `dir://${source}`, '--local', '--skip-unreadable', '--json'], environment.env);
    assert.equal(run.code, 3, run.stderr);
    const record = JSON.parse(run.stdout) as SnapshotRecord;
    assert.equal(record.incomplete, true);
    assert.deepEqual(record.notices?.counts, { unreadable: 2, unsupported: SOCKETS });
    assert.equal(record.notices?.first.length, 100);
    assert.equal(record.notices?.truncated, true);
    const unreadable = record.notices!.first.filter((n) => n.kind === 'unreadable').map((n) => n.path).sort();
    assert.deepEqual(unreadable, ['data/private', 'data/secret.key']);
    assert.ok(record.notices!.first.some((n) => n.kind === 'unsupported' && n.path === 'data/zz-sock-000' && n.reason === 'socket'));
    assert.match(run.stderr, /warning: unreadable data\/secret\.key: EACCES/);

    // The record in the repository says the same; ls marks it, show prints it.
    const ls = await runCli(['ls', '--repo', `file://${environment.repoDir}`], environment.env);
    assert.match(ls.stdout, new RegExp(`^${record.id.slice(record.id.indexOf('-') + 1)}!\\s+.*dir:app`, 'm'));
    const show = JSON.parse((await runCli(['show', record.id, '--repo', `file://${environment.repoDir}`], environment.env)).stdout) as SnapshotRecord;
    assert.equal(show.incomplete, true);
    assert.deepEqual(show.notices, record.notices);
  });

  it('through the queue: the result, the job log and warning events name them; --wait exits 3', async () => {
    const validate = new Ajv2020({ allErrors: true, strict: true });
    (addFormats as unknown as (ajv: Ajv2020) => void)(validate);
    const isEvent = validate.compile(JSON.parse(await readFile(EVENT_SCHEMA_PATH, 'utf8')));
    const jobId = `notices-${Date.now()}`;
    const warnings = collect(nats, `snapworker.jobs.${encodeJobIdToken(jobId)}.warning`);
    await nats.flush();

    const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, skipUnreadable: true }, { jobId });
    const done = await settled(environment, job);
    assert.equal(await done.getState(), 'completed', done.failedReason);
    const record = done.returnvalue as SnapshotRecord;
    assert.equal(record.incomplete, true);
    assert.deepEqual(record.notices?.counts, { unreadable: 2, unsupported: SOCKETS });

    await eventually('100 warning events', () => warnings.length >= 100, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(warnings.length, 100, 'only the named notices become events');
    const first = warnings.map((m) => m.json<Record<string, unknown>>());
    for (const event of first) assert.ok(isEvent(event), JSON.stringify(isEvent.errors));
    assert.ok(first.some((e) => e.notice === 'unreadable' && e.path === 'data/secret.key' && e.kind === 'snapshot'));

    const logs = worker.logs();
    assert.equal((logs.match(/entry not kept exactly: /g) ?? []).length, 100);
    assert.match(logs, /"notice":"unreadable","path":"data\/private"/);
    assert.match(logs, /22 more entries not kept exactly/);

    const wait = await runCli(['snapshot', `dir://${source}`, '--wait', '--skip-unreadable'], environment.env);
    assert.equal(wait.code, 3, wait.stderr);
    assert.match(wait.stdout, /INCOMPLETE: 2 unreadable, 120 unsupported entries not kept exactly/);
  });
});
