import { connect, type NatsConnection } from '@nats-io/transport-node';
import { errorMessage } from '../../shared/errors.js';
import { parseNatsServerUrls } from '../../shared/nats/nats-servers.js';
import { redactUrl } from '../../shared/redact-url.js';
import { DEFAULT_SUBJECT_PREFIX, jobEventFilter } from '../../shared/events/job-event-subject.js';
import type { JobEvent } from '../../shared/events/job-events.js';
import { formatBytes } from '../progress-bar.js';

export interface WatchArgs {
  /** NATS server URL(s), comma-separated. */
  natsUrl: string;
  /** Follow one job and exit when it ends; absent: follow every job until interrupted. */
  jobId?: string;
  /** One JSON document per line (the event payload as published) instead of readable lines. */
  json: boolean;
  /** Stops watching; the command then returns (see exit codes). */
  signal?: AbortSignal;
  /** Where events go. Default stdout. */
  out?: NodeJS.WritableStream;
  /** Where problems go (connection failures, undecodable messages). Default stderr. */
  err?: NodeJS.WritableStream;
  /** Subject prefix. Default `snapworker.jobs`. */
  subjectPrefix?: string;
  /**
   * With a job id: the job's stored end, when it already ended (from the queue). Asked once the
   * subscription is open, so a job ending in between is seen one way or the other.
   */
  ended?: () => Promise<JobEvent | undefined>;
}

/** Exit codes of `snapworker watch`. */
export const WATCH_EXIT = {
  /** The watched job completed, or watching every job was stopped by the signal. */
  ok: 0,
  /** The watched job failed, or NATS could not be reached. */
  failed: 1,
  /** Watching one job was stopped before the job ended. */
  interrupted: 130,
} as const;

/**
 * `snapworker watch [jobId] [--json]`: subscribes to `snapworker.jobs.<jobToken|*>.>` and prints
 * each event as it arrives. With a job id it returns after that job's `completed` (0) or
 * `failed` (1); a job that already ended is reported at once from `ended`. Never throws; returns
 * an exit code.
 */
export async function runWatch(args: WatchArgs): Promise<number> {
  const out = args.out ?? process.stdout;
  const err = args.err ?? process.stderr;
  const filter = jobEventFilter(args.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX, args.jobId);
  if (args.signal?.aborted) return args.jobId === undefined ? WATCH_EXIT.ok : WATCH_EXIT.interrupted;

  let connection: NatsConnection;
  try {
    connection = await connect({
      ...parseNatsServerUrls(args.natsUrl),
      name: 'snapworker-watch',
      timeout: 5000,
      maxReconnectAttempts: -1,
    });
  } catch (cause) {
    err.write(`snapworker watch: connect to nats ${redactUrl(args.natsUrl)}: ${redactUrl(errorMessage(cause))}\n`);
    return WATCH_EXIT.failed;
  }

  const subscription = connection.subscribe(filter);
  const stop = (): void => subscription.unsubscribe();
  args.signal?.addEventListener('abort', stop, { once: true });
  let exitCode: number = args.jobId === undefined ? WATCH_EXIT.ok : WATCH_EXIT.interrupted;
  try {
    const ended = args.jobId === undefined ? undefined : await args.ended?.().catch(() => undefined);
    if (ended) {
      out.write(args.json ? `${JSON.stringify(ended)}\n` : `${formatEvent(ended)}\n`);
      return ended.event === 'completed' ? WATCH_EXIT.ok : WATCH_EXIT.failed;
    }
    for await (const message of subscription) {
      let event: JobEvent;
      try {
        event = message.json<JobEvent>();
      } catch {
        err.write(`snapworker watch: ${message.subject}: payload is not JSON, skipped\n`);
        continue;
      }
      out.write(args.json ? `${JSON.stringify(event)}\n` : `${formatEvent(event)}\n`);
      if (args.jobId !== undefined && (event.event === 'completed' || event.event === 'failed')) {
        exitCode = event.event === 'completed' ? WATCH_EXIT.ok : WATCH_EXIT.failed;
        break;
      }
    }
  } finally {
    args.signal?.removeEventListener('abort', stop);
    await connection.close().catch(() => {});
  }
  return exitCode;
}

/** One readable line: `<time> <kind> <jobId> <event> <details>`. */
export function formatEvent(event: JobEvent): string {
  const head = `${event.at} ${event.kind} ${event.jobId} ${event.event}`;
  switch (event.event) {
    case 'started':
      return head;
    case 'progress': {
      const parts = [event.phase, formatBytes(event.bytesDone)];
      if (event.bytesTotal !== undefined && event.bytesTotal > 0) {
        parts[1] += ` / ${formatBytes(event.bytesTotal)} (${Math.floor((event.bytesDone / event.bytesTotal) * 100)}%)`;
      }
      parts.push(`${event.entriesDone} entries`, `${formatBytes(event.bytesPerSecond)}/s`);
      if (event.etaSeconds !== undefined) parts.push(`eta ${event.etaSeconds}s`);
      return `${head} ${parts.join(' ')}`;
    }
    case 'warning':
      return `${head} ${event.notice} ${event.path}: ${event.reason}`;
    case 'completed':
      return `${head}${describeResult(event.result)}`;
    case 'failed':
      return `${head}: ${event.error}`;
    default:
      // A newer producer's event: show what is known rather than nothing.
      return head;
  }
}

function describeResult(result: unknown): string {
  if (result !== null && typeof result === 'object' && 'id' in result && typeof result.id === 'string') return ` ${result.id}`;
  return '';
}
