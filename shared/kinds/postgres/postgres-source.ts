import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { SourceEntry } from '../../snapshot/entry.js';
import type { SourceDescriptor } from '../../snapshot/manifest.js';
import { InvalidInputError } from '../../errors.js';
import { createOwnedStagingDir } from '../../fsutil/owned-staging-dir.js';
import type { StagingDir } from '../../fsutil/staging-dir.js';
import { profilesOf, type EndpointContext, type Source, type SourceFactory, type SourceOpenOptions, type SourceParams } from '../source.js';
import { lineageNameFrom } from '../lineage-name.js';
import { DUMP_ENTRY_PREFIX, dumpDirBytes, listDumpFiles, type DumpFile } from './dump-layout.js';
import { GrowthMeter } from './growth-meter.js';
import { PostgresClient } from './postgres-client.js';
import type { PostgresProfile } from './postgres-profile.js';
import { parseSinglePostgresUri, quoteLiteral, type PostgresEndpoint } from './postgres-uri.js';
import { serverMajor, type PgToolOptions } from './pg-tools.js';

/**
 * Worker-level options of the PostgreSQL kind (never from job data). Connection profiles come
 * from the worker's config through the context (`SNAPWORKER_POSTGRES_PROFILES`).
 */
export interface PostgresKindOptions extends PgToolOptions {
  /** Parallel jobs for pg_dump and pg_restore (`-j`), each one more connection. Default 2. */
  jobs?: number;
}

/** What `descriptor.details` holds for a PostgreSQL snapshot (and so the manifest and the record). */
export interface PostgresDetails {
  database: string;
  /** The dump's format: always `directory` (pg_dump -Fd), uncompressed. */
  dumpFormat: 'directory';
  /** pg_dump's parallel jobs. */
  jobs: number;
  /** Filled in by `prepare`, before the manifest is written: */
  serverVersion?: string;
  pgDumpVersion?: string;
  /** `pg_database_size` when the dump started, in bytes (tables, indexes, TOAST: more than the dump holds). */
  databaseSizeBytes?: number;
  /** What a restore creates the database with. */
  encoding?: string;
  lcCollate?: string;
  lcCtype?: string;
  /** The dump's files and their total bytes. */
  dumpFiles?: number;
  dumpBytes?: number;
}

/**
 * Builds the `postgres:` source factory with worker-level options. One source dumps one database
 * (`postgres://host:port/dbname?profile=name`) with `pg_dump -Fd -j <jobs> -Z0` into the staging
 * directory; `prepare` fixes the descriptor's facts (server and pg_dump versions, database size,
 * encoding and locale, dump size) before the manifest is written, and `entries` yields the dump's
 * files as `dump/<file>`. The staged dump is removed when the entries end, or by `release`.
 *
 * Consistency: pg_dump reads the whole database in one repeatable-read snapshot; its parallel
 * workers share that snapshot (`pg_export_snapshot`), so `-j` does not change what is seen.
 *
 * @throws InvalidInputError (factory) for a bad URI; (prepare) for a profile the worker lacks, an
 *   unknown database, failed authentication, or a pg_dump older than the server; SnapworkerError
 *   for a server that cannot be reached (retried).
 */
export function postgresSourceFactory(options: PostgresKindOptions = {}): SourceFactory {
  return (uris, params, context) => new PostgresSource(parseSinglePostgresUri(uris, 'source'), params, context, options);
}

/** The `postgres:` source with default options. */
export const createPostgresSource: SourceFactory = postgresSourceFactory();

class PostgresSource implements Source {
  readonly descriptor: SourceDescriptor;
  private readonly details: PostgresDetails;
  /** The dump `prepare` staged, until `entries` ends or `release`. */
  private staged: { staging: StagingDir; dumpDir: string; files: DumpFile[]; takenAt: Date } | undefined;

