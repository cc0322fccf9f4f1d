/**
 * What a snapshot could not keep exactly as it found it. Sources report every such entry here
 * instead of dropping it in silence; the pipeline counts them, names the first ones in the
 * snapshot record, the job result, the log and a `warning` event, and marks the snapshot
 * incomplete when data it should hold is missing (restic's exit code 3).
 *
 * - `unsupported`: an entry of a type no archive can hold (a socket). Named, not incomplete.
 * - `unreadable`: an entry the worker could not read, left out because the job asked to skip
 *   such entries instead of failing. Makes the snapshot incomplete.
 * - `vanished`: listed by the walk but gone before it could be read (deleted by the application
 *   during the snapshot). Named, not incomplete: the entry no longer exists.
 * - `changed`: its size or mtime changed while it was read, so the stored bytes may mix two
 *   versions. Named, not incomplete.
 * - `unmatched`: an include pattern that matched no path (its `path` is `include pattern "…"`),
 *   so the snapshot may hold less than meant, or nothing. Named, not incomplete (as restic).
 */
export const NOTICE_KINDS = ['unsupported', 'unreadable', 'vanished', 'changed', 'unmatched'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export interface EntryNotice {
  kind: NoticeKind;
  /** The entry's path inside the payload (`data/...`), non-UTF-8 bytes shown escaped; for `unmatched` the pattern. */
  path: string;
  /** One line saying why, e.g. `socket`, `EACCES: permission denied`. */
  reason: string;
}

/** Where sources report entries they could not keep exactly. Calls are cheap and synchronous. */
export interface NoticeSink {
  add(notice: EntryNotice): void;
}

/** Kinds that mean the snapshot lacks data it should hold. */
export const INCOMPLETE_KINDS: ReadonlySet<NoticeKind> = new Set(['unreadable']);

/** A sink that drops everything, for callers (benches, unit tests) that do not report. */
export const nullNotices: NoticeSink = { add() {} };
