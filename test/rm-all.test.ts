import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli } from './helpers/cli.js';

describe('rm --all with a label (delete every snapshot of an app)', () => {
  let root: string;
  let repo: string;
  let source: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-rm-all-'));
    repo = `file://${path.join(root, 'repo')}`;
    source = path.join(root, 'site');
    await mkdir(source);
    await writeFile(path.join(source, 'index.html'), 'hi');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const env = () => ({ SNAPWORKER_ALLOWED_PATHS: root, SNAPWORKER_AUTO_INIT: 'true' });
  const snapshot = async (app: string) => {
    const run = await cli(['snapshot', `dir://${source}`, '--repo', repo, '--label', `app=${app}`, '--local', '--json'], env());
    assert.equal(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as { id: string }).id;
  };
  const listed = async () => (JSON.parse((await cli(['ls', '--repo', repo, '--json'], env())).stdout) as Array<{ id: string }>).map((r) => r.id);

  it('lists with --dry-run, then removes exactly the snapshots carrying the label, and refuses --all without a filter', async () => {
    const shop = [await snapshot('shop'), await snapshot('shop')];
    const blog = await snapshot('blog');

    const dry = await cli(['rm', '--repo', repo, '--label', 'app=shop', '--all', '--dry-run'], env());
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, `would remove ${shop[0]}\nwould remove ${shop[1]}\nwould remove 2 snapshots\n`);
    assert.deepEqual(await listed(), [...shop, blog].sort(), 'a dry run removes nothing');

    const real = await cli(['rm', '--repo', repo, '--label', 'app=shop', '--all', '--json'], env());
    assert.equal(real.code, 0, real.stderr);
    assert.deepEqual(JSON.parse(real.stdout), { dryRun: false, removed: shop });
    assert.deepEqual(await listed(), [blog]);

    for (const [args, message] of [
      [['rm', '--repo', repo, '--all'], /needs --source or --label/],
      [['rm', '--repo', repo, '--label', 'app=blog'], /give a <snapshot>, or --all/],
      [['rm', blog, '--repo', repo, '--label', 'app=blog', '--all'], /drop "/],
    ] as const) {
      const refused = await cli([...args], env());
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, message);
      assert.equal(refused.stderr.trim().split('\n').length, 1);
    }
    assert.deepEqual(await listed(), [blog]);
  });
});
