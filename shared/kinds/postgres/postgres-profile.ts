import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidInputError } from '../../errors.js';
import { DEFAULT_POSTGRES_PORT, type PostgresEndpoint } from './postgres-uri.js';

/**
 * How a worker connects to a PostgreSQL server; jobs name one with `?profile=<name>`. Configured
 * on the worker only (`SNAPWORKER_POSTGRES_PROFILES`, a JSON object of name → profile), so no
 * credential ever travels in job data. The password is referenced, never inlined: `passwordFile`
 * (a mounted secret; one trailing newline is dropped) or `passwordEnv` (the name of a variable
 * in the worker's environment). It reaches pg_dump, pg_restore and psql as `PGPASSWORD` in their
 * environment, never in their argv, a log line or an error.
 */
export const postgresProfileSchema = z
  .strictObject({
    /** Role to connect as. Default: libpq's (the worker's OS user name). */
    user: z.string().min(1).optional(),
    /** File holding the password. */
    passwordFile: z.string().min(1).optional(),
    /** Environment variable holding the password. */
    passwordEnv: z.string().min(1).optional(),
    /** libpq `sslmode`. Default: libpq's (`prefer`). */
    sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
    /** CA certificate file for `verify-ca`/`verify-full`. */
    sslrootcert: z.string().min(1).optional(),
    /** Client certificate and key files, for certificate authentication. */
    sslcert: z.string().min(1).optional(),
    sslkey: z.string().min(1).optional(),
    /** Database restores connect to for CREATE/ALTER/DROP DATABASE. Default `postgres`. */
    maintenanceDatabase: z.string().min(1).optional(),
    /**
     * The servers (`host:port`, or `host` for port 5432) jobs may use this profile with, as the
     * URI spells them. Required for a profile that holds a secret (a password or a client key):
     * otherwise a job could name a server of its own and receive the credentials.
     */
    hosts: z.array(z.string().min(1)).min(1).optional(),
  })
  .refine((profile) => !(profile.passwordFile && profile.passwordEnv), { message: 'give passwordFile or passwordEnv, not both' })
  .refine((profile) => profile.hosts !== undefined || !(profile.passwordFile || profile.passwordEnv || profile.sslkey), {
    message: 'a profile with a password or client key must list the hosts it may be sent to (hosts: ["db.internal:5432"])',
  });

export type PostgresProfile = z.infer<typeof postgresProfileSchema>;

/** Named profiles, as configured on the worker. */
export type PostgresProfiles = Readonly<Record<string, PostgresProfile>>;

/**
 * The profile an endpoint names, or `undefined` when it names none.
 * @throws InvalidInputError when the named profile is not configured on this worker.
 */
export function resolvePostgresProfile(endpoint: PostgresEndpoint, profiles: PostgresProfiles): PostgresProfile | undefined {
  if (endpoint.profileName === undefined) return undefined;
  const profile = Object.hasOwn(profiles, endpoint.profileName) ? profiles[endpoint.profileName] : undefined;
  if (profile === undefined) {
    throw new InvalidInputError(`postgres: ${endpoint.uri}: profile ${JSON.stringify(endpoint.profileName)} is not configured on this worker (SNAPWORKER_POSTGRES_PROFILES)`);
  }
  const server = new URL(endpoint.uri).host;
  if (profile.hosts && !profile.hosts.some((allowed) => hostKey(allowed) === server)) {
    throw new InvalidInputError(`postgres: ${endpoint.uri}: profile ${JSON.stringify(endpoint.profileName)} may not be used with ${server} (its hosts: ${profile.hosts.join(', ')})`);
  }
  return profile;
}

/** `host[:port]` as `URL.host` spells it with the port always there (`db:5432`, `[::1]:5432`); unparsable: itself. */
function hostKey(hostAndPort: string): string {
  try {
    const url = new URL(`postgres://${hostAndPort}`);
    return `${url.hostname}:${url.port || DEFAULT_POSTGRES_PORT}`;
  } catch {
    return hostAndPort;
  }
}

/** Seconds libpq waits for a connection before giving up (`PGCONNECT_TIMEOUT`). */
const CONNECT_TIMEOUT_SECONDS = 15;

/**
 * The environment pg_dump, pg_restore and psql run with: the worker's environment without any
 * `PG*` variable (the profile is the only source of connection settings, so a stray `PGDATABASE`
 * or `PGPASSWORD` on the worker cannot change what a job reaches), plus host, port, user, TLS
 * settings and the password from the profile. libpq's own files are switched off too: it would
 * otherwise send a password from the worker's `~/.pgpass` (or settings from `pg_service.conf`) to
 * whatever server a job names, and only a profile may hand out a password.
 *
 * @throws InvalidInputError naming the profile when its password file cannot be read or its
 *   password variable is unset (the message never holds the password).
 */
export async function libpqEnvironment(endpoint: PostgresEndpoint, profile: PostgresProfile | undefined): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('PG')) env[name] = value;
  env['PGHOST'] = endpoint.host;
  env['PGPORT'] = String(endpoint.port);
  env['PGAPPNAME'] = 'snapworker';
  env['PGCONNECT_TIMEOUT'] = String(CONNECT_TIMEOUT_SECONDS);
  env['PGPASSFILE'] = '/dev/null';
  env['PGSERVICEFILE'] = '/dev/null';
  env['PGSYSCONFDIR'] = '/nonexistent';
  if (!profile) return env;
  const setIf = (name: string, value: string | undefined) => {
    if (value !== undefined) env[name] = value;
  };
  setIf('PGUSER', profile.user);
  setIf('PGSSLMODE', profile.sslmode);
  setIf('PGSSLROOTCERT', profile.sslrootcert);
  setIf('PGSSLCERT', profile.sslcert);
  setIf('PGSSLKEY', profile.sslkey);
  setIf('PGPASSWORD', await profilePassword(endpoint.profileName!, profile));
  return env;
}

async function profilePassword(name: string, profile: PostgresProfile): Promise<string | undefined> {
  if (profile.passwordEnv !== undefined) {
    const value = process.env[profile.passwordEnv];
    if (value === undefined) throw new InvalidInputError(`postgres: profile ${JSON.stringify(name)}: passwordEnv ${profile.passwordEnv} is not set in the worker's environment`);
    return value;
  }
  if (profile.passwordFile !== undefined) {
    try {
      return (await readFile(profile.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new InvalidInputError(`postgres: profile ${JSON.stringify(name)}: passwordFile ${profile.passwordFile}: ${code}`, { cause });
    }
  }
  return undefined;
}
