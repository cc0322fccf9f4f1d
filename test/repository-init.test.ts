import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import { InvalidInputError, RepositoryMissingError } from '../shared/errors.js';
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

  it('hands the replica store a view of replicas/ only, which refuses keys outside it', async () => {
    const dir = path.join(root, 'replicas');
    const storage = new Repository('replicas', openDriver(`file://${dir}`)).replicaStorage();
    await storage.put('replicas/app/generations/x/generation.json', Readable.from([Buffer.from('{}')]), { size: 2 });
    assert.equal(await readFile(path.join(dir, 'replicas/app/generations/x/generation.json'), 'utf8'), '{}', 'the layout on disk is the driver\'s, unprefixed');
    const keys: string[] = [];
    for await (const object of storage.list('replicas/app/')) keys.push(object.key);
    assert.deepEqual(keys, ['replicas/app/generations/x/generation.json']);
    for (const attempt of [
      () => storage.put('config.json', Readable.from([Buffer.from('{}')]), { size: 2 }),
      () => storage.get('snapshots/x/snapshot.json'),
      () => storage.delete('config.json'),
      async () => {
        for await (const _object of storage.list('snapshots/')) break;
      },
    ]) {
      await assert.rejects(attempt(), (error: Error) => error instanceof InvalidInputError && /outside replicas\//.test(error.message));
    }
    await storage.delete('replicas/app/generations/x/generation.json');
    await assert.rejects(readFile(path.join(dir, 'replicas/app/generations/x/generation.json')), /ENOENT/);
  });
});
