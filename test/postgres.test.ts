import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IntegrityError, InvalidInputError } from '../shared/errors.js';
import { nullProgress } from '../shared/progress.js';
import { nullNotices } from '../shared/kinds/notices.js';
import type { EndpointContext, Source } from '../shared/kinds/source.js';
import type { RestoreResult } from '../shared/kinds/restore-target.js';
import type { PostgresTargetParams } from '../shared/kinds/postgres/index.js';
import { openTarget } from '../shared/kinds/registry.js';
import { postgresProfileSchema, type PostgresProfile } from '../shared/kinds/postgres/postgres-profile.js';
import { createPostgresSource as createSource, postgresSourceFactory, type PostgresDetails } from '../shared/kinds/postgres/postgres-source.js';
import { createPostgresTarget as createTarget, postgresTargetFactory } from '../shared/kinds/postgres/postgres-target.js';
import { manifestFor, testManifest } from './helpers/archive-fixtures.js';
import { createTestEnvironment, spawnWorker, type TestEnvironment, type WorkerProcess } from './helpers/worker-fixture.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { createDatabase, databasesLike, dropDatabases, PG_ENV, pgUri, psql, psqlValue, randomDatabaseName } from './helpers/postgres.js';

const TEST_PROFILE: PostgresProfile = { user: 'postgres' };

let root: string;
let context: EndpointContext;
const databases: string[] = [];

/** A database for this test file, dropped at the end. */
async function database(name?: string): Promise<string> {
  const created = await createDatabase(name);
  databases.push(created);
  return created;
}

/** A name for a database a restore creates, dropped at the end. */
function restoredName(): string {
  const name = randomDatabaseName('_r');
  databases.push(name);
  return name;
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-postgres-'));
  context = { checkPath: () => {}, stagingDir: path.join(root, 'staging'), profiles: { postgres: { test: TEST_PROFILE } } };
  await mkdir(context.stagingDir);
});

after(async () => {
  await dropDatabases(...databases);
  await rm(root, { recursive: true, force: true });
});

/** Feeds every entry of `source` into a session of `target`, then commits (aborts on failure). */
async function snapshotAndRestore(
  source: Source,
  target: string,
  { replace = false, params = {}, mangle }: { replace?: boolean; params?: PostgresTargetParams; mangle?: (path: string, bytes: Buffer) => Buffer } = {},
): Promise<RestoreResult> {
  const signal = new AbortController().signal;
  const options = { signal, progress: nullProgress, notices: nullNotices };
  await source.prepare!(options);
  const session = await createTarget([pgUri(target)], params, context).begin(manifestFor(source), { signal, progress: nullProgress, replace });
  try {
    for await (const entry of source.entries(options)) {
      const { open: openBody, ...header } = entry;
      let body = await openBody!();
      if (mangle) body = Readable.from([mangle(header.path, await readAll(body))]);
      await session.write(header, body);
    }
  } catch (err) {
    await session.abort();
    throw err;
  }
  return session.commit();
}

