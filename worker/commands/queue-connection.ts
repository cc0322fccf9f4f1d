import { SnapworkerClient } from '../../jobs/client.js';
import type { WorkerConfig } from '../../shared/config.js';
import { errorMessage, SnapworkerError } from '../../shared/errors.js';
import { settledWithin } from '../../shared/lifecycle/settle-within.js';
import { redactUrl } from '../../shared/redact-url.js';

/** How long the command line waits for Redis to answer before it gives up. */
export const REDIS_CONNECT_TIMEOUT_MS = 5000;

/**
 * A producer client for the configured queue whose Redis has answered. ioredis would otherwise
 * retry an unreachable server forever, silently, and the command would hang.
 * @throws SnapworkerError naming the Redis URL (credentials masked) and the last connection error.
 */
export async function connectQueue(config: WorkerConfig, timeoutMs = REDIS_CONNECT_TIMEOUT_MS): Promise<SnapworkerClient> {
  const client = new SnapworkerClient({ connection: config.redisUrl, queueName: config.queueName, prefix: config.prefix });
  let lastError: unknown;
  client.queue.on('error', (err) => {
    lastError = err;
  });
  let failure: unknown;
  const ready = client.queue.waitUntilReady().catch((err: unknown) => {
    failure = err;
  });
  if ((await settledWithin(ready, timeoutMs)) && failure === undefined) return client;
  await closeQueue(client);
  const why = errorMessage(failure ?? lastError ?? 'no answer');
  throw new SnapworkerError(`redis ${redactUrl(config.redisUrl)}: not reachable within ${timeoutMs / 1000}s: ${why}`, { cause: failure ?? lastError });
}

/** Closes the client, dropping its connections if Redis does not answer; never throws. */
export async function closeQueue(client: SnapworkerClient): Promise<void> {
  const closing = client.close().catch(() => {});
  if (!(await settledWithin(closing, 2000))) await client.queue.disconnect().catch(() => {});
}
