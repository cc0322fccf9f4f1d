import type { Readable } from 'node:stream';
import type { EntryHeader } from '../snapshot/entry.js';
import type { SnapshotManifest } from '../snapshot/manifest.js';
import type { ProgressSink } from '../progress.js';
import type { EndpointContext } from './source.js';

export interface RestoreOptions {
  signal: AbortSignal;
  progress: ProgressSink;
  /** Replace what already exists at the target; without it an existing target is refused. */
  replace: boolean;
}

/**
 * One restore in flight. Entries arrive in archive order and are staged; nothing is visible at
 * the target until `commit`, which runs only after the whole archive verified. `abort` removes
 * every staged byte and leaves the target exactly as it was. Exactly one of commit/abort is called.
 */
export interface RestoreSession {
  /**
   * Stages one entry; `body` is set for files and must be consumed fully. For a sparse file
   * (`header.sparse`), `body` holds only the data segments' bytes, back to back.
   */
  write(header: EntryHeader, body: Readable | undefined): Promise<void>;
  /**
   * Optional: stages a file whose whole body is in memory (a small file the reader had in hand,
   * `SnapshotEntry.bytes`), without a stream. Same contract as `write`; without it the caller
   * hands the same bytes to `write` as a stream.
   */
  writeBytes?(header: EntryHeader, bytes: Buffer): Promise<void>;
  commit(): Promise<RestoreResult>;
  abort(): Promise<void>;
}

export interface RestoreResult {
  /** Where the data landed (a URI without secrets). */
  target: string;
  entries: number;
  bytes: number;
  /**
   * Directory targets: extended attributes the target could not keep (filesystem without
   * xattr support, a namespace the worker may not write), counted, and the first 100 named as
   * `<entry>: extended attribute <name> not restored (<errno>)`. Absent when all were restored.
   */
  xattrsNotRestored?: { count: number; first: string[] };
}

/** Somewhere a snapshot can be restored to. */
export interface RestoreTarget {
  /** The target URI without secrets. */
  readonly uri: string;
  /** The source kinds this target accepts (`dir` accepts `dir`, ...). */
  readonly accepts: readonly string[];
  begin(manifest: SnapshotManifest, options: RestoreOptions): Promise<RestoreSession>;
}

/**
 * Builds a restore target for the URIs of one kind (validated and admitted by the registry).
 * `P`: the kind's restore-job fields (its registration's `targetParams`).
 */
export type TargetFactory<P extends object = {}> = (uris: URL[], params: P, context: EndpointContext) => RestoreTarget;
