import type { SourceEntry } from '../snapshot/entry.js';
import type { SourceDescriptor } from '../snapshot/manifest.js';
import type { ProgressSink } from '../progress.js';
import type { NoticeSink } from './notices.js';

export interface SourceOpenOptions {
  signal: AbortSignal;
  progress: ProgressSink;
  /** Where entries that cannot be kept exactly are reported (see `notices.ts`). */
  notices: NoticeSink;
}

/**
 * Something that can be snapshotted. A source describes itself (for the manifest and the record)
 * and yields its payload entries in archive order. Entry paths are relative to the payload root
 * of its kind (`data/...` for directories). Whatever a source stages (temp files, connections)
 * it releases when the iteration ends, on every path.
 */
export interface Source {
  readonly descriptor: SourceDescriptor;
  /** Bytes the source expects to produce, when cheap to know, for progress and ETA. */
  estimateBytes?(signal: AbortSignal): Promise<number | undefined>;
  /**
   * Stages what must be known before the manifest is written (called once, before `entries`),
   * so the descriptor, and with it the manifest, records facts known only after copying (a
   * database's checked page count). What it stages is released when `entries` ends, or by
   * `release` when `entries` never runs.
   */
  prepare?(options: SourceOpenOptions): Promise<void>;
  entries(options: SourceOpenOptions): AsyncIterable<SourceEntry>;
  /** Removes whatever `prepare` staged; safe to call more than once. */
  release?(): Promise<void>;
}

/** Worker-side facts every source and target factory may need. Never from job data. */
export interface EndpointContext {
  /**
   * Throws `UnsafePathError` unless `absPath` lies inside one of the worker's allowed roots
   * (strictly inside for a target). `openSource`/`openTarget` fill in `role`.
   */
  checkPath(absPath: string, role?: 'source' | 'target'): void;
  /**
   * Throws `InvalidInputError` unless jobs may name the NATS server `host:port`; called by
   * `openSource`/`openTarget` before any connection. Absent: any server (tests, tools).
   */
  checkNatsServer?(server: string, role: 'source' | 'target'): void;
  /** Directory for staging files (temp copies, restore staging for non-directory targets). */
  stagingDir: string;
  /** Named NATS connection profiles from worker config (credentials live only here). */
  natsProfiles: Record<string, NatsProfile>;
  /** Directory restores keep setuid, setgid and sticky bits (config `SNAPWORKER_RESTORE_SETUID`). Default false. */
  restoreSetuid?: boolean;
}

/** How to authenticate to a NATS server; referenced from a URI as `?profile=<name>`. */
export interface NatsProfile {
  token?: string;
  user?: string;
  pass?: string;
  /** Path to a `.creds` file (JWT + nkey seed). */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** Per-job options a producer may set for a snapshot source (validated by the job schema). */
export interface SourceParams {
  /** Lineage name; defaults from the URI (directory basename, stream name, database basename). */
  name?: string;
  /** Directory sources: glob patterns (picomatch) relative to the root. */
  include?: string[];
  exclude?: string[];
  /** NATS sources: leave consumers out. */
  noConsumers?: boolean;
  /** NATS sources: ask the server to check messages before the snapshot. */
  checkMessages?: boolean;
  /**
   * Directory sources: leave out an entry the worker cannot read (EACCES, EPERM, EIO on list,
   * open or read ahead) and report it as an `unreadable` notice, making the snapshot incomplete,
   * instead of failing the snapshot (the default). restic's default behaviour.
   */
  skipUnreadable?: boolean;
}

/** Builds a source for the URIs of one scheme (`dir:`, `nats:`, `sqlite:`). */
export type SourceFactory = (uris: URL[], params: SourceParams, context: EndpointContext) => Source;
