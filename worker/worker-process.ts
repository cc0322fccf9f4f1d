import type { WorkerConfig } from '../shared/config.js';
import { AbortedError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/logging.js';
import { startWorker } from './run-worker.js';

/** Beyond the grace and the bounded cleanup, the last resort before the process exits anyway. */
const HARD_STOP_EXTRA_MS = 15_000;

/**
 * `snapworker worker`: runs a worker until SIGTERM or SIGINT, then stops it within the shutdown
 * grace plus a few seconds, whatever Redis does. Signals are honoured from the first moment,
 * also while the worker still waits for Redis. Returns the exit code: 0 after a signal, 1 when
 * the worker could not start (the reason in one log line).
 */
export async function runWorkerProcess(config: WorkerConfig, logger: Logger): Promise<number> {
  // A promise nobody observed is a bug to fix, not a reason to drop every job this worker runs:
  // log it loudly and keep serving (each job's own outcome is reported through its promise).
  process.on('unhandledRejection', (reason) => logger.error({ err: errorMessage(reason) }, 'unhandled promise rejection'));
  const stopping = new AbortController();
  const onSignal = (signal: string) => {
    if (stopping.signal.aborted) return;
    logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down');
    // Whatever hangs below, the process ends.
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownGraceSeconds * 1000 + HARD_STOP_EXTRA_MS).unref();
    stopping.abort(signal);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  let worker;
  try {
    worker = await startWorker(config, logger, stopping.signal);
  } catch (err) {
    if (err instanceof AbortedError && stopping.signal.aborted) {
      logger.info('stopped before the worker had started');
      return 0;
    }
    throw err; // the command line prints it as its one line and exits 1
  }
  if (!stopping.signal.aborted) await new Promise((resolve) => stopping.signal.addEventListener('abort', resolve, { once: true }));
  await worker.stop();
  logger.info('worker stopped');
  return 0;
}
