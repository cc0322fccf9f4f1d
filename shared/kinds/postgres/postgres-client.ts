import { libpqEnvironment, resolvePostgresProfile, type PostgresProfile, type PostgresProfiles } from './postgres-profile.js';
import { pgToolVersion, runPgTool, type PgTool, type PgToolOptions, type ToolVersion } from './pg-tools.js';
import type { PostgresEndpoint } from './postgres-uri.js';

/** Field separator for query results: a control character no name or number we read holds. */
const FIELD_SEPARATOR = '\x1f';

/**
 * One server as a profile reaches it, through the client programs: every call runs pg_dump,
 * pg_restore or psql with the profile's environment (no driver, no long-lived connection).
 * psql rather than an npm driver: the worker needs postgresql-client for pg_dump and pg_restore
 * anyway, and one libpq for all three means the same authentication, TLS and error words.
 */
export class PostgresClient {
  private constructor(
    readonly endpoint: PostgresEndpoint,
    readonly profile: PostgresProfile | undefined,
    private readonly env: NodeJS.ProcessEnv,
    private readonly tools: PgToolOptions,
    /** Prefix of every error, e.g. `postgres source postgres://h:5432/app`. */
    readonly what: string,
  ) {}

  /**
   * Resolves the endpoint's profile and reads its password.
   * @throws InvalidInputError for a profile the worker does not have, or a password it cannot read.
   */
  static async open(endpoint: PostgresEndpoint, profiles: PostgresProfiles, tools: PgToolOptions, role: 'source' | 'target'): Promise<PostgresClient> {
    const profile = resolvePostgresProfile(endpoint, profiles);
    const env = await libpqEnvironment(endpoint, profile);
    return new PostgresClient(endpoint, profile, env, tools, `postgres ${role} ${endpoint.uri}`);
  }

  /** Runs a client program against this server; see `runPgTool` for errors. */
  run(tool: PgTool, args: readonly string[], signal: AbortSignal, onLine?: (line: string) => void): Promise<string> {
    return runPgTool(tool, args, { ...this.tools, env: this.env, signal, what: this.what, onLine });
  }

  /**
   * Runs SQL in `database` with psql (stop at the first error; several statements in one string
   * run as one transaction unless they say otherwise) and returns the rows as text fields.
   */
  async query(database: string, sql: string, signal: AbortSignal): Promise<string[][]> {
    const out = await this.run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-F', FIELD_SEPARATOR, `--dbname=${database}`, '-c', sql], signal);
    return out
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.split(FIELD_SEPARATOR));
  }

  /** The first field of the first row, or `undefined` when there is no row. */
  async scalar(database: string, sql: string, signal: AbortSignal): Promise<string | undefined> {
    return (await this.query(database, sql, signal))[0]?.[0];
  }

  /** The version of one of the client programs this worker runs. */
  toolVersion(tool: PgTool, signal: AbortSignal): Promise<ToolVersion> {
    return pgToolVersion(tool, { ...this.tools, signal, what: this.what });
  }
}
