import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createOwnedStagingDir } from '../shared/fsutil/owned-staging-dir.js';
import { runPgTool } from '../shared/kinds/postgres/pg-tools.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';

const host = os.hostname().replace(/[^A-Za-z0-9.]/g, '_');

/** True once `pid` is gone (polled: a killed orphan is reaped by init a moment later). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(20);
  }
  return false;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await once(child, 'exit');
  return child.pid!;
}

/** Waits for the fake tool to write its worker's pid. */
async function workerPid(file: string): Promise<number> {
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.trim()) return Number(text);
    await sleep(20);
  }
}

describe('PostgreSQL client programs and staging left by a killed run', () => {
  let root: string;
  let bin: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-pg-cleanup-'));
    bin = path.join(root, 'bin');
    await mkdir(bin);
    // A stand-in pg_restore that forks a worker, as pg_restore -j does, and waits for it.
    await writeFile(path.join(bin, 'pg_restore'), '#!/bin/sh\nsleep 300 &\necho $! > "$1"\nwait\n');
    await chmod(path.join(bin, 'pg_restore'), 0o755);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('a new staging folder removes those this host made for processes that are gone, and nothing else', async () => {
    const staging = path.join(root, 'staging');
    await mkdir(staging);
    const dead = await deadPid();
    const names = {
      stale: `postgres-restore-${host}-${dead}-abcdef`,
      live: `postgres-restore-${host}-${process.pid}-ghijkl`,
      otherHost: `postgres-restore-elsewhere-${dead}-mnopqr`,
      otherKind: `postgres-snapshot-${host}-${dead}-stuvwx`,
      unrelated: 'sqlite-snapshot-abcdef',
    };
    for (const name of Object.values(names)) await mkdir(path.join(staging, name, 'dump'), { recursive: true });
    const made = await createOwnedStagingDir(staging, 'postgres-restore-');
    assert.match(path.basename(made.path), new RegExp(`^postgres-restore-${host.replace(/\./g, '\\.')}-${process.pid}-[A-Za-z0-9]{6}$`));
    const left = (await readdir(staging)).sort();
    assert.deepEqual(left, [names.live, names.otherHost, names.otherKind, names.unrelated, path.basename(made.path)].sort());
    await made.remove();
  });

  it('an abort kills the program and the workers it forked', async () => {
    const file = path.join(root, 'abort.pid');
    const controller = new AbortController();
    const run = runPgTool('pg_restore', [file], { binDir: bin, env: process.env, signal: controller.signal, what: 'test' });
    const worker = await workerPid(file);
    controller.abort(new Error('stop'));
    await assert.rejects(run, /stop/);
    assert.ok(await gone(worker), 'the forked worker is gone too');
  });

  it('a command that exits while the program runs takes the program and its workers with it', async () => {
    const file = path.join(root, 'exit.pid');
    const script = `
      import { runPgTool } from ${JSON.stringify(path.join(PROJECT_ROOT, 'shared/kinds/postgres/pg-tools.ts'))};
      import { readFileSync } from 'node:fs';
      runPgTool('pg_restore', [${JSON.stringify(file)}], { binDir: ${JSON.stringify(bin)}, env: process.env, signal: new AbortController().signal, what: 'test' }).catch(() => {});
      const timer = setInterval(() => { try { if (readFileSync(${JSON.stringify(file)}, 'utf8').trim()) process.exit(130); } catch {} }, 20);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, stdio: 'inherit' });
    const [code] = await once(child, 'exit');
    assert.equal(code, 130);
    assert.ok(await gone(await workerPid(file)), 'no pg_restore worker outlives the command');
  });
});
