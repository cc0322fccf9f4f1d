import type { JobDataByKind, RetentionFields } from '../../jobs/schemas.js';
import { LABEL_KEY } from '../../jobs/schemas.js';
import type { CliOptions } from './flags.js';
import { InvalidInputError } from '../../shared/errors.js';

/** The data of a snapshot job of `sources` as the `snapshot` and `schedule add` flags give it. */
export function snapshotJobData(sources: readonly string[], options: CliOptions): JobDataByKind['snapshot'] {
  return {
    v: 1,
    source: sources.length === 1 ? sources[0]! : [...sources],
    repo: options.repo,
    name: options.name,
    labels: parseLabels(options.label),
    compression: options.compression as 'zstd' | 'gzip' | 'none' | undefined,
    ...(options.parent !== undefined ? { parent: options.parent } : {}),
    ...(options.force ? { force: true as const } : {}),
    ...options.kindFields,
  };
}

/** `--label k=v` options as a record. */
export function parseLabels(labels: readonly string[]): Record<string, string> | undefined {
  if (labels.length === 0) return undefined;
  const result: Record<string, string> = {};
  for (const label of labels) {
    const eq = label.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--label ${label}: expected key=value`);
    if (!LABEL_KEY.test(label.slice(0, eq))) {
      throw new InvalidInputError(`--label ${label}: the key ${JSON.stringify(label.slice(0, eq))} may hold letters, digits and _ . / - (starting with a letter or digit, at most 63); the value may hold anything`);
    }
    result[label.slice(0, eq)] = label.slice(eq + 1);
  }
  return result;
}

/**
 * A prune policy such as `keep-daily=7,keep-weekly=4,keep-within=30d,keep-tag=app=shop` as job
 * fields: restic's keep rules, counts as N or `unlimited`, durations like `7d` or `1y2mo`, and
 * `keep-tag=k=v` once per label to keep (several entries: any of them keeps).
 * @throws InvalidInputError for an unknown rule or a malformed value.
 */
export function parsePrunePolicy(policy: string): RetentionFields {
  const result: Record<string, unknown> = {};
  for (const rule of policy.split(',').filter(Boolean)) {
    const eq = rule.indexOf('=');
    const [key, value] = eq > 0 ? [rule.slice(0, eq), rule.slice(eq + 1)] : [rule, ''];
    const field = key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (/^keep(Last|Hourly|Daily|Weekly|Monthly|Yearly)$/.test(field) && /^(\d+|unlimited)$/.test(value)) {
      result[field] = value === 'unlimited' ? value : Number(value);
    } else if (/^keepWithin(Hourly|Daily|Weekly|Monthly|Yearly)?$/.test(field) && value) result[field] = value;
    else if (field === 'keepTag' && value.indexOf('=') > 0) result.keepTag = [...((result.keepTag as string[]) ?? []), value];
    else {
      throw new InvalidInputError(
        `prune policy: "${rule}" is not keep-{last,hourly,daily,weekly,monthly,yearly}=N, keep-within[-{hourly,daily,weekly,monthly,yearly}]=DURATION or keep-tag=k=v`,
      );
    }
  }
  return result as RetentionFields;
}

/** `--group-by source,labels` as the job field; an empty value groups everything together. */
export function parseGroupBy(text: string | undefined): RetentionFields['groupBy'] {
  if (text === undefined) return undefined;
  return text.split(',').filter(Boolean) as RetentionFields['groupBy'];
}

/** `1h`, `30m`, `900` (seconds) → seconds. */
export function parseExpiry(text: string | undefined, fallbackSeconds: number): number {
  if (text === undefined) return fallbackSeconds;
  const match = /^(\d+)(s|m|h|d)?$/.exec(text);
  if (!match) throw new InvalidInputError(`--expires ${text}: expected a duration like 900, 15m, 1h or 7d`);
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}
