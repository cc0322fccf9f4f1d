import type { JobResultByKind } from '../../jobs/results.js';
import { formatBytes } from '../progress-bar.js';

/** `copied 2 snapshots from a to b (…); skipped 1 the target already holds: …`. */
export function formatCopyReport(result: JobResultByKind['copy']): string {
  const lines = result.copied.map((c) => `copied ${c.id} (${c.format}, ${c.route === 'objects' ? 'objects as stored' : 'entries re-written'}, ${formatBytes(c.storedBytes)}), verified in ${result.to}`);
  for (const id of result.skipped) lines.push(`skipped ${id}: ${result.to} holds it already`);
  lines.push(`${result.copied.length} copied, ${result.skipped.length} skipped, from ${result.from} to ${result.to}`);
  return lines.join('\n');
}

/** restic's check report: the problems, then `no errors were found` or a count. */
export function formatCheckReport(result: JobResultByKind['check']): string {
  const lines = result.problems.map((p) => `error: ${p.message}`);
  if (result.problemCount > result.problems.length) lines.push(`... and ${result.problemCount - result.problems.length} more problems`);
  const read = result.readDataSubset === undefined ? 'no data read' : `read ${result.read.length} snapshot(s), ${formatBytes(result.readBytes)} (subset ${result.readDataSubset})`;
  const incomplete = result.incomplete ? `, ${result.incomplete} incomplete snapshot folder(s) (prune removes them)` : '';
  lines.push(`checked ${result.snapshots} snapshot(s) in ${result.repository}${incomplete}; ${read}`);
  lines.push(result.ok ? 'no errors were found' : `${result.problemCount} problem(s) found`);
  return lines.join('\n');
}
