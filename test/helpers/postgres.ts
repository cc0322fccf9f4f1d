/**
 * The real PostgreSQL server of the development and CI machines (127.0.0.1:5432, trust auth,
 * user postgres) for tests: databases with random names, dropped after.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PG_HOST = process.env['SNAPWORKER_TEST_PGHOST'] ?? '127.0.0.1';
export const PG_PORT = Number(process.env['SNAPWORKER_TEST_PGPORT'] ?? 5432);
export const PG_USER = 'postgres';

/** Environment for psql/pg_dump run by tests themselves (never the code under test's). */
export const PG_ENV: NodeJS.ProcessEnv = { ...process.env, PGHOST: PG_HOST, PGPORT: String(PG_PORT), PGUSER: PG_USER };

/** Runs SQL in `database` and returns the rows, fields separated by `|`. */
export async function psql(database: string, sql: string): Promise<string[][]> {
  const { stdout } = await run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-F', '|', `--dbname=${database}`, '-c', sql], {
    env: PG_ENV,
    maxBuffer: 64 << 20,
  });
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('|'));
}

/** The first field of the first row. */
export async function psqlValue(database: string, sql: string): Promise<string | undefined> {
  return (await psql(database, sql))[0]?.[0];
}

/** A fresh random name, `snapworker_t_<hex>` plus `suffix`. */
export function randomDatabaseName(suffix = ''): string {
  return `snapworker_t_${randomBytes(5).toString('hex')}${suffix}`;
}

/** Creates an empty database and returns its name. */
export async function createDatabase(name = randomDatabaseName()): Promise<string> {
  await psql('postgres', `CREATE DATABASE "${name}"`);
  return name;
}

/** Drops databases (and their sessions) if they exist. */
export async function dropDatabases(...names: string[]): Promise<void> {
  for (const name of names) await psql('postgres', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/** Databases whose names start with `prefix` (to find scratch databases left behind). */
export async function databasesLike(prefix: string): Promise<string[]> {
  return (await psql('postgres', `SELECT datname FROM pg_database WHERE starts_with(datname, '${prefix}') ORDER BY 1`)).map((row) => row[0]!);
}

/** `postgres://` URI of a test database with the `test` profile. */
export function pgUri(database: string, profile: string | undefined = 'test'): URL {
  return new URL(`postgres://${PG_HOST}:${PG_PORT}/${database}${profile === undefined ? '' : `?profile=${profile}`}`);
}
