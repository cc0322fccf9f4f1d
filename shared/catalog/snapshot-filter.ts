import { formatLabel } from './label-text.js';

/** Which snapshots a listing or a `latest` lookup considers. */
export interface SnapshotFilter {
  /** Lineage (source) name. */
  source?: string;
  /** Every label given must match exactly. */
  labels?: Record<string, string>;
}

/** True when `snapshot` (a record or its summary) passes `filter`. */
export function matchesFilter(snapshot: { source: { name: string }; labels: Record<string, string> }, filter: SnapshotFilter): boolean {
  if (filter.source !== undefined && snapshot.source.name !== filter.source) return false;
  for (const [key, value] of Object.entries(filter.labels ?? {})) {
    if (snapshot.labels[key] !== value) return false;
  }
  return true;
}

/** The filter in words for messages: `source app, env=prod`. */
export function describeFilter(filter: SnapshotFilter): string {
  const parts: string[] = [];
  if (filter.source) parts.push(`source ${filter.source}`);
  for (const [k, v] of Object.entries(filter.labels ?? {})) parts.push(formatLabel(k, v));
  return parts.join(', ');
}
