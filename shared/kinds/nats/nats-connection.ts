import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { AbortedError, InvalidInputError, SnapworkerError, errorMessage, throwIfAborted } from '../../errors.js';
import type { NatsProfile } from './nats-profile.js';
import type { NatsEndpoint } from './nats-endpoint.js';

export interface NatsConnectOptions {
  /** Milliseconds to wait for the server's handshake. Default 10 000. */
  connectTimeoutMs?: number;
  /** Shown on the server's monitoring pages. Default `snapworker`. */
  name?: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens a connection for one job. Reconnecting is off on purpose: a snapshot or restore in flight
 * is bound to the server's view of this connection, so after a disconnect it cannot resume and the
 * job must fail (and be retried from scratch) rather than hang.
 *
 * @throws InvalidInputError when the profile's creds file cannot be read;
 *   SnapworkerError (retryable) when the server cannot be reached or refuses the handshake.
 */
export async function connectToNats(
  endpoint: NatsEndpoint,
  profile: NatsProfile | undefined,
  options: NatsConnectOptions = {},
): Promise<NatsConnection> {
  const connectOptions: NodeConnectionOptions = {
    servers: endpoint.server,
    name: options.name ?? 'snapworker',
    timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    reconnect: false,
    ...(await authenticationOptions(endpoint, profile)),
  };
  try {
    return await connect(connectOptions);
  } catch (err) {
    throw new SnapworkerError(`nats: connect to ${endpoint.server}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Runs `work` with a fresh connection and closes it afterwards on every path. When `signal` fires
 * the connection is closed at once, which makes any request or subscription in flight end; the
 * error thrown is then the signal's reason (an AbortedError unless the reason is an Error).
 */
export async function withNatsConnection<T>(
  endpoint: NatsEndpoint,
  profile: NatsProfile | undefined,
  signal: AbortSignal | undefined,
  work: (nc: NatsConnection) => Promise<T>,
  options: NatsConnectOptions = {},
): Promise<T> {
  throwIfAborted(signal);
  const nc = await connectToNats(endpoint, profile, options);
  const closeOnAbort = () => void nc.close().catch(() => {});
  signal?.addEventListener('abort', closeOnAbort, { once: true });
  try {
    return await work(nc);
  } catch (err) {
    throwIfAborted(signal);
    throw err;
  } finally {
    signal?.removeEventListener('abort', closeOnAbort);
    await nc.close().catch(() => {});
  }
}

/** The error a fired signal stands for: its reason when that is an Error, else an AbortedError. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new AbortedError(String(reason ?? 'aborted'));
}

async function authenticationOptions(
  endpoint: NatsEndpoint,
  profile: NatsProfile | undefined,
): Promise<Partial<NodeConnectionOptions>> {
  if (profile === undefined) return {};
  const options: Partial<NodeConnectionOptions> = {};
  if (profile.token !== undefined) options.token = profile.token;
  if (profile.user !== undefined) {
    options.user = profile.user;
    if (profile.pass !== undefined) options.pass = profile.pass;
  }
  if (profile.credsFile !== undefined) {
    let creds: Uint8Array;
    try {
      creds = await readFile(profile.credsFile);
    } catch (err) {
      throw new InvalidInputError(
        `nats: profile ${JSON.stringify(endpoint.profileName)}: read creds file ${profile.credsFile}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    options.authenticator = credsAuthenticator(creds);
  }
  if (profile.tls !== undefined) {
    // The node transport reads these files itself; an empty object still demands TLS.
    options.tls = { ...profile.tls };
  }
  return options;
}