/** The test context with one more profile, `other`. */
function withProfile(profile: PostgresProfile): EndpointContext {
  return { ...context, profiles: { postgres: { test: TEST_PROFILE, other: profile } } };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function stagingIsEmpty(): Promise<void> {
  assert.deepEqual(await readdir(context.stagingDir), [], 'nothing is left in the staging directory');
}

async function noScratchDatabases(): Promise<void> {
  assert.deepEqual([...(await databasesLike('snapworker_restore_')), ...(await databasesLike('snapworker_old_'))], [], 'no scratch database is left');
}

/** What a restore must carry over, read back as text. */
async function fingerprint(db: string): Promise<unknown> {
  return {
    schemas: await psql(db, `SELECT nspname FROM pg_namespace WHERE nspname IN ('app', 'audit') ORDER BY 1`),
    accounts: await psql(db, `SELECT id, owner, balance, attrs::text FROM app.accounts ORDER BY id`),
    events: await psql(db, `SELECT count(*), sum(length(payload)), md5(string_agg(payload, ',' ORDER BY id)) FROM audit.events`),
    sequence: await psql(db, `SELECT last_value, is_called FROM app.account_ids`),
    nextId: await psql(db, `SELECT column_default FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'accounts' AND column_name = 'id'`),
    largeObject: await psql(db, `SELECT encode(lo_get(oid), 'escape') FROM pg_largeobject_metadata ORDER BY oid`),
    extensions: await psql(db, `SELECT extname FROM pg_extension WHERE extname IN ('hstore', 'pgcrypto') ORDER BY 1`),
    digest: await psql(db, `SELECT encode(digest(owner, 'sha256'), 'hex') FROM app.accounts WHERE id = 1`),
    view: await psql(db, `SELECT * FROM audit.rich ORDER BY 1`),
    owner: await psql(db, `SELECT tableowner FROM pg_tables WHERE schemaname = 'audit' AND tablename = 'events'`),
  };
}

describe('postgres kind: round trip', () => {
  it('snapshots and restores schemas, sequences, large objects, extensions and role grants into a new database', async () => {
    const role = `snapworker_role_${Date.now().toString(36)}`;
    await psql('postgres', `CREATE ROLE ${role} NOLOGIN`);
    try {
      const source = await database();
      await psql(
        source,
        `CREATE EXTENSION hstore; CREATE EXTENSION pgcrypto;
         CREATE SCHEMA app; CREATE SCHEMA audit;
         CREATE SEQUENCE app.account_ids START 100;
         CREATE TABLE app.accounts (id bigint PRIMARY KEY DEFAULT nextval('app.account_ids'), owner text NOT NULL, balance numeric(12,2), attrs hstore);
         INSERT INTO app.accounts (id, owner, balance, attrs) VALUES (1, 'ada', 10.50, 'tier=>gold'), (2, 'bob', -3.25, NULL);
         INSERT INTO app.accounts (owner, balance) SELECT 'user' || g, g FROM generate_series(1, 50) g;
         CREATE TABLE audit.events (id serial PRIMARY KEY, payload text);
         INSERT INTO audit.events (payload) SELECT repeat(md5(g::text), 20) FROM generate_series(1, 2000) g;
         CREATE VIEW audit.rich AS SELECT owner FROM app.accounts WHERE balance > 45;
         ALTER TABLE audit.events OWNER TO ${role};
         GRANT USAGE ON SCHEMA app TO ${role}; GRANT SELECT ON app.accounts TO ${role};
         SELECT lo_from_bytea(0, 'a large object''s bytes');`,
      );
      const before = await fingerprint(source);
      const snapshot = createSource([pgUri(source)], {}, context);
      const target = restoredName();
      const result = await snapshotAndRestore(snapshot, target);

      assert.deepEqual(await fingerprint(target), before);
      assert.equal(await psqlValue(target, `SELECT has_table_privilege('${role}', 'app.accounts', 'SELECT')`), 't', 'grants to the role are restored');
      assert.equal(await psqlValue(target, `SELECT nextval('app.account_ids')`), String(100 + 50), 'the sequence goes on where it was');
      assert.equal(result.target, `postgres://127.0.0.1:5432/${target}?profile=test`);
      assert.ok(result.entries >= 3, 'toc.dat and one file per table');

      const details = snapshot.descriptor.details as unknown as PostgresDetails;
      assert.equal(snapshot.descriptor.kind, 'postgres');
      assert.equal(snapshot.descriptor.name, source);
      assert.equal(details.dumpFormat, 'directory');
      assert.match(details.serverVersion!, /^\d+\.\d+/);
      assert.match(details.pgDumpVersion!, /^\d+\.\d+/);
      assert.ok(details.databaseSizeBytes! > 1_000_000, 'database size in bytes');
      assert.equal(details.encoding, 'UTF8');
      assert.equal(details.dumpFiles, result.entries);
      assert.equal(details.dumpBytes, result.bytes);
      await stagingIsEmpty();
      await noScratchDatabases();
    } finally {
      await dropDatabases(...databases.splice(0));
      await psql('postgres', `DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('takes the dump in one snapshot while a writer moves money between two tables (parallel dump workers share it)', async () => {
    const source = await database();
    // Two tables, so pg_dump's two workers each copy one: totals only add up if they share a snapshot.
    await psql(
      source,
      `CREATE TABLE a (id int PRIMARY KEY, balance bigint NOT NULL, pad text); CREATE TABLE b (LIKE a INCLUDING ALL);
       CREATE TABLE transfers (n bigint NOT NULL); INSERT INTO transfers VALUES (0);
       INSERT INTO a SELECT g, 1000, repeat('x', 500) FROM generate_series(1, 20000) g;
       INSERT INTO b SELECT g, 1000, repeat('y', 500) FROM generate_series(1, 20000) g;`,
    );
    const writer = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', `--dbname=${source}`], { env: PG_ENV, stdio: ['pipe', 'ignore', 'inherit'] });
    let stop = false;
    const writing = (async () => {
      for (let i = 0; !stop; i++) {
        const id = 1 + (i % 20000);
        const ok = writer.stdin.write(
          `BEGIN; UPDATE a SET balance = balance - 7 WHERE id = ${id}; UPDATE b SET balance = balance + 7 WHERE id = ${20001 - id}; UPDATE transfers SET n = n + 1; COMMIT;\n`,
        );
        if (!ok) await once(writer.stdin, 'drain');
      }
      writer.stdin.end();
      await once(writer, 'exit');
    })();
    try {
      // Wait for the writer to be committing before the dump starts.
      while (Number(await psqlValue(source, 'SELECT n FROM transfers')) < 200) await new Promise((r) => setTimeout(r, 50));
      const target = restoredName();
      await snapshotAndRestore(createSource([pgUri(source)], {}, context), target);
      const movedDuring = Number(await psqlValue(source, 'SELECT n FROM transfers'));
      stop = true;
      await writing;
      const [[total, restoredTransfers]] = (await psql(target, 'SELECT (SELECT sum(balance) FROM a) + (SELECT sum(balance) FROM b), (SELECT n FROM transfers)')) as [[string, string]];
      assert.equal(total, String(40000 * 1000), 'the money in both tables adds up: one snapshot');
      assert.ok(Number(restoredTransfers) >= 200, 'the dump saw the writer at work');
      assert.ok(movedDuring > Number(restoredTransfers), 'the writer went on committing during the dump');
      const expectedA = 20000 * 1000 - 7 * Number(restoredTransfers);
      assert.equal(await psqlValue(target, 'SELECT sum(balance) FROM a'), String(expectedA), 'table a matches the transfer count of the same snapshot');
    } finally {
      stop = true;
      await writing;
    }
  });
});

describe('postgres kind: replace', () => {
  async function twoDatabases(): Promise<{ source: string; target: string }> {
    const source = await database();
    await psql(source, `CREATE TABLE t (v text); INSERT INTO t VALUES ('new'); CREATE TABLE u (n int); INSERT INTO u SELECT generate_series(1, 1000);`);
    const target = await database();
    await psql(target, `CREATE TABLE t (v text); INSERT INTO t VALUES ('old');`);
    return { source, target };
  }

  it('refuses an existing database without replace, before staging anything', async () => {
    const { source, target } = await twoDatabases();
    const snapshot = createSource([pgUri(source)], {}, context);
    await assert.rejects(snapshotAndRestore(snapshot, target), (err: Error) => {
      assert.ok(err instanceof InvalidInputError);
      assert.match(err.message, new RegExp(`database ${target} already exists; restore with replace`));
      return true;
    });
    await snapshot.release!();
    assert.equal(await psqlValue(target, 'SELECT v FROM t'), 'old');
    await stagingIsEmpty();
  });

  it('swaps the restored database in and drops the old one', async () => {
    const { source, target } = await twoDatabases();
    await snapshotAndRestore(createSource([pgUri(source)], {}, context), target, { replace: true });
    assert.equal(await psqlValue(target, 'SELECT v FROM t'), 'new');
    assert.equal(await psqlValue(target, 'SELECT count(*) FROM u'), '1000');
    await noScratchDatabases();
    await stagingIsEmpty();
  });

  it('leaves the old database whole when the restore fails midway (a damaged table file), and drops the scratch database', async () => {
    const { source, target } = await twoDatabases();
    const snapshot = createSource([pgUri(source)], {}, context);
    let mangled = 0;
    const mangle = (entryPath: string, bytes: Buffer) => {
      // The table data of u: one number per line. A word among them (same length: the entry's
      // size and sum stay as recorded) fails COPY halfway.
      if (!entryPath.endsWith('toc.dat') && bytes.includes('\n500\n')) {
        mangled++;
        return Buffer.from(bytes.toString().replace('\n500\n', '\nabc\n'));
      }
      return bytes;
    };
    await assert.rejects(snapshotAndRestore(snapshot, target, { replace: true, mangle }), (err: Error) => {
      assert.match(err.message, /pg_restore: .*invalid input syntax for type integer: "abc"/);
      assert.doesNotMatch(err.message, /\n/, 'one line');
      return true;
    });
    assert.equal(mangled, 1);
    assert.equal(await psqlValue(target, 'SELECT v FROM t'), 'old', 'the old database is untouched');
    await noScratchDatabases();
    await stagingIsEmpty();
  });

  it('refuses to replace a database with open sessions by default, and terminates them with terminateConnections', async () => {
    const { source, target } = await twoDatabases();
    const session = spawn('psql', ['-X', '-q', `--dbname=${target}`], { env: PG_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    session.stdin.write('SELECT 1;\n');
    await once(session.stdout, 'data');
    try {
      await assert.rejects(snapshotAndRestore(createSource([pgUri(source)], {}, context), target, { replace: true }), (err: Error) => {
        assert.ok(err instanceof InvalidInputError);
        assert.match(err.message, /has open sessions, so it was not replaced \(left as it was\); close them, or restore with terminateConnections/);
        return true;
      });
      assert.equal(await psqlValue(target, 'SELECT v FROM t'), 'old');
      assert.equal(await psqlValue('postgres', `SELECT datallowconn FROM pg_database WHERE datname = '${target}'`), 't');
      await noScratchDatabases();

      // Ending sessions only goes with replacing their database: alone it is refused, not ignored.
      const alone = createTarget([pgUri(`${target}_new`)], { terminateConnections: true }, context);
      await assert.rejects(alone.begin(testManifest(), { signal: new AbortController().signal, progress: nullProgress, replace: false }), /terminateConnections \(--terminate-connections\) applies only with replace \(--replace\)/);

      const exited = once(session, 'exit');
      await snapshotAndRestore(createSource([pgUri(source)], {}, context), target, { replace: true, params: { terminateConnections: true } });
      session.stdin.write('SELECT 1;\n');
      await exited;
      assert.equal(await psqlValue(target, 'SELECT v FROM t'), 'new');
      assert.equal(await psqlValue('postgres', `SELECT datallowconn FROM pg_database WHERE datname = '${target}'`), 't', 'the new database takes connections');
      await noScratchDatabases();
    } finally {
      session.kill();
    }
  });
});

describe('postgres kind: bad input is one clear line, never retried', () => {
  const signal = new AbortController().signal;
  const open = { signal, progress: nullProgress, notices: nullNotices };

  async function refusal(action: () => Promise<unknown> | unknown, pattern: RegExp): Promise<void> {
    await assert.rejects(async () => action(), (err: Error) => {
      assert.ok(err instanceof InvalidInputError, `${err.name}: ${err.message}`);
      assert.match(err.message, pattern);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  }

  it('refuses malformed URIs in the factory', async () => {
    const cases: Array<[string, RegExp]> = [
      ['postgres://user:secret@127.0.0.1:5432/app', /a user or password is not allowed in the URI; configure a profile/],
      ['postgres://127.0.0.1:5432/', /no database name/],
      ['postgres://127.0.0.1:5432/app?sslmode=disable', /unknown query parameter "sslmode"/],
      ['postgres://127.0.0.1:5432/host=evil', /database name "host=evil" is not supported/],
      ['postgres://127.0.0.1:5432/app?profile=', /profile name is empty/],
      ['postgres:///app', /a host is required/],
      ['postgres://127.0.0.1:5432/app?profile=a&profile=b', /profile given more than once/],
    ];
    for (const [uri, pattern] of cases) await refusal(() => createSource([new URL(uri)], {}, context), pattern);
    for (const name of ['snapworker_restore_abc', 'snapworker_old_0123456789abcdef']) {
      await refusal(() => createTarget([new URL(`postgres://127.0.0.1:5432/${name}`)], {}, context), /are the worker's scratch databases \(safe to drop\), never a target/);
    }
    await refusal(() => createTarget([pgUri('a'), pgUri('b')], {}, context), /takes exactly one postgres:\/\/ URI, got 2/);
  });

  it('names an unknown database, a profile the worker lacks, and an unset password variable', async () => {
    await refusal(() => createSource([pgUri('snapworker_no_such_db')], {}, context).prepare!(open), /postgres source postgres:\/\/127\.0\.0\.1:5432\/snapworker_no_such_db\?profile=test: psql: .*database "snapworker_no_such_db" does not exist/);
    await refusal(() => createSource([pgUri('postgres', 'nope')], {}, context).prepare!(open), /profile "nope" is not configured on this worker/);
    const unset = withProfile({ user: 'postgres', passwordEnv: 'SNAPWORKER_TEST_UNSET_PASSWORD', hosts: ['127.0.0.1'] });
    await refusal(() => createSource([pgUri('postgres', 'other')], {}, unset).prepare!(open), /passwordEnv SNAPWORKER_TEST_UNSET_PASSWORD is not set/);
    await stagingIsEmpty();
  });

  it('sends a profile\'s secret only to the hosts it lists, and a profile with a secret must list them', async () => {
    const elsewhere = withProfile({ user: 'postgres', passwordEnv: 'PATH', hosts: ['10.1.2.3:5432', 'db.internal'] });
    await refusal(() => createSource([pgUri('postgres', 'other')], {}, elsewhere).prepare!(open), /profile "other" may not be used with 127\.0\.0\.1:5432 \(its hosts: 10\.1\.2\.3:5432, db\.internal\)/);
    const result = postgresProfileSchema.safeParse({ user: 'backup', passwordFile: '/run/secrets/pg' });
    assert.equal(result.success, false);
    assert.match(result.error!.issues[0]!.message, /a profile with a password or client key must list the hosts it may be sent to/);
    assert.equal(postgresProfileSchema.safeParse({ user: 'backup', passwordFile: '/run/secrets/pg', hosts: ['db.internal:5432'] }).success, true);
  });

  it('says so when pg_dump is older than the server, or pg_restore older than the dump', async () => {
    const binDir = path.join(root, 'old-client');
    await mkdir(binDir, { recursive: true });
    // Stand-ins for an old postgresql-client: they only answer --version (nothing else is reached).
    for (const tool of ['pg_dump', 'pg_restore']) {
      await writeFile(path.join(binDir, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 9.6.24"\n`);
      await chmod(path.join(binDir, tool), 0o755);
    }
    await writeFile(path.join(binDir, 'psql'), '#!/bin/sh\nexec psql "$@"\n');
    await chmod(path.join(binDir, 'psql'), 0o755);
    const old = { binDir };
    await refusal(
      () => postgresSourceFactory(old)([pgUri('postgres')], {}, context).prepare!(open),
      /pg_dump 9\.6 is older than the server \(PostgreSQL \d+\.\d+\) and cannot dump it; install postgresql-client \d+ or newer on the worker/,
    );
    const source = createSource([pgUri('postgres')], {}, context);
    const manifest = manifestFor(source);
    manifest.source.details = { ...manifest.source.details, pgDumpVersion: '15.20' };
    await refusal(
      () => postgresTargetFactory(old)([pgUri(randomDatabaseName())], {}, context).begin(manifest, { signal, progress: nullProgress, replace: false }),
      /was dumped by pg_dump 15\.20, newer than this worker's pg_restore 9\.6; install postgresql-client 15 or newer/,
    );
  });

  it('refuses a snapshot of another kind and an unexpected entry', async () => {
    const manifest = manifestFor(createSource([pgUri('postgres')], {}, context));
    const registered = await openTarget([pgUri(randomDatabaseName()).href], {}, context);
    await refusal(
      () => registered.begin({ ...manifest, source: { kind: 'sqlite', uri: 'sqlite:///x.db', name: 'x' } }, { signal, progress: nullProgress, replace: false }),
      /holds a sqlite source; target postgres:\/\/.* takes postgres/,
    );
    const session = await createTarget([pgUri(randomDatabaseName())], {}, context).begin(manifest, { signal, progress: nullProgress, replace: false });
    await assert.rejects(session.write({ path: 'dump/../../etc/passwd', type: 'file', mode: 0o644, mtime: new Date(), size: 1 }, Readable.from([Buffer.from('x')])), IntegrityError);
    await session.abort();
    await stagingIsEmpty();
  });
});

describe('postgres kind: progress and abort', () => {
  it('reports the dump\'s bytes while pg_dump writes them, once (entries are marked as counted)', async () => {
    const source = await database();
    await psql(source, `CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g`);
    let bytes = 0;
    const phases: string[] = [];
    const progress = { ...nullProgress, addBytes: (n: number) => void (bytes += n), setPhase: (phase: string) => void phases.push(phase) };
    const snapshot = createSource([pgUri(source)], {}, context);
    const options = { signal: new AbortController().signal, progress, notices: nullNotices };
    await snapshot.prepare!(options);
    const details = snapshot.descriptor.details as unknown as PostgresDetails;
    assert.equal(bytes, details.dumpBytes);
    assert.deepEqual(phases, ['reading']);
    for await (const entry of snapshot.entries(options)) {
      assert.equal(entry.progressCounted, true);
      (await entry.open!()).destroy();
    }
    await stagingIsEmpty();
  });


  it('an aborted dump leaves no staged files', async () => {
    const source = await database();
    await psql(source, `CREATE TABLE big AS SELECT g, repeat('z', 1000) AS pad FROM generate_series(1, 200000) g`);
    const controller = new AbortController();
    const snapshot = createSource([pgUri(source)], {}, context);
    const preparing = snapshot.prepare!({ signal: controller.signal, progress: nullProgress, notices: nullNotices });
    // Abort once pg_dump has started writing into the staging directory.
    for (let i = 0; i < 400 && (await readdir(context.stagingDir)).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    controller.abort();
    await assert.rejects(preparing);
    await stagingIsEmpty();
  });
});

/** Credentials never reach what a snapshot records. */
describe('postgres kind: secrets', () => {
  it('keeps the password out of the descriptor, the URI and error messages', async () => {
    const passwordFile = path.join(root, 'password');
    await writeFile(passwordFile, 'hunter2-not-stored\n', { mode: 0o600 });
    const source = createSource([pgUri('snapworker_no_such_db', 'other')], {}, withProfile({ user: 'postgres', passwordFile, hosts: ['127.0.0.1:5432'] }));
    const err = await source.prepare!({ signal: new AbortController().signal, progress: nullProgress, notices: nullNotices }).catch((e: Error) => e);
    assert.ok(err instanceof InvalidInputError);
    assert.doesNotMatch(`${err.message} ${JSON.stringify(source.descriptor)}`, /hunter2/);
    assert.equal(await readFile(passwordFile, 'utf8'), 'hunter2-not-stored\n');
  });
});

describe('postgres kind: through the queue, with a real worker process', () => {
  let environment: TestEnvironment;
  let worker: WorkerProcess;

  before(async () => {
    environment = await createTestEnvironment({ SNAPWORKER_POSTGRES_PROFILES: JSON.stringify({ test: TEST_PROFILE }) });
    worker = spawnWorker(environment, { LOG_LEVEL: 'warn' });
  });

  after(async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
    await environment.cleanup();
  });

  it('snapshots a database and restores it over another one (replace) as jobs', async () => {
    const source = await database();
    await psql(source, `CREATE SCHEMA shop; CREATE TABLE shop.orders (id serial PRIMARY KEY, total numeric); INSERT INTO shop.orders (total) SELECT g * 1.5 FROM generate_series(1, 5000) g`);
    const target = await database();
    await psql(target, `CREATE TABLE leftover (x int)`);

    const snapshot = await environment.queue.add('snapshot', { v: 1, source: pgUri(source).href, labels: { app: 'shop' } });
    const record = (await snapshot.waitUntilFinished(environment.events, 180_000)) as SnapshotRecord;
    assert.equal(record.source.kind, 'postgres');
    assert.equal(record.source.uri, pgUri(source).href);
    assert.equal((record.source.details as unknown as PostgresDetails).dumpFormat, 'directory');

    const restore = await environment.queue.add('restore', { v: 1, snapshot: record.id, target: pgUri(target).href, replace: true, terminateConnections: true });
    await restore.waitUntilFinished(environment.events, 180_000);
    assert.equal(await psqlValue(target, 'SELECT count(*) || \' \' || sum(total) FROM shop.orders'), await psqlValue(source, 'SELECT count(*) || \' \' || sum(total) FROM shop.orders'));
    assert.equal(await psqlValue(target, `SELECT to_regclass('leftover') IS NULL`), 't', 'the old database is gone whole');
    await noScratchDatabases();
  });

  it('fails a job naming an unknown profile or database, or a server the worker does not allow, at once, with one line', async () => {
    for (const [uri, pattern] of [
      [pgUri('postgres', 'nope').href, /profile "nope" is not configured on this worker/],
      [pgUri('snapworker_no_such_db').href, /database "snapworker_no_such_db" does not exist/],
      // SNAPWORKER_POSTGRES_ALLOWED_SERVERS is unset: only the local server on 5432 may be named.
      ['postgres://169.254.169.254/app', /postgres: source server 169\.254\.169\.254:5432 is not one of the allowed servers \(127\.0\.0\.1:5432, localhost:5432\); see SNAPWORKER_POSTGRES_ALLOWED_SERVERS/],
      ['postgres://127.0.0.1:6543/app', /source server 127\.0\.0\.1:6543 is not one of the allowed servers/],
    ] as const) {
      const job = await environment.queue.add('snapshot', { v: 1, source: uri }, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
      await assert.rejects(job.waitUntilFinished(environment.events, 60_000), pattern);
      const failed = (await environment.queue.getJob(job.id!))!;
      assert.equal(failed.attemptsMade, 1, 'not retried');
      assert.doesNotMatch(failed.failedReason, /\n/);
    }
  });
});
