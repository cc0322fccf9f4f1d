import type { JobResultByKind } from '../../jobs/results.js';
import type { JobKind } from '../../shared/job-kind.js';
import { formatBytes } from '../progress-bar.js';
import { formatPruneReport } from './prune-report.js';
import { formatCheckReport, formatCopyReport } from './browse-reports.js';

/** One line describing a job's result, for people (`--json` prints the result itself). */
export function summarizeResult<K extends JobKind>(kind: K, result: JobResultByKind[K]): string {
  switch (kind) {
    case 'snapshot': {
      const r = result as JobResultByKind['snapshot'];
      return `snapshot ${r.id} of ${r.source.name}: ${entries(r.stats.entries)}, ${formatBytes(r.stats.rawBytes)} → ${formatBytes(r.archive?.size ?? r.stats.storedBytes)}${r.archive ? '' : ' new'} in ${r.stats.durationSeconds.toFixed(1)}s${r.archive ? ` (${r.archive.checksum})` : ''}${noticeSummary(r)}`;
    }
    case 'restore': {
      const r = result as JobResultByKind['restore'];
      const notKept = r.xattrsNotRestored ? `; ${r.xattrsNotRestored.count} extended attribute(s) not restored, e.g. ${r.xattrsNotRestored.first[0]}` : '';
      return `restored ${r.snapshotId} into ${r.target}: ${entries(r.entries)}, ${formatBytes(r.bytes)}${notKept}`;
    }
    case 'verify': {
      const r = result as JobResultByKind['verify'];
      return `snapshot ${r.snapshotId} verified: ${entries(r.entries)}, ${formatBytes(r.rawBytes)}${r.sealed ? ', seal valid' : ''}`;
    }
    case 'replicate': {
      const r = result as JobResultByKind['replicate'];
      return `replicator of ${r.database} stopped${r.generation ? ` at ${r.generation} ${r.index}/${r.offset}` : ''}`;
    }
    case 'copy':
      return formatCopyReport(result as JobResultByKind['copy']);
    case 'check':
      return formatCheckReport(result as JobResultByKind['check']);
    default: {
      return formatPruneReport(result as JobResultByKind['prune']);
    }
  }
}

function entries(count: number): string {
  return `${count} ${count === 1 ? 'entry' : 'entries'}`;
}

/**
 * `; INCOMPLETE: 2 unreadable, 1 unsupported entries not kept exactly (named in the record)`,
 * `; 1 include pattern(s) matched nothing`, both, or nothing.
 */
function noticeSummary(record: JobResultByKind['snapshot']): string {
  if (!record.notices) return '';
  const { unmatched, ...entryCounts } = record.notices.counts;
  const parts: string[] = [];
  const counts = Object.entries(entryCounts).map(([kind, n]) => `${n} ${kind}`).join(', ');
  if (counts) parts.push(`${record.incomplete ? 'INCOMPLETE: ' : ''}${counts} entries not kept exactly (named in the record)`);
  if (unmatched) parts.push(`${unmatched} include pattern(s) matched nothing`);
  return parts.map((part) => `; ${part}`).join('');
}