  constructor(
    private readonly endpoint: PostgresEndpoint,
    params: SourceParams,
    private readonly context: EndpointContext,
    private readonly options: PostgresKindOptions,
  ) {
    this.details = { database: endpoint.database, dumpFormat: 'directory', jobs: options.jobs ?? 2 };
    this.descriptor = {
      kind: 'postgres',
      uri: endpoint.uri,
      name: params.name ?? lineageNameFrom(endpoint.database, 'database'),
      details: this.details as unknown as Record<string, unknown>,
    };
  }

  /**
   * Reads the server's facts, checks that this pg_dump can dump it, and dumps the database into
   * the staging directory. Progress: phase `preparing` while asking, `reading` while dumping,
   * with the dump's bytes as pg_dump writes them (so its entries are `progressCounted`).
   */
  async prepare({ signal, progress }: SourceOpenOptions): Promise<void> {
    if (this.staged) return;
    let staging: StagingDir | undefined;
    try {
      const client = await PostgresClient.open(this.endpoint, profilesOf<PostgresProfile>(this.context, 'postgres'), this.options, 'source');
      const database = this.endpoint.database;
      const [facts] = await client.query(
        database,
        `SELECT current_setting('server_version'), current_setting('server_version_num'), pg_database_size(oid), pg_encoding_to_char(encoding), datcollate, datctype
           FROM pg_database WHERE datname = ${quoteLiteral(database)}`,
        signal,
      );
      const [serverVersion, serverVersionNum, size, encoding, lcCollate, lcCtype] = facts!;
      const server = { text: serverVersion!.split(' ')[0]!, major: serverMajor(Number(serverVersionNum)) };
      const pgDump = await client.toolVersion('pg_dump', signal);
      if (pgDump.major < server.major) {
        throw new InvalidInputError(
          `${client.what}: pg_dump ${pgDump.text} is older than the server (PostgreSQL ${server.text}) and cannot dump it; install postgresql-client ${server.major} or newer on the worker`,
        );
      }
      Object.assign(this.details, { serverVersion: server.text, pgDumpVersion: pgDump.text, databaseSizeBytes: Number(size), encoding, lcCollate, lcCtype });

      staging = await createOwnedStagingDir(this.context.stagingDir, 'postgres-snapshot-');
      const dumpDir = path.join(staging.path, 'dump');
      progress.setPhase('reading');
      const takenAt = new Date();
      const meter = new GrowthMeter(() => dumpDirBytes(dumpDir), (bytes) => progress.addBytes(bytes));
      try {
        await client.run(
          'pg_dump',
          ['--format=directory', `--jobs=${this.details.jobs}`, '--compress=0', '--no-sync', `--file=${dumpDir}`, `--dbname=${database}`],
          signal,
        );
      } finally {
        await meter.stop({ final: true });
      }
      const files = await listDumpFiles(dumpDir);
      this.details.dumpFiles = files.length;
      this.details.dumpBytes = files.reduce((sum, file) => sum + file.size, 0);
      this.staged = { staging, dumpDir, files, takenAt };
    } catch (err) {
      await staging?.remove();
      throw err;
    }
  }

  /** Yields the staged dump's files (dumping first when `prepare` was not called). */
  async *entries(options: SourceOpenOptions): AsyncGenerator<SourceEntry> {
    try {
      await this.prepare(options);
      const { dumpDir, files, takenAt } = this.staged!;
      for (const file of files) {
        const filePath = path.join(dumpDir, file.name);
        yield {
          path: `${DUMP_ENTRY_PREFIX}${file.name}`,
          type: 'file',
          mode: file.mode,
          mtime: takenAt,
          size: file.size,
          progressCounted: true, // counted while pg_dump wrote it
          open: () => createReadStream(filePath),
        };
      }
    } finally {
      await this.release();
    }
  }

  async release(): Promise<void> {
    const staged = this.staged;
    this.staged = undefined;
    await staged?.staging.remove();
  }
}
