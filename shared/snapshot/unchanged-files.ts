import type { EntryHeader, FileIdentity } from './entry.js';

/**
 * What an incremental snapshot tells its source before the walk: which files the parent snapshot
 * already holds unchanged (same size, mtime, ctime and inode), so the source neither reads them
 * ahead nor opens them; the format reuses the parent's stored content instead. A source that
 * ignores it still works: it reads files the format then does not ask for.
 */
export interface UnchangedFiles {
  /** True when this file (a `file` entry with its `identity`) is stored unchanged in the parent snapshot. */
  isUnchanged(entry: EntryHeader & { identity?: FileIdentity }): Promise<boolean>;
}
