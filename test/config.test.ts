import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../shared/config.js';
import { parseNatsServerUrls } from '../shared/nats/nats-servers.js';
import { ServerPolicy } from '../shared/kinds/server-policy.js';

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

  it('takes cluster and Sentinel URLs, and refuses a cluster prefix without a hash tag, never printing the password', () => {
    assert.equal(loadConfig({ REDIS_URL: 'redis+cluster://:pw@a:7000,b:7001', SNAPWORKER_PREFIX: '{snap}' }).redisUrl, 'redis+cluster://:pw@a:7000,b:7001');
    assert.equal(loadConfig({ REDIS_URL: 'rediss+sentinel://s1,s2/mymaster' }).redisUrl, 'rediss+sentinel://s1,s2/mymaster');
    const noTag = captureConfigError({ REDIS_URL: 'redis+cluster://:hunter2@a:7000', SNAPWORKER_PREFIX: 'snap' });
    assert.match(noTag.message, /SNAPWORKER_PREFIX="snap": on a Redis Cluster the prefix needs a hash tag such as \{snapworker\}/);
    // `{}` is no hash tag: Redis then hashes the whole key.
    assert.match(captureConfigError({ REDIS_URL: 'redis+cluster://a:7000', SNAPWORKER_PREFIX: '{}x' }).message, /needs a hash tag/);
    const badUrl = captureConfigError({ REDIS_URL: 'redis://:hunter2@a:1,b:2' });
    assert.match(badUrl.message, /REDIS_URL="redis:\/\/\*\*\*@a:1,b:2": a redis:\/\/ URL names exactly one server; use redis\+cluster:\/\//);
    assert.doesNotMatch(noTag.message + badUrl.message, /hunter2/);
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
    // Each URI is parsed at start, so a bad one is listed with the other problems, not found by the first job.
    const both = captureConfigError({ SNAPWORKER_CONCURRENCY: 'lots', SNAPWORKER_REPOSITORIES: '{"default":"file://rel/x","b":"s3://bk/p?bogus=1"}' }).message;
    assert.match(both, /SNAPWORKER_CONCURRENCY="lots"/);
    assert.match(both, /SNAPWORKER_REPOSITORIES.default: repository URI "file:\/\/rel\/x": host/);
    assert.match(both, /SNAPWORKER_REPOSITORIES.b: .*parameter bogus: unknown/);
    assert.match(captureConfigError({ SNAPWORKER_ALLOWED_PATHS: 'data' }).message, /SNAPWORKER_ALLOWED_PATHS: "data" is not an absolute path/);
    assert.match(captureConfigError({ SNAPWORKER_DEFAULT_REPOSITORY: 'nope' }).message, /"nope": not one of/);
    assert.match(captureConfigError({ SNAPWORKER_SEAL_KEY: 'short' }).message, /SNAPWORKER_SEAL_KEY/);
  });

  it('keeps setuid, setgid and sticky bits on restore only when SNAPWORKER_RESTORE_SETUID is true', () => {
    assert.equal(loadConfig({}, '/srv/app').restoreSetuid, false);
    assert.equal(loadConfig({ SNAPWORKER_RESTORE_SETUID: 'true' }, '/srv/app').restoreSetuid, true);
    assert.match(captureConfigError({ SNAPWORKER_RESTORE_SETUID: 'yes' }).message, /SNAPWORKER_RESTORE_SETUID="yes": must be true or false/);
  });

  it('lists every bad value, one line each, however late it is checked', () => {
    const err = captureConfigError({
      SNAPWORKER_CONCURRENCY: 'lots',
      LOG_LEVEL: 'loud',
      SNAPWORKER_REPOSITORIES: '{"a":"ftp://x"}',
      SNAPWORKER_ALLOWED_PATHS: 'relative',
      SNAPWORKER_STAGING_DIR: 'tmp',
      NATS_URL: 'http://events',
      SNAPWORKER_NATS_ALLOWED_SERVERS: 'nats://[bad',
    });
    assert.equal(err.problems.length, 7, err.message);
    const lines = err.message.split('\n');
    assert.equal(lines.length, 1 + err.problems.length, 'one header line, then one line per problem');
    for (const name of ['SNAPWORKER_CONCURRENCY="lots"', 'LOG_LEVEL="loud"', 'SNAPWORKER_REPOSITORIES.a', 'SNAPWORKER_ALLOWED_PATHS', 'SNAPWORKER_STAGING_DIR', 'NATS_URL', 'SNAPWORKER_NATS_ALLOWED_SERVERS']) {
      assert.equal(lines.filter((line) => line.includes(name)).length, 1, `one line for ${name}:\n${err.message}`);
    }
  });

  it('treats an empty or blank variable as unset', () => {
    const config = loadConfig({ NATS_URL: '', SNAPWORKER_CONCURRENCY: ' ', LOG_LEVEL: '', SNAPWORKER_REPOSITORIES: '' }, '/srv/app');
    assert.equal(config.natsUrl, undefined);
    assert.equal(config.concurrency, 2);
    assert.equal(config.logLevel, 'info');
    assert.deepEqual(config.repositories, { default: 'file:///srv/app/.snapworker/repo' });
  });

  it('never prints a secret in a configuration problem', () => {
    const message = captureConfigError({
      NATS_URL: 'nats://events:hunter2@nats:4222,ftp://other',
      SNAPWORKER_SEAL_KEY: 'hunter2',
      SNAPWORKER_NATS_PROFILES: '{"p":{"pass":"hunter2","bogus":1}}',
    }).message;
    assert.doesNotMatch(message, /hunter2/);
    assert.match(message, /NATS_URL="nats:\/\/\*\*\*@nats:4222,ftp:\/\/other"/);
    for (const variable of ['SNAPWORKER_NATS_PROFILES', 'SNAPWORKER_POSTGRES_PROFILES']) {
      const broken = captureConfigError({ [variable]: '{"a":{"user":"u","pass":hunter2}}' }).message;
      assert.match(broken, new RegExp(`${variable}: not valid JSON`));
      assert.doesNotMatch(broken, /hunter2/, 'a JSON error quotes the text around it');
    }
  });

  it('reads SNAPWORKER_<KIND>_PROFILES for each kind with a profile schema, by kind then name', () => {
    const config = loadConfig({ SNAPWORKER_NATS_PROFILES: '{"orders":{"user":"app","pass":"s3cret"}}' }, '/srv/app');
    assert.deepEqual(config.profiles, { nats: { orders: { user: 'app', pass: 's3cret' } }, postgres: {} });
    assert.deepEqual(loadConfig({}, '/srv/app').profiles, { nats: {}, postgres: {} }, 'a kind without the variable has no profiles');
    const postgres = captureConfigError({ SNAPWORKER_POSTGRES_PROFILES: '{"app":{"user":"backup","passwordEnv":"PG_PASS_s3cret"}}' }).message;
    assert.match(postgres, /SNAPWORKER_POSTGRES_PROFILES\.app: a profile with a password or client key must list the hosts/);
    assert.doesNotMatch(postgres, /s3cret/);
    const message = captureConfigError({ SNAPWORKER_NATS_PROFILES: '{"a":{"token":1},"b":{"pass":"s3cret","tls":{"ca":"x"}}}', SNAPWORKER_CONCURRENCY: 'many' }).message;
    assert.match(message, /SNAPWORKER_NATS_PROFILES\.a\.token: /);
    assert.match(message, /SNAPWORKER_NATS_PROFILES\.b\.tls: /);
    assert.match(message, /SNAPWORKER_CONCURRENCY=/, 'listed with every other bad value');
    assert.doesNotMatch(message, /s3cret/);
  });

  it('finds no repository named after a property of Object', () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      assert.match(captureConfigError({ SNAPWORKER_DEFAULT_REPOSITORY: name }).message, new RegExp(`SNAPWORKER_DEFAULT_REPOSITORY="${name}": not one of`));
    }
    assert.match(captureConfigError({ SNAPWORKER_REPOSITORIES: '{"__proto__":"file:///x","default":"file:///y"}' }).message, /"__proto__" cannot be a name/);
    assert.match(captureConfigError({ SNAPWORKER_NATS_PROFILES: '{"__proto__":{}}' }).message, /"__proto__" cannot be a name/);
  });

  it('lets jobs name the local NATS server and those of NATS_URL unless told otherwise', () => {
    assert.deepEqual(loadConfig({ NATS_URL: 'nats://u:p@events:4222' }, '/srv/app').allowedServers.nats, ['127.0.0.1:4222', 'localhost:4222', 'nats://events:4222']);
    assert.deepEqual(loadConfig({ SNAPWORKER_NATS_ALLOWED_SERVERS: 'a:1, b:2' }, '/srv/app').allowedServers.nats, ['a:1', 'b:2']);
  });

  it('lets jobs name the local PostgreSQL server unless SNAPWORKER_POSTGRES_ALLOWED_SERVERS says otherwise', () => {
    assert.deepEqual(loadConfig({ NATS_URL: 'nats://events:4222' }, '/srv/app').allowedServers.postgres, ['127.0.0.1:5432', 'localhost:5432']);
    assert.deepEqual(loadConfig({ SNAPWORKER_POSTGRES_ALLOWED_SERVERS: 'db.shop.svc, [::1]:5433' }, '/srv/app').allowedServers.postgres, ['db.shop.svc', '[::1]:5433']);
    assert.match(captureConfigError({ SNAPWORKER_POSTGRES_ALLOWED_SERVERS: 'db:5432,http://' }).message, /SNAPWORKER_POSTGRES_ALLOWED_SERVERS: "http:\/\/" is not host:port/);
  });

  it('moves NATS_URL credentials into connection options, since the client ignores them in URLs', () => {
    assert.deepEqual(parseNatsServerUrls('nats://snap:p%40ss@a:4222, nats://snap:p%40ss@b:4223'), {
      servers: ['nats://a:4222', 'nats://b:4223'],
      user: 'snap',
      pass: 'p@ss',
    });
    assert.deepEqual(parseNatsServerUrls('tls://s3cr3t@a:4222'), { servers: ['tls://a:4222'], token: 's3cr3t' });
    assert.deepEqual(parseNatsServerUrls('nats://a'), { servers: ['nats://a'] });
    assert.throws(() => parseNatsServerUrls('nats://u:one@a:1,nats://u:two@b:2'), (err: Error) => /same credentials/.test(err.message) && !/one|two/.test(err.message));
  });

  it('compares the NATS servers jobs name as normalised host:port', () => {
    const policy = new ServerPolicy('nats', 'SNAPWORKER_NATS_ALLOWED_SERVERS', 4222, ['Events.internal', '127.0.0.1:4222']);
    policy.check('events.internal:4222', 'source');
    policy.check('127.0.0.1:4222', 'target');
    // Other spellings of an address (the resolver reads 0xA9FEA9FE and 127.1 as IPv4) are not
    // what the list says, so they are refused rather than resolved.
    for (const host of ['0xA9FEA9FE:4222', '127.1:4222', '169.254.169.254:80']) {
      assert.throws(() => policy.check(host, 'source'), new RegExp(`source server ${host.replace(/\./g, '\\.')} is not one of the allowed servers`));
    }
    assert.throws(() => policy.check('127.0.0.1:4223', 'target'), /target server 127\.0\.0\.1:4223/);
    new ServerPolicy('nats', 'SNAPWORKER_NATS_ALLOWED_SERVERS', 4222, ['*']).check('anywhere:1', 'source');
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
