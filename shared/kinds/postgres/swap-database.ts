import { randomBytes } from 'node:crypto';
import { InvalidInputError, SnapworkerError } from '../../errors.js';
import type { PostgresClient } from './postgres-client.js';
import { quoteIdent, quoteLiteral } from './postgres-uri.js';

/** How a replace treats sessions connected to the database it replaces. */
export interface SwapOptions {
  /** Replace a database that exists; without it an existing one is refused. */
  replace: boolean;
  /**
   * `false` (default): a database with open sessions is not replaced; the restore fails and the
   * old database stays. `true`: new connections to it are refused, open sessions terminated.
   */
  terminateConnections: boolean;
  signal: AbortSignal;
}

/** A fresh, unique database name for a restore in progress or a replaced database awaiting its drop. */
export function scratchDatabaseName(purpose: 'restore' | 'old'): string {
  return `snapworker_${purpose}_${randomBytes(8).toString('hex')}`;
}

/**
 * Puts the restored database `restored` in place under the name `target`, on the server's
 * maintenance database `via`. A new target is one rename. A replace renames both in ONE
 * transaction (`target` → a scratch name, `restored` → `target`, the restored one taking the old
 * one's owner), so at every instant `target` is either the whole old database or the whole new
 * one; the old one is dropped only after that commit. PostgreSQL refuses to rename a database
 * with open sessions (after waiting up to 5 s for them to end), which is what `refuse` relies on;
 * `terminateConnections` first closes the old database to new connections (committed, so it
 * holds for everyone), then terminates its sessions, and opens it again if the swap fails.
 *
 * @throws InvalidInputError when `target` exists without `replace`, or has open sessions and
 *   `terminateConnections` is off; SnapworkerError when the swap or the drop of the old database fails.
 */
export async function swapDatabase(client: PostgresClient, via: string, restored: string, target: string, options: SwapOptions): Promise<void> {
  const { signal } = options;
  const owner = await client.scalar(via, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = ${quoteLiteral(target)}`, signal);
  if (owner === undefined) {
    await client.query(via, `ALTER DATABASE ${quoteIdent(restored)} RENAME TO ${quoteIdent(target)}`, signal);
    return;
  }
  if (!options.replace) throw existsError(client, target);
  const old = scratchDatabaseName('old');
  if (options.terminateConnections) {
    await client.query(via, `ALTER DATABASE ${quoteIdent(target)} WITH ALLOW_CONNECTIONS false`, signal);
    await client.query(via, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = ${quoteLiteral(target)} AND pid <> pg_backend_pid()`, signal);
  }
  try {
    await client.query(
      via,
      `BEGIN;
       ALTER DATABASE ${quoteIdent(restored)} OWNER TO ${quoteIdent(owner)};
       ALTER DATABASE ${quoteIdent(target)} RENAME TO ${quoteIdent(old)};
       ALTER DATABASE ${quoteIdent(restored)} RENAME TO ${quoteIdent(target)};
       COMMIT;`,
      signal,
    );
  } catch (err) {
    if (options.terminateConnections) {
      await client.query(via, `ALTER DATABASE ${quoteIdent(target)} WITH ALLOW_CONNECTIONS true`, new AbortController().signal).catch(() => {});
    }
    if (err instanceof SnapworkerError && /is being accessed by other users/.test(err.message)) {
      throw new InvalidInputError(
        `${client.what}: database ${target} has open sessions, so it was not replaced (left as it was); close them, or restore with terminateConnections`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    await client.query(via, `DROP DATABASE ${quoteIdent(old)}`, signal);
  } catch (cause) {
    throw new SnapworkerError(`${client.what}: restored and swapped in, but the replaced database (now ${old}) could not be dropped: ${(cause as Error).message}`, { cause });
  }
}

/** The refusal of an existing target without `replace`. */
export function existsError(client: PostgresClient, target: string): InvalidInputError {
  return new InvalidInputError(`${client.what}: database ${target} already exists; restore with replace to swap it for the snapshot`);
}
