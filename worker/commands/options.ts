import { InvalidInputError } from '../../shared/errors.js';

/** `--label k=v` options as a record. */
export function parseLabels(labels: readonly string[]): Record<string, string> | undefined {
  if (labels.length === 0) return undefined;
  const result: Record<string, string> = {};
  for (const label of labels) {
    const eq = label.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--label ${label}: expected key=value`);
    result[label.slice(0, eq)] = label.slice(eq + 1);
  }
  return result;
}

/**
 * A prune policy such as `keep-last=7,keep-within=30d` as job fields.
 * @throws InvalidInputError for an unknown rule.
 */
export function parsePrunePolicy(policy: string): { keepLast?: number; keepWithin?: string } {
  const result: { keepLast?: number; keepWithin?: string } = {};
  for (const rule of policy.split(',').filter(Boolean)) {
    const [key, value] = rule.split('=', 2);
    if (key === 'keep-last' && value && /^\d+$/.test(value)) result.keepLast = Number(value);
    else if (key === 'keep-within' && value) result.keepWithin = value;
    else throw new InvalidInputError(`prune policy: "${rule}" is not keep-last=N or keep-within=DURATION`);
  }
  return result;
}

/** `1h`, `30m`, `900` (seconds) → seconds. */
export function parseExpiry(text: string | undefined, fallbackSeconds: number): number {
  if (text === undefined) return fallbackSeconds;
  const match = /^(\d+)(s|m|h|d)?$/.exec(text);
  if (!match) throw new InvalidInputError(`--expires ${text}: expected a duration like 900, 15m, 1h or 7d`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}
