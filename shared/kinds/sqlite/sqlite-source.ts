import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { SourceEntry } from '../../snapshot/entry.js';
import type { SourceDescriptor } from '../../snapshot/manifest.js';
import { throwIfAborted } from '../../errors.js';
import { createStagingDir, type StagingDir } from '../../fsutil/staging-dir.js';
import { backupDatabase, type DatabaseFacts, type SqliteBackupOptions } from './backup-database.js';
import { checkDatabaseIntegrity, type IntegrityCheckMode } from './check-integrity.js';
import { databaseEntryPath, parseSqliteUris, uniqueDatabaseNames, type SqliteEndpoint } from './sqlite-uri.js';
import type { EndpointContext, Source, SourceFactory, SourceOpenOptions, SourceParams } from '../source.js';
import { lineageNameFrom } from '../lineage-name.js';

/** Options of the SQLite source, fixed per worker (not per job). */
export interface SqliteSourceOptions extends SqliteBackupOptions {
  /** The check run on every copy before it goes into the archive. Default `integrity`. */
  check?: IntegrityCheckMode;
}

/** One database as recorded in `descriptor.details.databases` (and so in the manifest and record). */
export interface SqliteDatabaseDetails extends Partial<DatabaseFacts> {
  /** Archive name: the entry is `databases/<name>`. */
  name: string;
  /** Absolute path of the live database. */
  path: string;
  /** Set once the copy passed the check; a copy that fails it ends the snapshot instead. */
  integrity?: 'ok';
}

/**
 * Builds the `sqlite:` source factory with worker-level options. One source snapshots one or more
 * databases (`sqlite:///abs/path/db.sqlite`, in the order given) into one archive entry each,
 * `databases/<name>`, where `<name>` is the file's basename, made unique with `-2`, `-3`, ...
 *
 * Descriptor: kind `sqlite`; `uri` the URIs joined by a space; `name` (the lineage) is
 * `params.name`, else the first database's basename without its extension; `details.databases`
 * one {@link SqliteDatabaseDetails} per database, whose facts (page count and size, bytes, journal
 * mode, `integrity: 'ok'`) are filled in by `prepare`, before the manifest is written; `details.check` the pragma used.
 *
 * @throws InvalidInputError / UnsafePathError (from the factory) for a bad URI or a path outside
 *   the allowed roots; see {@link backupDatabase} and {@link checkDatabaseIntegrity} for what
 *   iterating the entries throws.
 */
export function sqliteSourceFactory(options: SqliteSourceOptions = {}): SourceFactory {
  return (uris, params, context) => new SqliteSource(parseSqliteUris(uris, context, 'source'), params, context, options);
}

/** The `sqlite:` source with default options. */
export const createSqliteSource: SourceFactory = sqliteSourceFactory();

class SqliteSource implements Source {
  readonly descriptor: SourceDescriptor;
  private readonly databases: SqliteDatabaseDetails[];
  private readonly check: IntegrityCheckMode;
  private staging: StagingDir | undefined;
  private staged: Array<{ copy: StagedCopy; entry: SourceEntry }> | undefined;

  constructor(
    private readonly endpoints: SqliteEndpoint[],
    params: SourceParams,
    private readonly context: EndpointContext,
    private readonly options: SqliteSourceOptions,
  ) {
    const names = uniqueDatabaseNames(endpoints.map((endpoint) => endpoint.path));
    this.databases = endpoints.map((endpoint, i) => ({ name: names[i]!, path: endpoint.path }));
    this.check = options.check ?? 'integrity';
    const first = path.basename(endpoints[0]!.path);
    this.descriptor = {
      kind: 'sqlite',
      uri: endpoints.map((endpoint) => endpoint.uri).join(' '),
      name: params.name ?? lineageNameFrom(first.slice(0, first.length - path.extname(first).length), 'database'),
      details: { check: this.check === 'quick' ? 'quick_check' : 'integrity_check', databases: this.databases },
    };
  }

  /** The live files' sizes: close to the copies' unless a large WAL is not yet checkpointed. */
  async estimateBytes(): Promise<number | undefined> {
    let total = 0;
    for (const { path: dbPath } of this.databases) {
      try {
        total += (await stat(dbPath)).size;
      } catch {
        return undefined;
      }
    }
    return total;
  }

  /**
   * Copies and checks every database before the archive starts, so the manifest records each
   * one's checked facts (page count and size, bytes, journal mode, integrity). Staging therefore
   * needs the databases' total size on disk; each copy is deleted as soon as its body was read.
   * Progress: phase `reading` while copying; bytes are counted by the archive writer.
   */
  async prepare({ signal, progress }: SourceOpenOptions): Promise<void> {
    if (this.staged) return;
    const staging = await createStagingDir(this.context.stagingDir, 'sqlite-snapshot-');
    this.staging = staging;
    const workDir = staging.path;
    const staged: Array<{ copy: StagedCopy; entry: SourceEntry }> = [];
    for (const [index, database] of this.databases.entries()) {
      throwIfAborted(signal);
      progress.setPhase('reading');
      const copyPath = path.join(workDir, `${index}.db`);
      const { mode } = await stat(database.path).catch(() => ({ mode: 0o644 }));
      const takenAt = new Date();
      const facts = await backupDatabase(database.path, copyPath, this.options, signal);
      await checkDatabaseIntegrity(copyPath, this.check, `sqlite source ${database.path}: copy`, signal);
      Object.assign(database, facts, { integrity: 'ok' as const });
      const copy = new StagedCopy(copyPath);
      staged.push({
        copy,
        entry: { path: databaseEntryPath(database.name), type: 'file', mode: mode & 0o7777, mtime: takenAt, size: facts.sizeBytes, open: () => copy.open() },
      });
    }
    this.staged = staged;
  }

  /**
   * Yields the staged copies (preparing them first when `prepare` was not called). A copy is
   * deleted once its body has been read; a body the consumer never opened is kept until the
   * iteration ends (waiting for it could deadlock a consumer that reads ahead).
   */
  async *entries(options: SourceOpenOptions): AsyncGenerator<SourceEntry> {
    try {
      await this.prepare(options);
      let previous: StagedCopy | undefined;
      for (const { copy, entry } of this.staged!) {
        if (previous) await previous.releaseAfterRead(options.signal);
        previous = copy;
        yield entry;
      }
    } finally {
      await this.release();
    }
  }

  async release(): Promise<void> {
    const staging = this.staging;
    this.staging = undefined;
    this.staged = undefined;
    await staging?.remove();
  }
}

/** A staged copy handed out as an entry body; deleted once that body has been read. */
class StagedCopy {
  private closed: Promise<unknown> | undefined;

  constructor(private readonly filePath: string) {}

  open(): Readable {
    const stream = createReadStream(this.filePath);
    this.closed = once(stream, 'close').catch(() => undefined);
    return stream;
  }

  /** Waits until the opened body is closed (read or destroyed), then deletes the copy. */
  async releaseAfterRead(signal: AbortSignal): Promise<void> {
    if (!this.closed) return;
    await Promise.race([this.closed, once(signal, 'abort')]);
    await rm(this.filePath, { force: true });
  }
}
