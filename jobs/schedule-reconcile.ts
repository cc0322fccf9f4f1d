import { InvalidInputError } from '../shared/errors.js';
import type { ScheduleBook } from './schedules.js';
import { scheduleSchema, type ScheduleDefinition } from './schemas.js';
import { describeIssues } from './validate.js';

/** What a reconcile did, by schedule name. */
export interface ReconcileReport {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
  /** Desired schedules whose name is taken by one that `owner` does not manage: left alone. */
  conflicts: string[];
}

/**
 * Makes the schedules managed by `owner` (e.g. `helm`) match `desired`: adds the missing ones,
 * updates the changed ones, removes the managed ones no longer desired. Schedules added by hand or
 * by services (another or no `managedBy`) are never touched, even when a desired one has the same
 * name (reported as a conflict). Idempotent, so several workers may run it at once.
 *
 * @param desired definitions as read from the file (validated here; `v: 1` may be left out).
 * @throws InvalidInputError naming the entry and the field when any desired entry is invalid;
 *   then nothing is changed.
 */
export async function reconcileSchedules(book: ScheduleBook, desired: readonly unknown[], owner: string): Promise<ReconcileReport> {
  const wanted = new Map<string, ScheduleDefinition>();
  desired.forEach((entry, index) => {
    const candidate = { v: 1, ...(entry as object), managedBy: owner };
    const parsed = scheduleSchema.safeParse(candidate);
    const label = typeof (entry as { name?: unknown })?.name === 'string' ? (entry as { name: string }).name : `#${index + 1}`;
    if (!parsed.success) throw new InvalidInputError(`schedules: entry ${label}: ${describeIssues(parsed.error.issues, candidate).join('; ')}`);
    if (wanted.has(parsed.data.name)) throw new InvalidInputError(`schedules: entry ${label}: the name is used twice`);
    wanted.set(parsed.data.name, parsed.data);
  });

  const report: ReconcileReport = { added: [], changed: [], removed: [], unchanged: [], conflicts: [] };
  const existing = new Map((await book.list()).map((status) => [status.definition.name, status.definition]));
  for (const [name, definition] of wanted) {
    const current = existing.get(name);
    if (current && current.managedBy !== owner) report.conflicts.push(name);
    else if (!current) {
      await book.put(definition);
      report.added.push(name);
    } else if (!sameDefinition(current, definition)) {
      await book.put(definition);
      report.changed.push(name);
    } else report.unchanged.push(name);
  }
  for (const [name, current] of existing) {
    if (current.managedBy === owner && !wanted.has(name)) {
      await book.remove(name);
      report.removed.push(name);
    }
  }
  return report;
}

function sameDefinition(a: ScheduleDefinition, b: ScheduleDefinition): boolean {
  return canonical(a) === canonical(b);
}

/** JSON with sorted keys, so key order in the file never counts as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  );
}
