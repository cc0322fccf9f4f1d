import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import type { SnapshotEntry } from '../formats/snapshot-format.js';
import { PathFilter } from '../fsutil/path-filter.js';
import type { EntryHeader, EntryType } from '../snapshot/entry.js';

/**
 * A partial restore (docs/browsing.md): `subPath` picks a directory of the snapshot whose
 * content becomes the target's root (restic's `restore ID:/sub/dir`); `include`/`exclude` are
 * picomatch globs relative to the snapshot's root (as `snapworker files` prints paths), with the
 * rules of the dir source's include/exclude (shared/fsutil/path-filter.ts). Directory kinds only.
 */
export interface RestoreSelection {
  include?: readonly string[];
  exclude?: readonly string[];
  /** `/sub/dir`: absolute within the snapshot, `/` separated. */
  subPath?: string;
}

const ROOT = 'data';

/** True when the selection selects anything less than everything. */
export function isPartial(selection: RestoreSelection | undefined): selection is RestoreSelection {
  return !!selection && ((selection.include?.length ?? 0) > 0 || (selection.exclude?.length ?? 0) > 0 || (selection.subPath ?? '/') !== '/');
}

/**
 * What a partial restore reads and writes: `select` for the format (so it reads only what may be
 * written), `filter` over the entries it hands out. The filter writes a directory only when it
 * is selected itself or holds something selected (its parents are held back until then), and
 * moves the sub-path's content to the root. Hard links whose target is not written are left out.
 * @throws InvalidInputError for a malformed glob or sub-path.
 */
export class RestorePlan {
  private readonly filter: PathFilter;
  /** `data/sub/dir` for sub-path `/sub/dir`, `data` without one. */
  private readonly base: string;
  private readonly selection: RestoreSelection;

  constructor(selection: RestoreSelection) {
    this.selection = selection;
    this.filter = new PathFilter(selection.include ?? [], selection.exclude ?? []);
    const sub = selection.subPath ?? '/';
    const parts = sub.split('/').filter((p) => p !== '');
    if (!sub.startsWith('/') || parts.some((p) => p === '.' || p === '..')) {
      throw new InvalidInputError(`restore: sub-path ${JSON.stringify(sub)} must be absolute within the snapshot, without . or ..`);
    }
    this.base = [ROOT, ...parts].join('/');
  }

  /** For `OpenSnapshotRequest.select`: whether an entry may be written (a directory: may hold something that is). */
  readonly select = (entryPath: string, type?: EntryType): boolean => {
    if (entryPath === ROOT || entryPath === this.base) return true;
    if (!entryPath.startsWith(`${this.base}/`)) return false;
    const rel = entryPath.slice(ROOT.length + 1);
    if (this.excluded(rel)) return false;
    if (this.filter.isIncluded(rel)) return true;
    return type !== 'file' && type !== 'hardlink' && type !== 'symlink' && this.filter.mayContainIncluded(rel);
  };

  /**
   * The entries to write, under their new paths: the root first, then each selected entry after
   * the held-back directories above it. @throws InvalidInputError at the end when the sub-path
   * is not a directory of the snapshot, or when include/exclude select no entry in it (restic
   * refuses a missing sub-path too): a restore that wrote nothing would look like success, and
   * the error reaches the target's session before it commits, so the target stays as it was.
   */
  async *filterEntries(entries: AsyncIterable<SnapshotEntry>): AsyncGenerator<SnapshotEntry> {
    const held: SnapshotEntry[] = [];
    let rootSeen = false;
    let selected = 0;
    for await (const entry of entries) {
      const { header } = entry;
      if (header.path === this.base) {
        if (header.type !== 'directory') {
          throw new InvalidInputError(`restore: sub-path ${JSON.stringify(this.shown())} is a ${header.type}, not a directory (for one file: --include, or dump)`);
        }
        rootSeen = true;
        yield { header: { ...header, path: ROOT }, body: undefined };
        continue;
      }
      if (!header.path.startsWith(`${this.base}/`) || !this.select(header.path, header.type)) continue;
      const rel = header.path.slice(ROOT.length + 1);
      while (held.length > 0 && !header.path.startsWith(`${held[held.length - 1]!.header.path}/`)) held.pop();
      if (header.type === 'directory' && !this.filter.isIncluded(rel)) {
        held.push(entry);
        continue;
      }
      if (header.type === 'hardlink' && !this.selects(header.linkTarget ?? '')) {
        // Its content is stored under its first name, which this restore leaves out: never a
        // silently missing file (restoring it from there needs random access the formats lack).
        throw new InvalidInputError(
          `restore: ${showPayload(header.path)} is a hard link to ${showPayload(header.linkTarget ?? '')}, which the selection leaves out; widen the selection to include it (docs/browsing.md)`,
        );
      }
      for (const dir of held) yield { header: this.moved(dir.header), body: undefined };
      held.length = 0;
      selected++;
      yield { header: this.moved(header), body: entry.body };
    }
    // The snapshot root itself may have no entry (dir sources write none); a sub-path must.
    if (!rootSeen && this.base !== ROOT) throw new InvalidInputError(`restore: the snapshot has no directory ${JSON.stringify(this.shown())}`);
    // An empty sub-path directory alone is a real (empty) selection; patterns that select nothing are a mistake.
    const { include = [], exclude = [] } = this.selection;
    if (selected === 0 && include.length + exclude.length > 0) {
      const patterns = [
        ...(include.length ? [`include ${include.map((g) => JSON.stringify(g)).join(', ')}`] : []),
        ...(exclude.length ? [`exclude ${exclude.map((g) => JSON.stringify(g)).join(', ')}`] : []),
      ].join(', ');
      const under = this.base === ROOT ? 'the snapshot' : `${JSON.stringify(this.shown())} of the snapshot`;
      throw new InvalidInputError(`restore: the selection (${patterns}) matches nothing in ${under}; nothing restored (globs are relative to the snapshot root: "etc/**" for what "files" lists as /etc/…)`);
    }
  }

  /** True when `path` is restored: inside the sub-path and selected. */
  private selects(path: string): boolean {
    return (path === this.base || path.startsWith(`${this.base}/`)) && this.select(path, 'file');
  }

  private shown(): string {
    return '/' + this.base.slice(ROOT.length + 1);
  }

  private excluded(rel: string): boolean {
    for (let at = rel; at !== '.' && at !== ''; at = path.posix.dirname(at)) if (this.filter.isExcluded(at)) return true;
    return false;
  }

  private moved(header: EntryHeader): EntryHeader {
    if (this.base === ROOT) return header;
    const move = (p: string) => ROOT + p.slice(this.base.length);
    return { ...header, path: move(header.path), ...(header.type === 'hardlink' && header.linkTarget ? { linkTarget: move(header.linkTarget) } : {}) };
  }
}

/** A payload path as the user names it: `/sub/file` for `data/sub/file`. */
function showPayload(path: string): string {
  return path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length) : path;
}
