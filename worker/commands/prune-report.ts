import type { GarbageCollectionResult, PruneJobResult } from '../../jobs/results.js';
import { formatBytes } from '../progress-bar.js';

/**
 * The text of a prune result, like `restic forget --dry-run`: the policy, then per group the
 * snapshots kept with their reasons and the snapshots removed, then the incomplete ones.
 */
export function formatPruneReport(result: PruneJobResult): string {
  const verb = result.dryRun ? 'would remove' : 'removed';
  const lines = [`Applying policy: ${result.policy}`];
  const groups = new Map<string, PruneJobResult['snapshots']>();
  for (const decision of result.snapshots ?? []) {
    const group = groups.get(decision.group) ?? [];
    group.push(decision);
    groups.set(decision.group, group);
  }
  for (const [group, decisions] of groups) {
    lines.push('', `snapshots for ${group}:`);
    const keep = decisions.filter((d) => d.action === 'keep');
    const remove = decisions.filter((d) => d.action === 'remove');
    lines.push(`keep ${keep.length} snapshots:`);
    for (const d of keep) lines.push(`  ${d.id}  ${d.createdAt}  ${d.reasons.join(', ')}`);
    lines.push(`${result.dryRun ? 'would remove' : 'remove'} ${remove.length} snapshots:`);
    for (const d of remove) lines.push(`  ${d.id}  ${d.createdAt}`);
  }
  if (result.removedIncomplete.length > 0) {
    lines.push('', `${verb} ${result.removedIncomplete.length} incomplete snapshot(s): ${result.removedIncomplete.join(', ')}`);
  }
  lines.push('', `${verb} ${result.removed.length} snapshot(s) and ${result.removedIncomplete.length} incomplete one(s); kept ${result.kept.length}`);
  if (result.garbage) lines.push(formatGarbage(result.garbage, result.dryRun));
  return lines.join('\n');
}

/**
 * The garbage collection in one line, like restic prune's summary: packs deleted and the bytes
 * freed, packs repacked, packs marked (deleted by a collection after the grace window).
 */
function formatGarbage(garbage: GarbageCollectionResult, dryRun: boolean): string {
  const debris = garbage.debrisDeleted > 0 ? ` (${garbage.debrisDeleted} left by dead writers)` : '';
  const parts = [
    `${dryRun ? 'would delete' : 'deleted'} ${garbage.packsDeleted} pack(s)${debris}, ${dryRun ? 'freeing' : 'freed'} ${formatBytes(garbage.bytesFreed)}`,
    `${dryRun ? 'would repack' : 'repacked'} ${garbage.packsRepacked} pack(s) (${garbage.blobsRepacked} blob(s) copied)`,
    `${dryRun ? 'would mark' : 'marked'} ${garbage.packsMarked} unused pack(s) for deletion after the grace window`,
  ];
  if (garbage.packsRevived > 0) parts.push(`${dryRun ? 'would revive' : 'revived'} ${garbage.packsRevived} marked pack(s) a snapshot still needs`);
  return `garbage collection: ${parts.join('; ')}`;
}
