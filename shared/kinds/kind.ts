import type { z } from 'zod';
import type { EndpointContext, SourceFactory } from './source.js';
import type { TargetFactory } from './restore-target.js';

/**
 * Everything the rest of snapworker knows about one kind of stateful thing (a directory, a SQLite
 * database, a NATS stream, a PostgreSQL database): one registration in `<kind>/index.ts`, listed
 * once in `registry.ts`. Job schemas, CLI flags and worker config profiles are derived from these
 * registrations; the pipeline sees only `Source` and `RestoreTarget`.
 *
 * A registration module must stay light (zod and URI parsing only): the source and target
 * modules, with their native or client dependencies, load lazily, so a worker that only snapshots
 * directories never loads the NATS client or better-sqlite3.
 */
export interface KindRegistration {
  /** The kind recorded in manifests and records (`source.kind`), e.g. `dir`. */
  readonly kind: string;
  /** URI schemes as `URL.protocol` spells them, e.g. `['postgres:', 'postgresql:']`. */
  readonly schemes: readonly string[];
  /** The URI forms, for messages and docs, e.g. `postgres://host:5432/dbname?profile=name`. */
  readonly uriForm: string;
  /** Whether one job may name several URIs of this kind (SQLite: several databases). Default false. */
  readonly multipleUris?: boolean;
  /**
   * The snapshot-job fields this kind reads, flat in job data (v: 1), with descriptions; a field of
   * another kind in a job is refused with a message naming the kind it belongs to.
   */
  readonly sourceParams: z.ZodRawShape;
  /** The restore-job fields this kind reads, flat in job data. */
  readonly targetParams: z.ZodRawShape;
  /**
   * One named credentials profile (worker config `SNAPWORKER_<KIND>_PROFILES`, a JSON object of
   * name → profile; URIs pick one with `?profile=name`). Absent: the kind takes no profiles.
   */
  readonly profile?: z.ZodType;
  /**
   * Checks a parsed URI before anything opens it (its shape, and for network kinds the worker's
   * allow-list). Throws `InvalidInputError` with one line naming the problem.
   */
  admit?(url: URL, role: 'source' | 'target', context: EndpointContext): void;
  /**
   * The structure of this kind's payload (`PayloadLayout`, shared/kinds/payload-layout.ts), which
   * the restore and verify pipelines apply to whatever a snapshot format yields. Optional: a kind
   * without one is restored without a structural check before its target sees the entries.
   * Until the registry lists registrations, `payload-layout.ts` maps kinds to layouts itself.
   */
  readonly payload?: () => import('./payload-layout.js').PayloadLayout;
  /** Loads the source factory (lazily: see above). */
  source(): Promise<SourceFactory>;
  /** Loads the restore-target factory. */
  target(): Promise<TargetFactory>;
}
