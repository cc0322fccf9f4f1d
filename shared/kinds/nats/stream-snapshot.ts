import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { InvalidInputError, SnapworkerError } from '../../errors.js';
import { abortReason } from './nats-connection.js';
import { JS_API_PREFIX, DEFAULT_API_TIMEOUT_MS, jsApiRequest, type StreamConfig, type StreamState } from './jetstream-api.js';
import type { StreamBackupMetadata } from './stream-backup.js';
import { TransferMeter, type TransferProgress } from './transfer-meter.js';

export interface StreamSnapshotOptions {
  /** Include consumers and their state (delivered, ack floor). Default true. */
  includeConsumers?: boolean;
  /** Ask the server to check every message before the snapshot (`jsck`). Default false. */
  checkMessages?: boolean;
  /** Bytes per chunk the server sends. Default 128 KiB (jsm.go's default). */
  chunkSize?: number;
  /**
   * Unacknowledged bytes the server may have in flight (`window_size`). Sent only when set:
   * servers that do not know it (2.9) ignore it and use their own window (16 MiB).
   */
  windowSize?: number;
  /** Wait for the snapshot request's answer. Default 10 s, or 10 min with `checkMessages`. */
  requestTimeoutMs?: number;
  /** Fail when no chunk arrives for this long. Default 30 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called after each chunk was acknowledged and written. */
  onChunk?: (progress: TransferProgress, chunkBytes: number) => void;
}

export interface StreamSnapshotResult extends StreamBackupMetadata {
  /** Snapshot bytes written (the size of `stream.tar.s2`). */
  bytes: number;
  chunks: number;
}

const DEFAULT_CHUNK_SIZE = 128 * 1024;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_CHECK_TIMEOUT_MS = 10 * 60_000;
const STATUS_NO_CONTENT = 204;
const STATUS_IDLE_HEARTBEAT = 100;

/**
 * Streams a server-side snapshot of `stream` (the s2-compressed tar the server builds, the
 * bytes of `stream.tar.s2`) into `out`, as jsm.go does: subscribe a private inbox, request
 * `$JS.API.STREAM.SNAPSHOT.<stream>` with it as the deliver subject, acknowledge every chunk as it
 * arrives (the server paces itself on these acks) and then write it, until the empty end message
 * (status 204 on newer servers, no status at all on 2.9).
 *
 * Memory is bounded by the server's window: chunks are acknowledged one at a time as the loop
 * takes them, after the previous one was written. `out` is not ended; the caller owns it.
 *
 * @throws InvalidInputError for a memory-storage stream (the server cannot snapshot those);
 *   NotFoundError when the stream does not exist; JetStreamApiError or SnapworkerError with the
 *   server's words for an error status; SnapworkerError on idle timeout or when the connection
 *   closes before the end; the signal's reason when aborted; whatever `out` fails with.
 */
export async function snapshotStream(
  nc: NatsConnection,
  stream: string,
  out: Writable,
  options: StreamSnapshotOptions = {},
): Promise<StreamSnapshotResult> {
  const operation = `stream snapshot ${stream}`;
  const checkMessages = options.checkMessages ?? false;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const requestTimeoutMs = options.requestTimeoutMs ?? (checkMessages ? DEFAULT_CHECK_TIMEOUT_MS : DEFAULT_API_TIMEOUT_MS);

  const inbox = createInbox();
  // Subscribed before the request goes out, so not a single chunk can miss us.
  const sub = nc.subscribe(inbox);
  let failure: Error | undefined;
  let settled = false;
  const fail = (err: Error) => {
    if (settled) return;
    failure ??= err;
    sub.unsubscribe();
  };
  const onAbort = () => fail(abortReason(options.signal!));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  void nc.closed().then((err) =>
    fail(new SnapworkerError(`nats: ${operation}: connection closed before the snapshot ended`, { cause: err })),
  );
  let idleTimer: NodeJS.Timeout | undefined;

  try {
    if (options.signal?.aborted) throw abortReason(options.signal);
    const request: Record<string, unknown> = {
      deliver_subject: inbox,
      no_consumers: !(options.includeConsumers ?? true),
      chunk_size: chunkSize,
      jsck: checkMessages,
    };
    if (options.windowSize !== undefined) request.window_size = options.windowSize;
    const response = await jsApiRequest<{ config: StreamConfig; state: StreamState }>(
      nc,
      `${JS_API_PREFIX}.STREAM.SNAPSHOT.${stream}`,
      request,
      operation,
      requestTimeoutMs,
    );
    if (response.config.storage === 'memory') throw memoryStreamError(stream);

    const meter = new TransferMeter(response.state.bytes);
    idleTimer = setTimeout(
      () => fail(new SnapworkerError(`nats: ${operation}: no data from the server for ${idleTimeoutMs} ms`)),
      idleTimeoutMs,
    );
    let ended = false;
    for await (const msg of sub) {
      idleTimer.refresh();
      const status = msg.headers?.code ?? 0;
      if (status === STATUS_IDLE_HEARTBEAT) continue;
      if (status >= 300 && status !== STATUS_NO_CONTENT) {
        throw new SnapworkerError(`nats: ${operation}: server reported ${status} ${msg.headers?.description ?? ''}`.trimEnd());
      }
      if (msg.data.length === 0) {
        ended = true;
        break;
      }
      acknowledge(msg);
      await writeChunk(out, msg.data);
      meter.add(msg.data.length);
      options.onChunk?.(meter.progress(), msg.data.length);
    }
    if (failure !== undefined) throw failure;
    if (!ended) {
      // The subscription closes with the connection, sometimes before `closed()` has told us.
      const why = nc.isClosed() ? 'connection closed before the snapshot ended' : 'subscription ended before the snapshot did';
      throw new SnapworkerError(`nats: ${operation}: ${why}`);
    }
    const { bytes, chunks } = meter.progress();
    return { config: response.config, state: response.state, bytes, chunks };
  } catch (err) {
    // The loop may end on the failure's unsubscribe and surface a secondary error; prefer the cause.
    throw failure ?? err;
  } finally {
    settled = true;
    clearTimeout(idleTimer);
    options.signal?.removeEventListener('abort', onAbort);
    if (!sub.isClosed()) sub.unsubscribe();
  }
}

/** The error jsm.go gives for memory streams, as an InvalidInputError (retrying cannot help). */
export function memoryStreamError(stream: string): InvalidInputError {
  return new InvalidInputError(`nats: stream ${stream} uses memory storage; memory streams do not support snapshots`);
}

function acknowledge(msg: Msg): void {
  // The server attaches a reply subject to each data chunk; answering it opens its window.
  if (msg.reply) msg.respond();
}

async function writeChunk(out: Writable, data: Uint8Array): Promise<void> {
  if (out.write(data)) return;
  // `once` rejects when the stream emits 'error' instead.
  await once(out, 'drain');
}
