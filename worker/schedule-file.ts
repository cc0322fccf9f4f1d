import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { reconcileSchedules } from '../jobs/schedule-reconcile.js';
import type { ScheduleBook } from '../jobs/schedules.js';
import { errorMessage, InvalidInputError } from '../shared/errors.js';
import type { Logger } from '../shared/logging.js';

/** The owner the chart's schedules are recorded with. */
export const CHART_OWNER = 'helm';

export interface ScheduleFileOptions {
  file: string;
  book: ScheduleBook;
  logger: Logger;
  /**
   * How often the file is read for changes. Default 10 000 ms. Polling rather than fs.watch: a
   * mounted ConfigMap changes by swapping a symlinked directory, which watchers miss.
   */
  intervalMs?: number;
}

export interface ScheduleFileReconciler {
  /** Stops polling and waits for a reconcile in flight. Never throws. */
  stop(): Promise<void>;
}

/**
 * Reconciles the schedules in `file` (a JSON array of schedule definitions) now and whenever its
 * content changes. A missing, unparsable or invalid file is logged in one line and changes
 * nothing (the schedules stay as they were); the worker keeps running and tries again on the next
 * change.
 */
export async function startScheduleFileReconciler(options: ScheduleFileOptions): Promise<ScheduleFileReconciler> {
  const { file, book, logger } = options;
  let lastDigest: string | undefined;
  let inFlight: Promise<void> | undefined;
  let stopped = false;

  const check = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      logger.error({ file, err: errorMessage(err) }, `schedules file ${file}: cannot read it; schedules unchanged`);
      return;
    }
    const digest = createHash('sha256').update(text).digest('hex');
    if (digest === lastDigest) return;
    try {
      const report = await reconcileSchedules(book, parseScheduleFile(text), CHART_OWNER);
      lastDigest = digest;
      logger.info({ file, ...report }, 'schedules reconciled');
      if (report.conflicts.length > 0) {
        logger.warn({ file, conflicts: report.conflicts }, 'schedules with these names exist and are not managed by the chart; left alone');
      }
    } catch (err) {
      // Bad input is not retried until the file changes; anything else (Redis) on the next poll.
      if (err instanceof InvalidInputError) lastDigest = digest;
      logger.error({ file, err: errorMessage(err) }, `schedules file ${file}: ${errorMessage(err)}; schedules unchanged`);
    }
  };
  const tick = (): void => {
    if (stopped || inFlight) return;
    inFlight = check().finally(() => {
      inFlight = undefined;
    });
  };

  tick();
  await inFlight;
  const timer = setInterval(tick, options.intervalMs ?? 10_000);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}

/**
 * The schedules of a file's text: a JSON array (the chart renders `.Values.schedules | toJson`).
 * @throws InvalidInputError when it is not JSON or not an array (the caller names the file).
 */
export function parseScheduleFile(text: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`not JSON: ${errorMessage(err)}`, { cause: err });
  }
  if (!Array.isArray(parsed)) throw new InvalidInputError('not a JSON array of schedules');
  return parsed;
}

