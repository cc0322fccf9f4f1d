import type { SnapshotRecord } from '../catalog/snapshot-record.js';

/** What snapshots are grouped by before a policy is applied (restic's `--group-by`). */
export const GROUP_KEYS = ['source', 'labels'] as const;

export type GroupKey = (typeof GROUP_KEYS)[number];

/**
 * Groups records by the given keys, in input order within each group. The group name reads like
 * `source=app labels=app=shop,env=prod`; no keys put every record in one group named `all`.
 * Grouping keeps one lineage's rules from removing another's snapshots.
 */
export function groupSnapshots(records: readonly SnapshotRecord[], keys: readonly GroupKey[]): Map<string, SnapshotRecord[]> {
  const groups = new Map<string, SnapshotRecord[]>();
  for (const record of records) {
    const name = groupName(record, keys);
    const group = groups.get(name);
    if (group) group.push(record);
    else groups.set(name, [record]);
  }
  return groups;
}

function groupName(record: SnapshotRecord, keys: readonly GroupKey[]): string {
  if (keys.length === 0) return 'all';
  return keys
    .map((key) => {
      if (key === 'source') return `source=${record.source.name}`;
      const labels = Object.keys(record.labels)
        .sort()
        .map((k) => `${k}=${record.labels[k]}`);
      return `labels=${labels.join(',')}`;
    })
    .join(' ');
}
