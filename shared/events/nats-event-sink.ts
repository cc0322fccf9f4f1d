import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { parseNatsServerUrls, type NatsServerLogin } from '../nats/nats-servers.js';
import { redactUrl } from '../redact-url.js';
import type { ProgressReport } from '../progress.js';
import { DEFAULT_SUBJECT_PREFIX, jobEventSubject } from './job-event-subject.js';
import type { EntryNotice } from '../kinds/notices.js';
import { buildJobEvent, type JobEvent, type JobEventSink, type JobRef, type ReplicationChange } from './job-events.js';

export interface NatsEventSinkOptions {
  /**
   * NATS server URL(s), e.g. `nats://127.0.0.1:4222`; several comma-separated. `user:pass@` or
   * `token@` in them is used to log in (see `parseNatsServerUrls`) and never logged.
   */
  url: string;
  /** Called once per event that could not be published (for `snapworker_events_dropped_total`). */
  onDropped?: () => void;
  /** Logs connection changes (not each drop). Default: silent. */
  logger?: Logger;
  /** Subject prefix. Default `snapworker.jobs`. */
  subjectPrefix?: string;
  /** Wait between connection attempts, first connect and reconnects alike. Default 2000 ms. */
  reconnectWaitMs?: number;
  /** Limit for one connection attempt (TCP and handshake). Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long `close()` waits for buffered events to reach the server. Default 2000 ms. */
  closeFlushTimeoutMs?: number;
}

const DEFAULTS = {
  subjectPrefix: DEFAULT_SUBJECT_PREFIX,
  reconnectWaitMs: 2000,
  connectTimeoutMs: 5000,
  closeFlushTimeoutMs: 2000,
};

/**
 * Publishes to `snapworker.jobs.<jobId>.<event>` with payload {v:1, event, jobId, kind, at, ...}
 * (docs/schemas/event.schema.json; the job id is encoded into one subject token, see
 * `encodeJobIdToken`).
 *
 * Throws only for a malformed `url` (InvalidInputError; the worker's config check refuses those
 * first). Never blocks a job: it connects in the background and keeps trying forever,
 * publishes fire-and-forget (core NATS, no acknowledgement), and drops what cannot go out, calling
 * `onDropped` for each: events while not connected (before the first connect, while NATS is down
 * or reconnecting, after `close()`) and events that fail to serialize or publish. The client's
 * reconnect buffer is deliberately not used: it would hold events for a server that may never
 * come back and discards them on reconnect anyway. Events already written to a socket whose
 * server dies are lost without being counted, as with any fire-and-forget publish.
 */
export function createNatsEventSink(options: NatsEventSinkOptions): NatsJobEventSink {
  return new NatsEventSink({ ...DEFAULTS, ...options });
}

/** The NATS sink, with its connection state for readiness reports and tests. */
export interface NatsJobEventSink extends JobEventSink {
  /** True while events are being published; false while they are dropped. */
  readonly connected: boolean;
}

type ResolvedOptions = NatsEventSinkOptions & typeof DEFAULTS;

class NatsEventSink implements NatsJobEventSink {
  private connection: NatsConnection | undefined;
  /** True only while the client has a live connection; publishing is attempted only then. */
  private isConnected = false;
  private closed = false;
  private readonly stopConnecting = new AbortController();
  private readonly running: Promise<void>;

  private readonly login: NatsServerLogin;
  /** The URL without secrets, for log lines. */
  private readonly where: string;

  constructor(private readonly options: ResolvedOptions) {
    this.where = redactUrl(options.url);
    this.login = parseNatsServerUrls(options.url);
    this.running = this.run().catch((err: unknown) => {
      this.options.logger?.error({ err }, `events: nats ${this.where}: ${redactUrl(errorMessage(err))}`);
    });
  }

  get connected(): boolean {
    return this.isConnected;
  }

  started(job: JobRef): void {
    this.publish(() => buildJobEvent(job, 'started'));
  }

  progress(job: JobRef, report: ProgressReport): void {
    this.publish(() => buildJobEvent(job, 'progress', undefined, report));
  }

  warning(job: JobRef, notice: EntryNotice): void {
    this.publish(() => buildJobEvent(job, 'warning', undefined, notice));
  }

  replication(job: JobRef, change: ReplicationChange): void {
    this.publish(() => buildJobEvent(job, 'replication', undefined, change));
  }

  completed(job: JobRef, result: unknown): void {
    this.publish(() => buildJobEvent(job, 'completed', undefined, result));
  }

  failed(job: JobRef, error: string): void {
    this.publish(() => buildJobEvent(job, 'failed', undefined, error));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopConnecting.abort();
    const connection = this.connection;
    if (connection) {
      if (this.isConnected) {
        // Give the last events (a `completed` just before shutdown) a moment to leave.
        await withTimeout(connection.flush(), this.options.closeFlushTimeoutMs).catch(() => {});
      }
      this.isConnected = false;
      await connection.close().catch(() => {});
    }
    await this.running;
  }

  private publish(build: () => JobEvent): void {
    const connection = this.connection;
    if (!this.isConnected || !connection) {
      this.dropped();
      return;
    }
    try {
      const event = build();
      connection.publish(jobEventSubject(this.options.subjectPrefix, event.jobId, event.event), JSON.stringify(event));
    } catch (err) {
      // A result that is not JSON (BigInt, a cycle) or a client error: the job goes on.
      this.options.logger?.warn({ err }, `events: publish: ${errorMessage(err)}`);
      this.dropped();
    }
  }

  private dropped(): void {
    try {
      this.options.onDropped?.();
    } catch {
      // A counter's failure is no reason to disturb a job.
    }
  }

  /** Connects (retrying until closed), then follows the connection's status until it closes. */
  private async run(): Promise<void> {
    const connection = await this.connectUntilClosed();
    if (!connection) return;
    this.connection = connection;
    this.isConnected = true;
    this.options.logger?.info(`events: connected to nats ${this.where}`);
    for await (const status of connection.status()) {
      switch (status.type) {
        case 'disconnect':
        case 'staleConnection':
        case 'forceReconnect':
        case 'reconnecting':
          if (this.isConnected) this.options.logger?.warn(`events: lost nats ${this.where}; dropping events until it is back`);
          this.isConnected = false;
          break;
        case 'reconnect':
          this.isConnected = !this.closed;
          this.options.logger?.info(`events: reconnected to nats ${this.where}`);
          break;
        case 'close':
          this.isConnected = false;
          return;
      }
    }
  }

  /**
   * The first connection, tried every `reconnectWaitMs` until it works or the sink closes. After
   * it, the client itself reconnects forever. Done by hand because the client's own retrying of a
   * first connect (`waitOnFirstConnect`) cannot be cancelled.
   */
  private async connectUntilClosed(): Promise<NatsConnection | undefined> {
    const signal = this.stopConnecting.signal;
    let attempt = 0;
    while (!signal.aborted) {
      attempt += 1;
      try {
        const connection = await connect({
          ...this.login,
          name: 'snapworker-events',
          timeout: this.options.connectTimeoutMs,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: this.options.reconnectWaitMs,
        });
        if (!signal.aborted) return connection;
        await connection.close().catch(() => {});
        return undefined;
      } catch (err) {
        if (attempt === 1) {
          this.options.logger?.warn({ err }, `events: connect to nats ${this.where}: ${redactUrl(errorMessage(err))}; retrying in the background`);
        }
        await sleep(this.options.reconnectWaitMs, signal);
      }
    }
    return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
