import type { SourceEntry } from '../snapshot/entry.js';
import type { SourceDescriptor } from '../snapshot/manifest.js';
import type { UnchangedFiles } from '../snapshot/unchanged-files.js';
import type { ProgressSink } from '../progress.js';
import type { NoticeSink } from './notices.js';

export interface SourceOpenOptions {
  signal: AbortSignal;
  progress: ProgressSink;
  /** Where entries that cannot be kept exactly are reported (see `notices.ts`). */
  notices: NoticeSink;
  /** Set for an incremental snapshot: files it names unchanged are not read (see UnchangedFiles). */
  unchanged?: UnchangedFiles;
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
   * Throws `InvalidInputError` unless jobs may name the server `host:port` in URIs of `kind`
   * (`SNAPWORKER_<KIND>_ALLOWED_SERVERS`); called from the kind's `admit` before any connection.
   * Absent: any server (tests, tools).
   */
  checkServer?(kind: string, server: string, role: 'source' | 'target'): void;
  /** Directory for staging files (temp copies, restore staging for non-directory targets). */
  stagingDir: string;
  /**
   * Credentials profiles from worker config, by kind then by profile name
   * (`SNAPWORKER_<KIND>_PROFILES`, each checked against its kind's `profile` schema at start);
   * read them with `profilesOf`. Absent: no profiles (tests, tools).
   */
  profiles?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Directory restores keep setuid, setgid and sticky bits (config `SNAPWORKER_RESTORE_SETUID`). Default false. */
  restoreSetuid?: boolean;
}

/**
 * The snapshot-job fields every source reads. A kind's own fields (its registration's
 * `sourceParams`) come on top: a factory is a `SourceFactory<ItsParams>`.
 */
export interface SourceParams {
  /** Lineage name; defaults from the URI (directory basename, stream name, database basename). */
  name?: string;
}

/** Builds a source for the URIs of one kind (validated and admitted by the registry). */
export type SourceFactory<P extends object = {}> = (uris: URL[], params: SourceParams & P, context: EndpointContext) => Source;

/**
 * The worker's profiles of one kind, by name, as its registration's `profile` schema parsed them
 * (`P` is that schema's type; the registry checked every value at start).
 */
export function profilesOf<P>(context: EndpointContext, kind: string): Readonly<Record<string, P>> {
  const profiles = context.profiles;
  return ((profiles && Object.hasOwn(profiles, kind) ? profiles[kind] : undefined) ?? {}) as Readonly<Record<string, P>>;
}
