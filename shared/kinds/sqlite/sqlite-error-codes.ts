/**
 * Reading the result codes better-sqlite3 puts on its `SqliteError.code` (`SQLITE_BUSY`,
 * `SQLITE_BUSY_SNAPSHOT`, ...). Extended codes start with their primary code, so prefixes match both.
 */
function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Another connection holds a lock we need; a later attempt may succeed. */
export function isBusyError(err: unknown): boolean {
  const code = sqliteCode(err);
  return code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** The file is not an SQLite database at all (wrong header). */
export function isNotADatabaseError(err: unknown): boolean {
  return sqliteCode(err) === 'SQLITE_NOTADB';
}

/** SQLite found a malformed page or structure while reading. */
export function isCorruptError(err: unknown): boolean {
  return sqliteCode(err)?.startsWith('SQLITE_CORRUPT') ?? false;
}

/**
 * A read-only connection found a hot journal (a writer died mid-transaction) and may not roll it
 * back: `SQLITE_READONLY_ROLLBACK`, whose message is the misleading "attempt to write a readonly
 * database".
 */
export function isHotJournalError(err: unknown): boolean {
  return sqliteCode(err) === 'SQLITE_READONLY_ROLLBACK';
}

/** SQLite could not open a file of the database (missing, not permitted, or a side file it may not create). */
export function isCantOpenError(err: unknown): boolean {
  return sqliteCode(err)?.startsWith('SQLITE_CANTOPEN') ?? false;
}

/** The disk (or quota) SQLite was writing to is full. */
export function isFullError(err: unknown): boolean {
  return sqliteCode(err) === 'SQLITE_FULL';
}
