import { createHash, randomInt } from 'node:crypto';
import { InvalidInputError } from '../errors.js';

/**
 * Which snapshots `check` reads whole, with restic's `--read-data-subset` semantics applied to
 * snapshots instead of packs: `n%` a random n percent of them (at least one when n > 0), `n/t`
 * the n-th of t fixed groups (t at most 256), so running 1/t … t/t over t days reads everything.
 */
export type DataSubset = { percent: number } | { group: number; of: number };

/**
 * Parses `5%`, `2.5%`, `100%` or `1/10`.
 * @throws InvalidInputError naming the value when it is neither form or out of range.
 */
export function parseDataSubset(text: string): DataSubset {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    if (value > 0 && value <= 100) return { percent: value };
  }
  const group = /^(\d+)\/(\d+)$/.exec(text);
  if (group) {
    const [n, t] = [Number(group[1]), Number(group[2])];
    if (t >= 1 && t <= 256 && n >= 1 && n <= t) return { group: n, of: t };
  }
  throw new InvalidInputError(`--read-data-subset ${text}: expected a share like 5% (above 0, at most 100) or n/t like 1/10 (1 <= n <= t <= 256)`);
}

/** The subset as typed: `5%` or `1/10`. */
export function describeDataSubset(subset: DataSubset): string {
  return 'percent' in subset ? `${subset.percent}%` : `${subset.group}/${subset.of}`;
}

/**
 * The ids of `ids` that `subset` selects, in their order. A group is fixed by the first byte of
 * SHA-256(id) modulo t (restic uses a pack id's first byte; a snapshot id's hex part is too short
 * to spread evenly over 256 groups). A percentage takes floor(n × p / 100), at least one, at random.
 */
export function selectSubset(ids: readonly string[], subset: DataSubset): string[] {
  if ('group' in subset) return ids.filter((id) => createHash('sha256').update(id).digest()[0]! % subset.of === subset.group - 1);
  if (ids.length === 0) return [];
  const count = Math.max(1, Math.floor((ids.length * subset.percent) / 100));
  // A partial Fisher–Yates shuffle of the positions: the first `count` are a uniform sample.
  const positions = ids.map((_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + randomInt(positions.length - i);
    [positions[i], positions[j]] = [positions[j]!, positions[i]!];
  }
  return positions
    .slice(0, count)
    .sort((a, b) => a - b)
    .map((i) => ids[i]!);
}
