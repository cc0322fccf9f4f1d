import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../shared/config.js';

describe('worker configuration', () => {
  it('starts from embedded defaults: local Redis, a filesystem repository in the working directory', () => {
    const config = loadConfig({}, '/srv/app');
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(config.queueName, 'snapworker');
    assert.equal(config.prefix, 'bull');
    assert.deepEqual(config.repositories, { default: 'file:///srv/app/.snapworker/repo' });
    assert.deepEqual(config.allowedPaths, ['/srv/app']);
    assert.equal(config.natsUrl, undefined);
    assert.equal(config.metricsPort, 9464);
  });

  it('reads repositories, allowed paths, hash-tag prefixes and a seal key', () => {
    const config = loadConfig({
      SNAPWORKER_REPOSITORIES: '{"main":"s3://bucket/prefix?region=eu-west-1","local":"file:///var/lib/snap"}',
      SNAPWORKER_DEFAULT_REPOSITORY: 'main',
      SNAPWORKER_ALLOWED_PATHS: '/data:/var/lib/app',
      SNAPWORKER_PREFIX: '{snapworker}',
      SNAPWORKER_SEAL_KEY: 'ab'.repeat(32),
      SNAPWORKER_SEAL_KEY_ID: 'k1',
    });
    assert.equal(config.defaultRepository, 'main');
    assert.deepEqual(config.allowedPaths, ['/data', '/var/lib/app']);
    assert.equal(config.prefix, '{snapworker}');
    assert.equal(config.seal?.keyId, 'k1');
    assert.equal(config.seal?.key.length, 32);
  });

  it('names every bad value in one error', () => {
    const err = captureConfigError({
      SNAPWORKER_CONCURRENCY: 'lots',
      SNAPWORKER_METRICS_PORT: '70000',
      REDIS_URL: 'http://x',
    });
    assert.match(err.message, /SNAPWORKER_CONCURRENCY/);
    assert.match(err.message, /SNAPWORKER_METRICS_PORT/);
    assert.match(err.message, /REDIS_URL/);
  });

  it('refuses repositories that are not JSON or not file/s3 URIs, and relative allowed paths', () => {
    assert.match(captureConfigError({ SNAPWORKER_REPOSITORIES: 'default=file:///x' }).message, /SNAPWORKER_REPOSITORIES: not valid JSON/);
    assert.match(captureConfigError({ SNAPWORKER_REPOSITORIES: '{"default":"ftp://x"}' }).message, /SNAPWORKER_REPOSITORIES.default: must be a file:\/\/ or s3:\/\/ URI/);
    assert.match(captureConfigError({ SNAPWORKER_ALLOWED_PATHS: 'data' }).message, /SNAPWORKER_ALLOWED_PATHS: data is not an absolute path/);
    assert.match(captureConfigError({ SNAPWORKER_DEFAULT_REPOSITORY: 'nope' }).message, /"nope" is not one of/);
    assert.match(captureConfigError({ SNAPWORKER_SEAL_KEY: 'short' }).message, /SNAPWORKER_SEAL_KEY/);
  });

  it('keeps setuid, setgid and sticky bits on restore only when SNAPWORKER_RESTORE_SETUID is true', () => {
    assert.equal(loadConfig({}, '/srv/app').restoreSetuid, false);
    assert.equal(loadConfig({ SNAPWORKER_RESTORE_SETUID: 'true' }, '/srv/app').restoreSetuid, true);
    assert.match(captureConfigError({ SNAPWORKER_RESTORE_SETUID: 'yes' }).message, /SNAPWORKER_RESTORE_SETUID: must be true or false/);
  });
});

function captureConfigError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env, '/srv/app');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('configuration was accepted');
}
