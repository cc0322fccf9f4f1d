import type { GenerationSummary } from '../../shared/kinds/sqlite/replication/list-generations.js';
import { formatBytes } from '../progress-bar.js';
import { formatColumns } from './columns.js';

/**
 * `ls --source NAME --generations` for people: one line per generation, oldest first: its id,
 * when it began and when its last segment was read (UTC; a restore reaches any time between),
 * its first and last WAL position as `index/offset` (the snapshot's, the last segment's end),
 * segments and their stored bytes, and why it began; a count last.
 */
export function formatGenerationTable(replica: string, generations: readonly GenerationSummary[]): string {
  const time = (iso: string) => iso.slice(0, 19).replace('T', ' ');
  const rows = generations.map((g) => [
    g.generation,
    time(g.createdAt),
    time(g.lastReadAt),
    `${g.snapshot.index}/${g.snapshot.offset}`,
    `${g.end.index}/${g.end.offset}`,
    String(g.segments),
    formatBytes(g.segmentBytes),
    g.reason,
  ]);
  const header = ['GENERATION', 'START (UTC)', 'END (UTC)', 'FIRST', 'LAST', 'SEGMENTS', 'BYTES', 'REASON'];
  // Counts and sizes right-aligned; the reason, free text, last.
  return [...formatColumns(header, rows, new Set([5, 6])), `${generations.length} generation${generations.length === 1 ? '' : 's'} of replica ${replica}`].join('\n');
}
