import type { NatsConnection } from '@nats-io/transport-node';
import { NotFoundError, SnapworkerError, errorMessage } from '../../errors.js';

/** The JetStream API's prefix; a `$JS.API` subject per operation follows it. */
export const JS_API_PREFIX = '$JS.API';

/** Default wait for an ordinary JetStream API response. */
export const DEFAULT_API_TIMEOUT_MS = 10_000;

/**
 * A stream's configuration as the server reports it. Only the fields snapworker reads are typed;
 * everything else is carried through unchanged so a restore recreates the stream exactly.
 */
export interface StreamConfig {
  name: string;
  storage?: 'file' | 'memory' | string;
  subjects?: string[];
  [field: string]: unknown;
}

/** A stream's state as the server reports it (`$JS.API.STREAM.INFO`, snapshot response). */
export interface StreamState {
  messages: number;
  bytes: number;
  first_seq: number;
  last_seq: number;
  consumer_count: number;
  [field: string]: unknown;
}

export interface StreamInfo {
  config: StreamConfig;
  state: StreamState;
  [field: string]: unknown;
}

/** The error object every JetStream API response may carry. */
interface ApiErrorBody {
  code?: number;
  err_code?: number;
  description?: string;
}

/** The JetStream API rejected a request; `code` and `errCode` are the server's. */
export class JetStreamApiError extends SnapworkerError {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly errCode: number | undefined,
  ) {
    super(message);
    this.name = 'JetStreamApiError';
  }
}

/** The server's `err_code` for "stream not found". */
const STREAM_NOT_FOUND_ERR_CODE = 10059;

/**
 * Sends one JSON request to a `$JS.API` subject and returns the parsed response.
 *
 * @param operation named in errors, e.g. `stream info ORDERS`.
 * @throws NotFoundError when the server answers 404; JetStreamApiError for any other error the
 *   server reports (with its description); SnapworkerError when no answer comes (timeout, no
 *   JetStream on the server, connection closed) or the answer is not JSON.
 */
export async function jsApiRequest<T>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  operation: string,
  timeoutMs = DEFAULT_API_TIMEOUT_MS,
): Promise<T> {
  const payload = body === undefined ? '' : JSON.stringify(body);
  let reply;
  try {
    reply = await nc.request(subject, payload, { timeout: timeoutMs });
  } catch (err) {
    throw new SnapworkerError(`nats: ${operation}: ${errorMessage(err)}`, { cause: err });
  }
  const response = parseJson(reply.data, operation) as T & { error?: ApiErrorBody };
  if (response.error !== undefined) throw apiError(operation, response.error);
  return response;
}

/** Stream info, or `undefined` when the stream does not exist. */
export async function lookupStream(
  nc: NatsConnection,
  stream: string,
  timeoutMs = DEFAULT_API_TIMEOUT_MS,
): Promise<StreamInfo | undefined> {
  try {
    return await jsApiRequest<StreamInfo>(nc, `${JS_API_PREFIX}.STREAM.INFO.${stream}`, undefined, `stream info ${stream}`, timeoutMs);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** Deletes a stream with all its messages and consumers. */
export async function deleteStream(nc: NatsConnection, stream: string, timeoutMs = DEFAULT_API_TIMEOUT_MS): Promise<void> {
  await jsApiRequest(nc, `${JS_API_PREFIX}.STREAM.DELETE.${stream}`, undefined, `stream delete ${stream}`, timeoutMs);
}

/** Builds the error for an `error` object in an API response, 404 mapped to NotFoundError. */
export function apiError(operation: string, error: ApiErrorBody): SnapworkerError {
  const description = error.description ?? 'unknown error';
  const message = `nats: ${operation}: ${description} (code ${error.code ?? '?'}, err_code ${error.err_code ?? '?'})`;
  if (error.code === 404 || error.err_code === STREAM_NOT_FOUND_ERR_CODE) return new NotFoundError(message);
  return new JetStreamApiError(message, error.code, error.err_code);
}

/** Parses a JSON API payload. @throws SnapworkerError naming the operation when it is not JSON. */
export function parseJson(data: Uint8Array, operation: string): Record<string, unknown> {
  const text = new TextDecoder().decode(data);
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (err) {
    throw new SnapworkerError(`nats: ${operation}: response is not JSON: ${truncate(text)}`, { cause: err });
  }
  throw new SnapworkerError(`nats: ${operation}: response is not a JSON object: ${truncate(text)}`);
}

function truncate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
