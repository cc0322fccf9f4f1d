import type { ListedEntry } from '../formats/snapshot-format.js';
import { entryMtimeNs } from '../snapshot/entry.js';
import { comparePayloadPaths } from './entry-order.js';

/** What differs between the two versions of one path. */
export type ChangedField = 'type' | 'content' | 'size' | 'mode' | 'mtime' | 'linkTarget' | 'xattrs' | 'device';

/** One difference between snapshot A and snapshot B. */
export type EntryChange =
  | { change: 'added'; path: string; after: ListedEntry }
  | { change: 'removed'; path: string; before: ListedEntry }
  | { change: 'changed'; path: string; before: ListedEntry; after: ListedEntry; fields: ChangedField[] };

/**
 * The differences between two listings, in payload order: a streaming merge (restic's `diff`
 * walks two trees the same way). Both listings must be in payload order (`inPayloadOrder`);
 * memory holds one entry of each. A file's content counts as changed when both sides know its
 * SHA-256 and they differ, or when its size differs.
 */
export async function* diffListings(a: AsyncIterable<ListedEntry>, b: AsyncIterable<ListedEntry>): AsyncGenerator<EntryChange> {
  const left = a[Symbol.asyncIterator]();
  const right = b[Symbol.asyncIterator]();
  try {
    let x = await left.next();
    let y = await right.next();
    while (!x.done || !y.done) {
      const order = x.done ? 1 : y.done ? -1 : comparePayloadPaths(x.value.path, y.value.path);
      if (order < 0) {
        yield { change: 'removed', path: x.value!.path, before: x.value! };
        x = await left.next();
      } else if (order > 0) {
        yield { change: 'added', path: y.value!.path, after: y.value! };
        y = await right.next();
      } else {
        const fields = changedFields(x.value!, y.value!);
        if (fields.length > 0) yield { change: 'changed', path: y.value!.path, before: x.value!, after: y.value!, fields };
        [x, y] = await Promise.all([left.next(), right.next()]);
      }
    }
  } finally {
    // Stopping early (or a failure on one side) closes both readers.
    await Promise.allSettled([left.return?.(), right.return?.()]);
  }
}

/** The fields in which two entries of the same path differ; empty when they are the same. */
export function changedFields(before: ListedEntry, after: ListedEntry): ChangedField[] {
  if (before.type !== after.type) return ['type'];
  const fields: ChangedField[] = [];
  if (before.type === 'file') {
    if (before.size !== after.size || (before.sha256 !== undefined && after.sha256 !== undefined && before.sha256 !== after.sha256)) fields.push('content');
    if (before.size !== after.size) fields.push('size');
  }
  if (before.mode !== after.mode) fields.push('mode');
  if (entryMtimeNs(before) !== entryMtimeNs(after)) fields.push('mtime');
  if ((before.linkTarget ?? '') !== (after.linkTarget ?? '')) fields.push('linkTarget');
  if (!sameXattrs(before, after)) fields.push('xattrs');
  if (before.devMajor !== after.devMajor || before.devMinor !== after.devMinor) fields.push('device');
  return fields;
}

function sameXattrs(a: ListedEntry, b: ListedEntry): boolean {
  const x = a.xattrs ?? [];
  const y = b.xattrs ?? [];
  return x.length === y.length && x.every((attr, i) => attr.name === y[i]!.name && attr.value.equals(y[i]!.value));
}

/**
 * restic's one-letter modifiers: `+` added, `-` removed, `T` type changed, `M` content changed,
 * `U` metadata only (mode, mtime, link target, extended attributes, device numbers).
 */
export function modifierOf(change: EntryChange): '+' | '-' | 'T' | 'M' | 'U' {
  if (change.change === 'added') return '+';
  if (change.change === 'removed') return '-';
  if (change.fields.includes('type')) return 'T';
  return change.fields.includes('content') ? 'M' : 'U';
}

/** Counts per kind of entry, for the summary. */
export interface ChangeCounts {
  added: number;
  removed: number;
  changed: number;
}

/** What a diff found, in numbers (restic's diff statistics). */
export interface DiffSummary {
  files: ChangeCounts;
  directories: ChangeCounts;
  /** Symlinks, hard links, devices, FIFOs. */
  others: ChangeCounts;
  /** Bytes of the files only B holds, plus B's size of files whose content changed. */
  addedBytes: number;
  /** Bytes of the files only A holds, plus A's size of files whose content changed. */
  removedBytes: number;
}

/** Adds up changes as they stream by. */
export class DiffTally {
  readonly summary: DiffSummary = { files: counts(), directories: counts(), others: counts(), addedBytes: 0, removedBytes: 0 };

  add(change: EntryChange): void {
    const entry = change.change === 'removed' ? change.before : change.after;
    const group = entry.type === 'file' ? this.summary.files : entry.type === 'directory' ? this.summary.directories : this.summary.others;
    group[change.change]++;
    if (change.change !== 'added' && change.before.type === 'file' && (change.change === 'removed' || change.fields.includes('content') || change.fields.includes('type'))) {
      this.summary.removedBytes += change.before.size;
    }
    if (change.change !== 'removed' && change.after.type === 'file' && (change.change === 'added' || change.fields.includes('content') || change.fields.includes('type'))) {
      this.summary.addedBytes += change.after.size;
    }
  }
}

function counts(): ChangeCounts {
  return { added: 0, removed: 0, changed: 0 };
}
