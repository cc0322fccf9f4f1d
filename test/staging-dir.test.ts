import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../shared/config.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';
import { snapworkerArgs } from './helpers/compiled-cli.js';

/** The ConfigError `loadConfig` throws for `env`, or a failure when it accepts it. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env, '/srv/app');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('configuration was accepted');
}

describe('the staging directory is checked once, at start, for every source kind', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-staging-check-'));
  });
  after(async () => {
    spawnSync('umount', ['-l', path.join(root, 'read-only')]);
    await rm(root, { recursive: true, force: true });
  });

  it('accepts an existing writable directory', () => {
    assert.equal(loadConfig({ SNAPWORKER_STAGING_DIR: root }, '/srv/app').stagingDir, root);
  });

  it('refuses a missing directory, a file, and a read-only mount, naming the variable and the path', async () => {
    const missing = path.join(root, 'no-such-dir');
    assert.match(configError({ SNAPWORKER_STAGING_DIR: missing }).message, new RegExp(`SNAPWORKER_STAGING_DIR="${missing}": does not exist`));
    const file = path.join(root, 'a-file');
    await writeFile(file, '');
    assert.match(configError({ SNAPWORKER_STAGING_DIR: file }).message, /SNAPWORKER_STAGING_DIR=".*a-file": is not a directory/);
    const readOnly = path.join(root, 'read-only');
    await mkdir(readOnly);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly]).status === 0) {
      assert.match(configError({ SNAPWORKER_STAGING_DIR: readOnly }).message, /SNAPWORKER_STAGING_DIR=".*read-only": is not writable \(EROFS\)/);
    }
  });

  for (const args of [['worker'], ['snapshot', 'dir:///srv', '--local']]) {
    it(`\`snapworker ${args.join(' ')}\` with a missing staging directory exits with code 2 at once, naming it`, async () => {
      const missing = path.join(root, 'gone');
      const child = spawn(process.execPath, snapworkerArgs(...args), {
        cwd: PROJECT_ROOT,
        env: { ...process.env, SNAPWORKER_STAGING_DIR: missing, REDIS_URL: 'redis://127.0.0.1:1', SNAPWORKER_METRICS_PORT: '0' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 2, stderr);
      assert.match(stderr, new RegExp(`SNAPWORKER_STAGING_DIR="${missing}": does not exist`));
    });
  }
});
