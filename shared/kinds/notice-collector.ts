import { INCOMPLETE_KINDS, type EntryNotice, type NoticeKind, type NoticeSink } from './notices.js';

/** How many notices a snapshot names (record, result, log, events); the rest are only counted. */
export const NAMED_NOTICES = 100;

/** What a snapshot record says about the entries it could not keep exactly. */
export interface NoticeSummary {
  /** Notices per kind (kinds without any are left out). */
  counts: Partial<Record<NoticeKind, number>>;
  /** The first notices, in the order they came, at most NAMED_NOTICES. */
  first: EntryNotice[];
  /** True when there were more notices than `first` names. */
  truncated: boolean;
}

/**
 * The NoticeSink a snapshot hands its source: counts every notice per kind, keeps the first
 * `limit` and passes each of those to `onNamed` as it comes (the job log and warning events), so
 * a tree with a million sockets costs a counter, not a million log lines.
 */
export class NoticeCollector implements NoticeSink {
  private readonly counts: Partial<Record<NoticeKind, number>> = {};
  private readonly first: EntryNotice[] = [];
  private total = 0;

  constructor(
    private readonly onNamed: (notice: EntryNotice) => void = () => {},
    private readonly limit = NAMED_NOTICES,
  ) {}

  add(notice: EntryNotice): void {
    this.counts[notice.kind] = (this.counts[notice.kind] ?? 0) + 1;
    this.total += 1;
    if (this.first.length >= this.limit) return;
    const copy = { kind: notice.kind, path: notice.path, reason: notice.reason };
    this.first.push(copy);
    this.onNamed(copy);
  }

  /** True when a notice of an INCOMPLETE kind came: the snapshot lacks data it should hold. */
  get incomplete(): boolean {
    return [...INCOMPLETE_KINDS].some((kind) => (this.counts[kind] ?? 0) > 0);
  }

  /** The summary for the record, or undefined when nothing was reported. */
  summary(): NoticeSummary | undefined {
    if (this.total === 0) return undefined;
    return { counts: { ...this.counts }, first: [...this.first], truncated: this.total > this.first.length };
  }
}
