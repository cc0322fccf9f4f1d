import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EntryHeader } from '../../snapshot/entry.js';
import type { SnapshotManifest } from '../../snapshot/manifest.js';
import { IntegrityError, InvalidInputError } from '../../errors.js';
import { createOwnedStagingDir } from '../../fsutil/owned-staging-dir.js';
import type { StagingDir } from '../../fsutil/staging-dir.js';
import { profilesOf, type EndpointContext } from '../source.js';
import type { RestoreOptions, RestoreResult, RestoreSession, RestoreTarget, TargetFactory } from '../restore-target.js';
import type { PostgresTargetParams } from './index.js';
import type { PostgresProfile } from './postgres-profile.js';
import { checkRestoredDatabase } from './check-restored.js';
import { dumpFileName } from './dump-layout.js';
import { GrowthMeter } from './growth-meter.js';
import { PostgresClient } from './postgres-client.js';
import type { PostgresDetails, PostgresKindOptions } from './postgres-source.js';
import { parseSinglePostgresUri, quoteIdent, quoteLiteral, type PostgresEndpoint } from './postgres-uri.js';
import { existsError, scratchDatabaseName, swapDatabase } from './swap-database.js';

/**
 * Builds the `postgres:` restore target with worker-level options. Accepts snapshots of kind
 * `postgres` (the registry refuses others before `begin`). The dump's files are staged in the
 * staging directory; `commit` creates a scratch database (`snapworker_restore_<hex>`, with the
 * snapshot's encoding and locale, from template0), runs `pg_restore -Fd -j <jobs>
 * --exit-on-error` into it, checks it (`checkRestoredDatabase`), and only then swaps it in under
 * the target's name (`swapDatabase`: one transaction; the replaced database dropped after).
 * Every failure, and `abort`, drops the scratch database and the staged files: the target is
 * never half-restored.
 *
 * Roles are cluster-wide and not in a database dump: the roles the dump names as owners or in
 * grants must exist on the target server (pg_restore stops at the first that does not).
 *
 * @throws InvalidInputError (factory) for a bad URI; (begin) for a profile the worker lacks or
 *   may not use with this server, an existing database without `replace`, a pg_restore older
 *   than the pg_dump that made the snapshot; (commit) see `swapDatabase`; IntegrityError for an
 *   unexpected entry or a restored database that fails the check.
 */
export function postgresTargetFactory(options: PostgresKindOptions = {}): TargetFactory<PostgresTargetParams> {
  return (uris, params, context) => new PostgresTarget(parseSinglePostgresUri(uris, 'target'), params, context, options);
}

/** The `postgres:` restore target with default options. */
export const createPostgresTarget: TargetFactory<PostgresTargetParams> = postgresTargetFactory();

class PostgresTarget implements RestoreTarget {
  readonly uri: string;
  readonly accepts = ['postgres'] as const;

  constructor(
    private readonly endpoint: PostgresEndpoint,
    private readonly params: PostgresTargetParams,
    private readonly context: EndpointContext,
    private readonly options: PostgresKindOptions,
  ) {
    this.uri = endpoint.uri;
  }

  async begin(manifest: SnapshotManifest, options: RestoreOptions): Promise<RestoreSession> {
    // Sessions are ended only to replace their database; without replace it would silently mean nothing.
    if (this.params.terminateConnections && !options.replace) {
      throw new InvalidInputError(`postgres target ${this.endpoint.uri}: terminateConnections (--terminate-connections) applies only with replace (--replace)`);
    }
    const details = (manifest.source.details ?? {}) as Partial<PostgresDetails>;
    const client = await PostgresClient.open(this.endpoint, profilesOf<PostgresProfile>(this.context, 'postgres'), this.options, 'target');
    const via = client.profile?.maintenanceDatabase ?? 'postgres';
    if (this.endpoint.database === via) {
      throw new InvalidInputError(`${client.what}: cannot restore over ${via}, the database restores connect through (set maintenanceDatabase in the profile)`);
    }
    const pgRestore = await client.toolVersion('pg_restore', options.signal);
    const dumpMajor = Number.parseInt(details.pgDumpVersion ?? '', 10);
    if (dumpMajor > pgRestore.major) {
      throw new InvalidInputError(
        `${client.what}: snapshot ${manifest.snapshotId} was dumped by pg_dump ${details.pgDumpVersion}, newer than this worker's pg_restore ${pgRestore.text}; install postgresql-client ${dumpMajor} or newer on the worker`,
      );
    }
    const exists = await client.scalar(via, `SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(this.endpoint.database)}`, options.signal);
    if (exists !== undefined && !options.replace) throw existsError(client, this.endpoint.database);
    const staging = await createOwnedStagingDir(this.context.stagingDir, 'postgres-restore-');
    const dumpDir = path.join(staging.path, 'dump');
    await mkdir(dumpDir);
    return new PostgresRestoreSession(client, via, this.endpoint.database, details, dumpDir, staging, this.params, options, this.options.jobs ?? 2);
  }
}

