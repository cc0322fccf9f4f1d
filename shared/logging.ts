import { pino, type Logger } from 'pino';

/**
 * JSON logs on stderr (stdout stays free for `--json` results). Job logs are children carrying
 * `jobId` and `kind`.
 */
export function createLogger(level: string, name = 'snapworker'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}

export type { Logger };
