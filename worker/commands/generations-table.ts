import type { GenerationSummary } from '../../shared/kinds/sqlite/replication/list-generations.js';
import { formatBytes } from '../progress-bar.js';

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
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  // Numbers right-aligned; the reason, free text, last and unpadded.
  const right = new Set([5, 6]);
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line), `${generations.length} generation${generations.length === 1 ? '' : 's'} of replica ${replica}`].join('\n');
}