class PostgresRestoreSession implements RestoreSession {
  private entries = 0;
  private bytes = 0;
  /** The scratch database, once created; dropped by `abort`. */
  private restored: string | undefined;

  constructor(
    private readonly client: PostgresClient,
    private readonly via: string,
    private readonly target: string,
    private readonly details: Partial<PostgresDetails>,
    private readonly dumpDir: string,
    private readonly staging: StagingDir,
    private readonly params: PostgresTargetParams,
    private readonly options: RestoreOptions,
    private readonly jobs: number,
  ) {}

  async write(header: EntryHeader, body: Readable | undefined): Promise<void> {
    const name = dumpFileName(header.path);
    if (header.type !== 'file' || !body || name === undefined) {
      body?.destroy();
      throw new IntegrityError(`${this.client.what}: unexpected archive entry ${header.path} (expected dump/<file> files of a pg_dump directory)`);
    }
    const filePath = path.join(this.dumpDir, name);
    await pipeline(body, createWriteStream(filePath, { flags: 'wx', mode: 0o600 }), { signal: this.options.signal });
    const { size } = await stat(filePath);
    if (size !== header.size) throw new IntegrityError(`${this.client.what}: entry ${header.path} has ${size} bytes, header says ${header.size}`);
    this.entries++;
    this.bytes += size;
  }

  async commit(): Promise<RestoreResult> {
    const { signal, progress } = this.options;
    try {
      progress.setPhase('writing');
      const restored = scratchDatabaseName('restore');
      await this.client.query(this.via, createDatabaseSql(restored, this.details), signal);
      this.restored = restored;
      // The archive's bytes were counted as they arrived; the database growing is progress
      // too (a call, no bytes), so a long pg_restore is not taken for a stalled job.
      const meter = new GrowthMeter(
        async () => Number(await this.client.scalar(this.via, `SELECT pg_database_size(${quoteLiteral(restored)})`, signal)),
        () => progress.addBytes(0),
        5000,
      );
      try {
        await this.client.run('pg_restore', ['--format=directory', `--jobs=${this.jobs}`, '--exit-on-error', `--dbname=${restored}`, this.dumpDir], signal);
      } finally {
        await meter.stop();
      }
      progress.setPhase('verifying');
      await checkRestoredDatabase(this.client, this.dumpDir, restored, signal);
      progress.setPhase('committing');
      await swapDatabase(this.client, this.via, restored, this.target, {
        replace: this.options.replace,
        terminateConnections: this.params.terminateConnections ?? false,
        signal,
      });
      this.restored = undefined;
    } catch (err) {
      await this.abort();
      throw err;
    }
    await this.staging.remove();
    return { target: this.client.endpoint.uri, entries: this.entries, bytes: this.bytes };
  }

  /** Drops the scratch database (if one was made) and the staged dump; the target stays as it was. */
  async abort(): Promise<void> {
    const restored = this.restored;
    this.restored = undefined;
    if (restored !== undefined) await dropScratchDatabase(this.client, this.via, restored);
    await this.staging.remove();
  }
}

/** CREATE DATABASE for the scratch database, with the snapshot's encoding and locale when recorded. */
function createDatabaseSql(name: string, details: Partial<PostgresDetails>): string {
  let sql = `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`;
  if (details.encoding) sql += ` ENCODING ${quoteLiteral(details.encoding)}`;
  if (details.lcCollate) sql += ` LC_COLLATE ${quoteLiteral(details.lcCollate)}`;
  if (details.lcCtype) sql += ` LC_CTYPE ${quoteLiteral(details.lcCtype)}`;
  return sql;
}

/**
 * Drops a scratch database, never throwing (cleanup must not mask the error that caused it).
 * `WITH (FORCE)` (PostgreSQL 13+) ends the sessions of a pg_restore that was killed and whose
 * backends have not noticed yet; older servers get the plain form.
 */
async function dropScratchDatabase(client: PostgresClient, via: string, name: string): Promise<void> {
  const signal = new AbortController().signal; // not the job's: an aborted job must still clean up
  const drop = `DROP DATABASE IF EXISTS ${quoteIdent(name)}`;
  await client.query(via, `${drop} WITH (FORCE)`, signal).catch(() => client.query(via, drop, signal)).catch(() => {});
}
