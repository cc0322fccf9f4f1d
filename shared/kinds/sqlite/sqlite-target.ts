import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { EntryHeader } from '../../snapshot/entry.js';
import type { SnapshotManifest } from '../../snapshot/manifest.js';
import { IntegrityError, InvalidInputError, SnapworkerError, throwIfAborted } from '../../errors.js';
import type { EndpointContext } from '../source.js';
import { checkDatabaseIntegrity } from './check-integrity.js';
import { cannotCreate } from '../../fsutil/cannot-create.js';
import { removeSideFiles } from './durable-fs.js';
import { assertPlaceable, swapIn } from './swap-in.js';
import { DATABASE_ENTRY_PREFIX, parseSqliteUris, type SqliteEndpoint } from './sqlite-uri.js';
import type { RestoreOptions, RestoreResult, RestoreSession, RestoreTarget, TargetFactory } from '../restore-target.js';

/**
 * The `sqlite:` restore target. Accepts archives of kind `sqlite`. Databases map to the target
 * URIs in archive order, one URI per database; a single URI is enough for a one-database archive.
 *
 * Each database is streamed into a temp file beside its target (`.<name>.snapworker-<hex>.tmp`,
 * same directory so the rename is atomic) and fsynced. `commit` checks every staged copy with
 * `PRAGMA integrity_check` before touching any target, then per database: sets the target's stale
 * `-wal`/`-shm`/`-journal` aside, renames the copy over the target, deletes the set-aside files and
 * fsyncs the directory. A process that holds the old database open keeps its old file (see
 * docs/sqlite.md); stop writers, or make them reopen, before a replace.
 *
 * @throws InvalidInputError (factory) for bad URIs or the same path twice; (begin) for a URI count that does not match the databases, a missing parent directory, or an
 *   existing target without `replace`.
 */
export const createSqliteTarget: TargetFactory = (uris: URL[], _params: object, context: EndpointContext) =>
  new SqliteTarget(parseSqliteUris(uris, context, 'target'));

class SqliteTarget implements RestoreTarget {
  readonly uri: string;
  readonly accepts = ['sqlite'] as const;

  constructor(private readonly endpoints: SqliteEndpoint[]) {
    const paths = new Set(endpoints.map((endpoint) => endpoint.path));
    if (paths.size !== endpoints.length) throw new InvalidInputError('sqlite target: the same database path is given twice');
    this.uri = endpoints.map((endpoint) => endpoint.uri).join(' ');
  }

  async begin(manifest: SnapshotManifest, options: RestoreOptions): Promise<RestoreSession> {
    const names = archivedDatabaseNames(manifest);
    if (names) assertMapping(names.length, this.endpoints.length, names);
    for (const endpoint of this.endpoints) await assertPlaceable(endpoint.path, options.replace);
    return new SqliteRestoreSession(this.endpoints, this.uri, options);
  }
}

/** One database staged beside its target. */
interface StagedDatabase {
  target: string;
  tempPath: string;
  bytes: number;
  committed: boolean;
}

class SqliteRestoreSession implements RestoreSession {
  private readonly staged: StagedDatabase[] = [];

  constructor(
    private readonly endpoints: SqliteEndpoint[],
    private readonly uri: string,
    private readonly options: RestoreOptions,
  ) {}

  async write(header: EntryHeader, body: Readable | undefined): Promise<void> {
    const name = header.path.startsWith(DATABASE_ENTRY_PREFIX) ? header.path.slice(DATABASE_ENTRY_PREFIX.length) : '';
    if (header.type !== 'file' || !body || name === '' || name.includes('/')) {
      body?.destroy();
      throw new IntegrityError(`sqlite target ${this.uri}: unexpected archive entry ${header.path} (expected ${DATABASE_ENTRY_PREFIX}<name> files)`);
    }
    const endpoint = this.endpoints[this.staged.length];
    if (!endpoint) {
      body.destroy();
      throw new InvalidInputError(
        `sqlite target: the archive holds more databases than the ${this.endpoints.length} target URI(s) given (${header.path} has none); ${MAPPING_RULE}`,
      );
    }
    const tempPath = path.join(path.dirname(endpoint.path), `.${path.basename(endpoint.path)}.snapworker-${randomBytes(6).toString('hex')}.tmp`);
    const database: StagedDatabase = { target: endpoint.path, tempPath, bytes: 0, committed: false };
    this.staged.push(database);
    database.bytes = await writeDurably(body, tempPath, header.mode & 0o777, this.options.signal, `sqlite target ${endpoint.path}: stage ${header.path}`);
    if (database.bytes !== header.size) {
      throw new IntegrityError(`sqlite target ${endpoint.path}: entry ${header.path} has ${database.bytes} bytes, header says ${header.size}`);
    }
  }

  async commit(): Promise<RestoreResult> {
    try {
      assertMapping(this.staged.length, this.endpoints.length);
      this.options.progress.setPhase('verifying');
      for (const database of this.staged) {
        await checkDatabaseIntegrity(database.tempPath, 'integrity', `sqlite target ${database.target}: restored copy`, this.options.signal);
      }
      this.options.progress.setPhase('committing');
      for (const database of this.staged) {
        throwIfAborted(this.options.signal);
        await assertPlaceable(database.target, this.options.replace);
        await swapIn(database);
        database.committed = true;
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
    return {
      target: this.uri,
      entries: this.staged.length,
      bytes: this.staged.reduce((sum, database) => sum + database.bytes, 0),
    };
  }

  /** Removes every staged copy not yet renamed into place; targets stay as they are. */
  async abort(): Promise<void> {
    for (const database of this.staged) {
      if (database.committed) continue;
      await rm(database.tempPath, { force: true });
      await removeSideFiles(database.tempPath);
    }
  }
}


/** Streams `body` into a new file and fsyncs it; returns the byte count. Removes nothing on failure (abort does). */
async function writeDurably(body: Readable, filePath: string, mode: number, signal: AbortSignal, what: string): Promise<number> {
  let bytes = 0;
  const handle = await open(filePath, 'wx', mode).catch((cause: unknown) => {
    body.destroy();
    throw cannotCreate(path.dirname(filePath), path.basename(filePath), cause);
  });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      throwIfAborted(signal);
      await handle.write(chunk);
      bytes += chunk.length;
    }
    await handle.sync();
  } catch (cause) {
    body.destroy();
    if (cause instanceof SnapworkerError) throw cause;
    throw new SnapworkerError(`${what}: ${(cause as Error).message}`, { cause });
  } finally {
    await handle.close();
  }
  return bytes;
}

function archivedDatabaseNames(manifest: SnapshotManifest): string[] | undefined {
  const databases = manifest.source.details?.['databases'];
  if (!Array.isArray(databases)) return undefined;
  return databases.map((database) => String((database as { name?: unknown }).name));
}

function assertMapping(archived: number, targets: number, names?: string[]): void {
  if (archived === targets) return;
  const listed = names ? ` (${names.join(', ')})` : '';
  throw new InvalidInputError(
    `sqlite target: the archive holds ${archived} database(s)${listed} but ${targets} target URI(s) were given; ${MAPPING_RULE}`,
  );
}

const MAPPING_RULE = 'give one sqlite:///path URI per database, in archive order (a single URI for a one-database archive)';

