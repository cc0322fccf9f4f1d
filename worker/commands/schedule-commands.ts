import type { ScheduleStatus } from '../../jobs/schedules.js';
import type { ScheduleDefinition } from '../../jobs/schemas.js';
import type { WorkerConfig } from '../../shared/config.js';
import { InvalidInputError } from '../../shared/errors.js';
import type { CliOptions } from './flags.js';
import { parseGroupBy, parsePrunePolicy, snapshotJobData } from './options.js';
import { closeQueue, connectQueue } from './queue-connection.js';

/**
 * `snapworker schedule add|ls|show|rm|pause|resume|run`: schedules on the configured queue
 * (jobs/schedules.ts). Returns the exit code.
 * @throws InvalidInputError for a bad definition (exit 2), NotFoundError for an unknown name.
 */
export async function runScheduleCommand(name: string, args: string[], options: CliOptions, config: WorkerConfig): Promise<number> {
  const definition = name === 'schedule add' ? definitionFrom(args, options) : undefined;
  const client = await connectQueue(config);
  try {
    const book = client.schedules;
    const out = (json: unknown, text: string) => process.stdout.write((options.json ? JSON.stringify(json, null, 2) : text) + '\n');
    switch (name) {
      case 'schedule add': {
        const stored = await book.put(definition!);
        const status = await book.get(stored.name);
        out(status, `schedule ${stored.name} ${stored.paused ? 'added, paused' : `added; next run ${formatTime(status.nextRunAt)}`}`);
        return 0;
      }
      case 'schedule ls': {
        const all = await book.list();
        out(all, all.length === 0 ? 'no schedules' : formatTable(all));
        return 0;
      }
      case 'schedule show':
        process.stdout.write(JSON.stringify(await book.get(args[0]!), null, 2) + '\n');
        return 0;
      case 'schedule rm':
        await book.remove(args[0]!);
        out({ removed: args[0] }, `schedule ${args[0]} removed; its snapshots stay`);
        return 0;
      case 'schedule pause':
        await book.pause(args[0]!);
        out({ paused: args[0] }, `schedule ${args[0]} paused`);
        return 0;
      case 'schedule resume': {
        await book.resume(args[0]!);
        const status = await book.get(args[0]!);
        out(status, `schedule ${args[0]} resumed; next run ${formatTime(status.nextRunAt)}`);
        return 0;
      }
      default: {
        const jobId = await book.runNow(args[0]!);
        out({ jobId }, jobId);
        return 0;
      }
    }
  } finally {
    await closeQueue(client);
  }
}

/** `schedule add NAME SOURCE... --cron|--every … [--keep POLICY]` as a definition (validated by the book). */
function definitionFrom(args: string[], options: CliOptions): ScheduleDefinition {
  const [scheduleName, ...sources] = args;
  if ((options.cron === undefined) === (options.every === undefined)) throw new InvalidInputError('schedule add: give exactly one of --cron and --every');
  const retention = {
    ...(options.keep ? parsePrunePolicy(options.keep) : {}),
    ...(options['group-by'] !== undefined ? { groupBy: parseGroupBy(options['group-by']) } : {}),
  };
  return {
    v: 1,
    name: scheduleName!,
    ...(options.cron !== undefined ? { cron: options.cron } : { every: options.every! }),
    ...(options.tz ? { tz: options.tz } : {}),
    job: snapshotJobData(sources, options),
    ...(Object.keys(retention).length > 0 ? { retention } : {}),
    ...(options.paused ? { paused: true } : {}),
  };
}

function formatTable(all: ScheduleStatus[]): string {
  const rows = all.map((s) => [
    s.definition.name,
    s.definition.cron ? `${s.definition.cron}${s.definition.tz ? ` (${s.definition.tz})` : ''}` : `every ${s.definition.every}`,
    s.definition.paused ? 'paused' : formatTime(s.nextRunAt),
    s.lastRun ? formatTime(Date.parse(s.lastRun.at)) : '-',
    s.lastRun ? (s.lastRun.result === 'succeeded' ? `ok ${s.lastRun.snapshotId ?? ''}` : `FAILED ${s.lastRun.error ?? ''}`) : '-',
  ]);
  const header = ['NAME', 'WHEN', 'NEXT RUN', 'LAST RUN', 'LAST RESULT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function formatTime(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
