import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import { RepositoryMissingError } from '../shared/errors.js';
import { openDriver } from '../shared/storage/open-driver.js';

describe('creating a repository', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-repo-init-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads never create it; concurrent automatic creations write one config and all succeed', async () => {
    const dir = path.join(root, 'auto');
    const open = () => new Repository('auto', openDriver(`file://${dir}`));
    const reader = open();
    await assert.rejects(reader.list().then(() => reader.requireExists()), RepositoryMissingError);
    assert.equal(await reader.exists(), false);
    await assert.rejects(readdir(dir), /ENOENT/, 'nothing was created by reading');

    const shared = open();
    const created = await Promise.all([shared.initIfMissing(), shared.initIfMissing(), open().initIfMissing()]);
    assert.ok(created.filter(Boolean).length >= 1, `created: ${created}`);
    assert.equal(created[0], created[1], 'callers on one repository share one creation');
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(Object.keys(config).sort(), ['createdAt', 'format', 'formatVersion', 'id', 'v']);
    assert.equal(await open().initIfMissing(), false);
    await open().requireExists();
  });
});
