import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli } from './helpers/cli.js';

/**
 * Root ignores permission bits; without CAP_DAC_OVERRIDE (and CAP_DAC_READ_SEARCH) it meets them
 * like any user, so the permission tests run the same as root and as a plain user.
 */
const asUnprivileged = process.getuid?.() === 0 ? ['capsh', '--drop=cap_dac_override,cap_dac_read_search', '--', '-c'] : [];

/**
 * A restore target whose existing type differs from what the snapshot holds is refused, even
 * with --replace, and a target the process may not create says so in one line naming the path
 * and the operation, for each kind that restores onto the filesystem.
 */
describe('restore targets of the wrong type, or where nothing may be created', () => {
  let root: string;
  let repo: string;
  let dirSnapshot: string;
  let sqliteSnapshot: string;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-target-kinds-'));
    repo = `file://${path.join(root, 'repo')}`;
    await mkdir(path.join(root, 'src'));
    await writeFile(path.join(root, 'src', 'a.txt'), 'a');
    const db = path.join(root, 'app.db');
    assert.equal(spawnSync('sqlite3', [db, 'CREATE TABLE t(x); INSERT INTO t VALUES (1);']).status, 0);
    for (const [source, set] of [
      [`dir://${root}/src`, (id: string) => (dirSnapshot = id)],
      [`sqlite://${db}`, (id: string) => (sqliteSnapshot = id)],
    ] as const) {
      const run = await cli(['snapshot', source, '--repo', repo, '--local', '--json']);
      assert.equal(run.code, 0, run.stderr);
      set((JSON.parse(run.stdout) as { id: string }).id);
    }
  });
  after(async () => {
    await chmod(path.join(root, 'locked'), 0o755).catch(() => {});
    await rm(root, { recursive: true, force: true });
  });

  async function refused(args: string[], message: string, wrap: string[] = []): Promise<void> {
    const run = await cli([...args, '--repo', repo, '--local'], {}, undefined, wrap);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stderr, `snapworker: ${message}\n`);
  }

  it('a directory snapshot is not restored onto a regular file, even with --replace', async () => {
    const target = path.join(root, 'a-file');
    await writeFile(target, 'keep me');
    await refused(
      ['restore', dirSnapshot, `dir://${target}`, '--replace'],
      `restore: target ${target} is a regular file, not a directory; a directory snapshot restores only onto a directory (move it away first)`,
    );
    assert.equal(await readFile(target, 'utf8'), 'keep me');
  });

  it('a SQLite snapshot is not restored onto a directory or a symlink, even with --replace', async () => {
    const target = path.join(root, 'a-dir');
    await mkdir(target);
    await writeFile(path.join(target, 'inside'), 'keep me');
    await refused(
      ['restore', sqliteSnapshot, `sqlite://${target}`, '--replace'],
      `sqlite target ${target}: is a directory, not a database file; a database restores only onto a file or a free path (move it away first)`,
    );
    assert.deepEqual(await readdir(target), ['inside']);
    const link = path.join(root, 'link.db');
    await symlink(path.join(root, 'app.db'), link);
    await refused(['restore', sqliteSnapshot, `sqlite://${link}`, '--replace'], `sqlite target ${link}: is a symlink; restore to the database file it points to`);
  });

  it('a restore into a folder it may not write names the path and the operation, for each kind', async () => {
    const locked = path.join(root, 'locked');
    await mkdir(locked);
    await chmod(locked, 0o555);
    await refused(
      ['restore', sqliteSnapshot, `sqlite://${locked}/app.db`],
      `restore: cannot create app.db in ${locked}: permission denied`,
      asUnprivileged,
    );
    await refused(['restore', dirSnapshot, `dir://${locked}/tree`], `restore: cannot create tree in ${locked}: permission denied`, asUnprivileged);
    await chmod(locked, 0o755);
    assert.deepEqual(await readdir(locked), [], 'nothing left behind');
  });
});
