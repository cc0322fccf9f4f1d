import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { InvalidInputError, SnapworkerError, errorMessage, throwIfAborted } from '../../errors.js';
import { JS_API_PREFIX, DEFAULT_API_TIMEOUT_MS, apiError, jsApiRequest, parseJson, type StreamInfo } from './jetstream-api.js';
import type { StreamBackupMetadata } from './stream-backup.js';
import { memoryStreamError } from './stream-snapshot.js';
import { TransferMeter, type TransferProgress } from './transfer-meter.js';

export interface StreamRestoreOptions {
  /**
   * Bytes per chunk sent. Default 512 KiB, or the server's max_payload when that is smaller
   * (bench/nats.ts: larger chunks restore faster than jsm.go's 64 KiB on a local server).
   */
  chunkSize?: number;
  /** Chunks sent before waiting for the oldest acknowledgement. Default 4. */
  maxChunksInFlight?: number;
  /** Wait for the restore request's answer. Default 10 s. */
  requestTimeoutMs?: number;
  /** Wait for each chunk's acknowledgement; a stalled server fails the restore after it. Default 30 s. */
  chunkTimeoutMs?: number;
  /**
   * Wait for the final answer, while the server unpacks the snapshot and rebuilds the stream.
   * Default 1 h, as jsm.go: the server's work grows with the stream.
   */
  finishTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called after each chunk was acknowledged. */
  onChunk?: (progress: TransferProgress, chunkBytes: number) => void;
}

const DEFAULT_CHUNK_SIZE = 512 * 1024;
const DEFAULT_CHUNKS_IN_FLIGHT = 4;
const DEFAULT_CHUNK_TIMEOUT_MS = 30_000;
const DEFAULT_FINISH_TIMEOUT_MS = 60 * 60_000;
const STREAM_CREATE_RESPONSE_TYPE = 'io.nats.jetstream.api.v1.stream_create_response';

/**
 * Recreates a stream from its snapshot, as jsm.go does: `$JS.API.STREAM.RESTORE.<name>` with
 * `{config, state}` answers with a subject; the snapshot bytes go there as requests, each one
 * acknowledged by the server (at most `maxChunksInFlight` unacknowledged); a final empty request
 * makes the server rebuild the stream and answer with a `stream_create_response`.
 *
 * The stream must not exist (the server refuses); the caller decides about replacing.
 *
 * @param data the bytes of `stream.tar.s2`; consumed fully unless the restore fails.
 * @returns the restored stream's info from the final answer.
 * @throws InvalidInputError for a memory-storage config; JetStreamApiError with the server's words
 *   when it refuses the restore or the final rebuild; SnapworkerError when a chunk is rejected, an
 *   acknowledgement does not come within `chunkTimeoutMs` (a stalled server) or the final answer
 *   is not a stream_create_response; the signal's reason when aborted.
 */
export async function restoreStream(
  nc: NatsConnection,
  metadata: StreamBackupMetadata,
  data: AsyncIterable<Uint8Array>,
  options: StreamRestoreOptions = {},
): Promise<StreamInfo> {
  const stream = metadata.config.name;
  const operation = `stream restore ${stream}`;
  if (metadata.config.storage === 'memory') throw memoryStreamError(stream);
  const chunkSize = options.chunkSize ?? Math.min(DEFAULT_CHUNK_SIZE, nc.info?.max_payload ?? DEFAULT_CHUNK_SIZE);
  const maxInFlight = Math.max(1, options.maxChunksInFlight ?? DEFAULT_CHUNKS_IN_FLIGHT);
  const chunkTimeoutMs = options.chunkTimeoutMs ?? DEFAULT_CHUNK_TIMEOUT_MS;
  throwIfAborted(options.signal);

  const { deliver_subject: deliverSubject } = await jsApiRequest<{ deliver_subject?: string }>(
    nc,
    `${JS_API_PREFIX}.STREAM.RESTORE.${stream}`,
    { config: metadata.config, state: metadata.state },
    operation,
    options.requestTimeoutMs ?? DEFAULT_API_TIMEOUT_MS,
  );
  if (typeof deliverSubject !== 'string' || deliverSubject === '') {
    throw new SnapworkerError(`nats: ${operation}: the server gave no subject to send the snapshot to`);
  }

  const meter = new TransferMeter(undefined);
  const inFlight: Promise<void>[] = [];
  const sendChunk = async (chunk: Uint8Array): Promise<void> => {
    let reply: Msg;
    try {
      reply = await nc.request(deliverSubject, chunk, { timeout: chunkTimeoutMs });
    } catch (err) {
      throw new SnapworkerError(
        `nats: ${operation}: chunk ${meter.progress().chunks + 1} not acknowledged: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    checkChunkAck(reply, operation);
    meter.add(chunk.length);
    options.onChunk?.(meter.progress(), chunk.length);
  };
  try {
    for await (const chunk of rechunk(data, chunkSize)) {
      throwIfAborted(options.signal);
      const sent = sendChunk(chunk);
      sent.catch(() => {}); // observed below, in order; avoids an unhandled rejection meanwhile
      inFlight.push(sent);
      if (inFlight.length >= maxInFlight) await inFlight.shift();
    }
    while (inFlight.length > 0) await inFlight.shift();
  } catch (err) {
    throwIfAborted(options.signal);
    throw err;
  }

  throwIfAborted(options.signal);
  let final: Msg;
  try {
    final = await nc.request(deliverSubject, new Uint8Array(0), {
      timeout: options.finishTimeoutMs ?? DEFAULT_FINISH_TIMEOUT_MS,
    });
  } catch (err) {
    throwIfAborted(options.signal);
    throw new SnapworkerError(`nats: ${operation}: no answer after the last chunk: ${errorMessage(err)}`, { cause: err });
  }
  const response = parseJson(final.data, operation);
  if (response.type !== STREAM_CREATE_RESPONSE_TYPE) {
    throw new SnapworkerError(
      `nats: ${operation}: expected a ${STREAM_CREATE_RESPONSE_TYPE} after the last chunk, got ${JSON.stringify(response.type)}`,
    );
  }
  if (response.error !== undefined) throw apiError(operation, response.error as Record<string, never>);
  return response as unknown as StreamInfo;
}

/** Fails on a chunk acknowledgement that carries an error (`-ERR …`, JSON error or error status). */
function checkChunkAck(reply: Msg, operation: string): void {
  const status = reply.headers?.code ?? 0;
  if (status >= 300) {
    throw new SnapworkerError(`nats: ${operation}: chunk rejected: ${status} ${reply.headers?.description ?? ''}`.trimEnd());
  }
  if (reply.data.length === 0) return;
  const text = new TextDecoder().decode(reply.data);
  throw new SnapworkerError(`nats: ${operation}: chunk rejected: ${text.slice(0, 300)}`);
}

/** Re-slices a byte stream into pieces of exactly `size` bytes (the last one shorter). */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  if (!Number.isInteger(size) || size <= 0) throw new InvalidInputError(`nats: chunk size must be a positive integer, got ${size}`);
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.length) {
      const take = Math.min(size - pendingBytes, piece.length - offset);
      pending.push(piece.subarray(offset, offset + take));
      pendingBytes += take;
      offset += take;
      if (pendingBytes === size) {
        yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
}
