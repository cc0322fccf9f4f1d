import { InvalidInputError } from '../errors.js';
import { formatLabel, formatLabels } from '../catalog/label-text.js';
import type { SnapshotSummary } from '../catalog/snapshot-summary.js';

/** What prune jobs group snapshots by before a policy is applied (restic's `--group-by`). */
export const GROUP_KEYS = ['source', 'labels'] as const;

/**
 * A grouping key: the lineage, the whole label set, or one label by its key (`label:app`, the
 * hosting panel's "by app"; snapshots without that label form one group).
 */
export type GroupKey = (typeof GROUP_KEYS)[number] | `label:${string}`;

/** What grouping reads of a snapshot: a record or its summary. */
export type Groupable = Pick<SnapshotSummary, 'source' | 'labels'>;

/**
 * Groups records by the given keys, in input order within each group. The group name reads like
 * `source=app labels=app=shop,env=prod` or, for `label:app`, `app=shop` (`app unset` without
 * it); a label that would read ambiguously is quoted (`app="a,b"`, `formatLabels`), so two label
 * sets never share a name. No keys put every record in one group named `all`. Grouping keeps
 * one lineage's rules from removing another's snapshots.
 */
export function groupSnapshots<T extends Groupable>(records: readonly T[], keys: readonly GroupKey[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const record of records) {
    const name = groupName(record, keys);
    const group = groups.get(name);
    if (group) group.push(record);
    else groups.set(name, [record]);
  }
  return groups;
}

/**
 * `source,labels,label:app` (comma-separated) as keys; the empty string is no key (one group).
 * @throws InvalidInputError naming a key that is none of these.
 */
export function parseGroupKeys(text: string): GroupKey[] {
  return text
    .split(',')
    .filter(Boolean)
    .map((key) => {
      if ((GROUP_KEYS as readonly string[]).includes(key) || /^label:[^,=\s]+$/.test(key)) return key as GroupKey;
      throw new InvalidInputError(`--group-by: "${key}" is not source, labels or label:KEY (e.g. label:app)`);
    });
}

function groupName(record: Groupable, keys: readonly GroupKey[]): string {
  if (keys.length === 0) return 'all';
  return keys
    .map((key) => {
      if (key === 'source') return `source=${record.source.name}`;
      if (key === 'labels') {
        return `labels=${formatLabels(record.labels, Object.keys(record.labels).sort())}`;
      }
      const label = key.slice('label:'.length);
      return Object.hasOwn(record.labels, label) ? formatLabel(label, record.labels[label]!) : `${label} unset`;
    })
    .join(' ');
}
