import { InvalidInputError } from '../../errors.js';

/** PostgreSQL's default port, as libpq assumes it. */
export const DEFAULT_POSTGRES_PORT = 5432;

/** A parsed `postgres://host:port/dbname?profile=name` URI. */
export interface PostgresEndpoint {
  /** Host name or address as libpq takes it (an IPv6 address without brackets). */
  host: string;
  port: number;
  database: string;
  /** The worker-configured profile to connect with; absent: libpq's defaults (the worker's OS user, no password). */
  profileName?: string;
  /** The URI rebuilt from its parts: never carries a secret, safe to log and store. */
  uri: string;
}

/**
 * Database names jobs may give: an unquoted-identifier-like name. Narrower than PostgreSQL allows
 * on purpose: a name with `=` or a URI prefix would be read by libpq as a connection string, and
 * these names go into SQL (always double-quoted) and the argv of pg_dump, pg_restore and psql.
 */
const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

/**
 * The scratch databases a restore makes (`snapworker_restore_<hex>` while restoring,
 * `snapworker_old_<hex>` between a swap and the drop): docs/postgres.md calls them safe to drop,
 * so no target may take such a name.
 */
export const SCRATCH_DATABASE_NAME = /^snapworker_(restore|old)_/;

/**
 * Parses one PostgreSQL URI (`postgres:` or `postgresql:`). Credentials are never accepted in the
 * URI: they would end up in job data, logs and records; they come from a worker profile named by
 * `?profile=`. `role` (`source`, `target`) shapes messages, and keeps targets off scratch names.
 *
 * @throws InvalidInputError for another scheme, a user or password in the URI, no host, a bad
 *   port, a missing or unsupported database name, a query parameter other than `profile`, a
 *   fragment, or (targets) a scratch database's name.
 */
export function parsePostgresUri(url: URL, role: 'source' | 'target'): PostgresEndpoint {
  const what = `postgres ${role}`;
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InvalidInputError(`${what}: ${url.protocol}// is not a postgres:// URI`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidInputError(`${what}: a user or password is not allowed in the URI; configure a profile on the worker and name it with ?profile=<name>`);
  }
  const shown = `${url.protocol}//${url.host}${url.pathname}`;
  if (url.hostname === '') throw new InvalidInputError(`${what}: ${shown}: a host is required (postgres://host:5432/dbname)`);
  if (url.hash !== '') throw new InvalidInputError(`${what}: ${shown}: must not carry a fragment`);
  const port = url.port === '' ? DEFAULT_POSTGRES_PORT : Number(url.port);
  let database: string;
  try {
    database = decodeURIComponent(url.pathname.slice(1));
  } catch (cause) {
    throw new InvalidInputError(`${what}: ${shown}: malformed percent-encoding in the database name`, { cause });
  }
  if (database === '') throw new InvalidInputError(`${what}: ${shown}: no database name (postgres://host:5432/dbname)`);
  if (!DATABASE_NAME.test(database)) {
    throw new InvalidInputError(
      `${what}: ${shown}: database name ${JSON.stringify(database)} is not supported (a letter or _, then letters, digits, _, $ or -; at most 63)`,
    );
  }
  if (role === 'target' && SCRATCH_DATABASE_NAME.test(database)) {
    throw new InvalidInputError(`${what}: ${shown}: names beginning snapworker_restore_ or snapworker_old_ are the worker's scratch databases (safe to drop), never a target`);
  }
  for (const key of url.searchParams.keys()) {
    if (key !== 'profile') throw new InvalidInputError(`${what}: ${shown}: unknown query parameter ${JSON.stringify(key)} (only profile)`);
  }
  if (url.searchParams.getAll('profile').length > 1) throw new InvalidInputError(`${what}: ${shown}: profile given more than once`);
  const profileName = url.searchParams.get('profile') ?? undefined;
  if (profileName === '') throw new InvalidInputError(`${what}: ${shown}: profile name is empty`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const query = profileName === undefined ? '' : `?profile=${encodeURIComponent(profileName)}`;
  return { host, port, database, profileName, uri: `postgres://${url.hostname}:${port}/${database}${query}` };
}

/** Parses exactly one URI, as every PostgreSQL source and target needs. */
export function parseSinglePostgresUri(uris: readonly URL[], role: 'source' | 'target'): PostgresEndpoint {
  if (uris.length !== 1) throw new InvalidInputError(`postgres ${role}: takes exactly one postgres:// URI, got ${uris.length}`);
  return parsePostgresUri(uris[0]!, role);
}

/** `name` as a double-quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `text` as a SQL string literal (standard_conforming_strings, on by default since 9.1). */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
