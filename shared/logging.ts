import { pino, type Logger } from 'pino';
import { redactUrl } from './redact-url.js';

/**
 * Fields that may hold a URL (or a message quoting one) with credentials: pino passes them through
 * `redactUrl` before a line is written. Messages written by our own code are redacted where they
 * are built; this and the `err` serializer catch URLs inside errors from libraries (ioredis,
 * nats, the AWS SDK).
 */
const URL_FIELDS = ['url', 'uri', 'natsUrl', 'redisUrl', 'repository', 'server', 'error'];

/**
 * JSON logs on stderr (stdout stays free for `--json` results). Job logs are children carrying
 * `jobId` and `kind`.
 */
export function createLogger(level: string, name = 'snapworker'): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      redact: { paths: URL_FIELDS, censor: redactValue },
      serializers: { err: serializeError },
    },
    pino.destination(2),
  );
}

function redactValue(value: unknown): unknown {
  return typeof value === 'string' ? redactUrl(value) : value;
}

/** pino's error serializer, with URLs in the message and stack redacted; a string `err` too. */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return redactValue(err);
  const serialized = pino.stdSerializers.err(err);
  return { ...serialized, message: redactUrl(serialized.message), stack: redactUrl(serialized.stack) };
}

export type { Logger };
