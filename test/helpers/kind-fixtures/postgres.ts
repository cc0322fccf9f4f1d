import { createDatabase, databasesLike, dropDatabases, pgUri, psql, randomDatabaseName } from '../postgres.js';
import type { KindFixture } from './kind-fixture.js';

/** One database with two schemas, a sequence and a large object, on the machine's PostgreSQL. */
export const postgresFixture: KindFixture = {
  kind: 'postgres',
  async skip() {
    return psql('postgres', 'SELECT 1').then(
      () => false,
      (err: Error) => `PostgreSQL at 127.0.0.1:5432 is not reachable: ${err.message.split('\n')[0]}`,
    );
  },
  env: { SNAPWORKER_POSTGRES_PROFILES: JSON.stringify({ test: { user: 'postgres' } }) },
  async createSource() {
    const name = await createDatabase();
    await psql(
      name,
      `CREATE SCHEMA app; CREATE SEQUENCE app.ids START 7;
       CREATE TABLE app.items (id bigint PRIMARY KEY DEFAULT nextval('app.ids'), name text, body bytea);
       INSERT INTO app.items (name, body) SELECT 'item ' || g, decode(repeat(to_hex(g % 256), 50), 'hex') FROM generate_series(1, 500) g;
       CREATE TABLE public.notes AS SELECT g AS n, md5(g::text) AS text FROM generate_series(1, 100) g;
       SELECT lo_from_bytea(0, 'large object');`,
    );
    return [pgUri(name).href];
  },
  async freshTarget() {
    return [pgUri(randomDatabaseName('_r')).href];
  },
  async readContent(uris) {
    const name = new URL(uris[0]!).pathname.slice(1);
    if (!(await databasesLike(name)).includes(name)) return undefined;
    return {
      items: await psql(name, `SELECT id, name, encode(body, 'hex') FROM app.items ORDER BY id`),
      notes: await psql(name, `SELECT n, text FROM public.notes ORDER BY n`),
      sequence: await psql(name, 'SELECT last_value FROM app.ids'),
      largeObjects: await psql(name, `SELECT encode(lo_get(oid), 'escape') FROM pg_largeobject_metadata`),
    };
  },
  async cleanup(uris) {
    await dropDatabases(...uris.map((uri) => new URL(uri).pathname.slice(1)));
  },
};
