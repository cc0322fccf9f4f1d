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
 *
 * `S` and `T` are the shapes of `sourceParams` and `targetParams`; `defineKind` infers them, so
 * the factories are typed with exactly the fields the job schema lets through.
 */
export interface KindRegistration<S extends z.ZodRawShape = z.ZodRawShape, T extends z.ZodRawShape = z.ZodRawShape> {
  /** The kind recorded in manifests and records (`source.kind`), e.g. `dir`. Lower case: it names `SNAPWORKER_<KIND>_PROFILES`. */
  readonly kind: string;
  /** URI schemes as `URL.protocol` spells them, e.g. `['postgres:', 'postgresql:']`. */
  readonly schemes: readonly string[];
  /** The URI forms, for messages and docs, e.g. `postgres://host:5432/dbname?profile=name`. */
  readonly uriForm: string;
  /** Whether one job may name several URIs of this kind (SQLite: several databases). Default false. */
  readonly multipleUris?: boolean;
  /**
   * The snapshot-job fields this kind reads, flat in job data (v: 1), each with a description
   * written without the kind ("leave the stream consumers out"); a field of another kind in a job
   * is refused with a message naming the kind it belongs to. Each field also becomes a CLI flag of
   * `snapshot` and `schedule add` (`noConsumers` → `--no-consumers`): booleans are switches,
   * string arrays repeatable, strings and numbers take a value, objects take JSON. A field two
   * kinds share must be the same zod schema object (one definition in `shared/kinds/`).
   */
  readonly sourceParams: S;
  /** The restore-job fields this kind reads, flat in job data; CLI flags of `restore` as above. */
  readonly targetParams: T;
  /** Placeholders for flag values in `--help` (`{ include: 'G' }` shows `--include G`); default `VALUE`, `JSON` for objects. */
  readonly flagValues?: Readonly<Record<string, string>>;
  /**
   * One named credentials profile (worker config `SNAPWORKER_<KIND>_PROFILES`, a JSON object of
   * name → profile, a secret never printed; URIs pick one with `?profile=name`; the kind's code
   * reads them with `profilesOf`). Absent: the kind takes no profiles.
   */
  readonly profile?: z.ZodType;
  /**
   * For kinds whose URIs name a network server: the worker's allow-list of servers jobs may name,
   * `SNAPWORKER_<KIND>_ALLOWED_SERVERS` (comma-separated `host:port`, `*` for any), derived from
   * this. `defaults` apply when the variable is unset; `admit` checks the URI's server with
   * `context.checkServer`. Absent: the kind names no servers (files, databases on disk).
   */
  readonly servers?: { readonly defaultPort: number; readonly defaults: readonly string[] };
  /**
   * Checks a parsed URI before anything opens it (its shape, and for network kinds the worker's
   * allow-list). Throws `InvalidInputError` with one line naming the problem.
   */
  admit?(url: URL, role: 'source' | 'target', context: EndpointContext): void;
  /**
   * The structure of this kind's payload (`PayloadLayout`, shared/kinds/payload-layout.ts), which
   * the restore and verify pipelines apply to whatever a snapshot format yields, made fresh per
   * snapshot read (a layout counts what it saw).
   */
  readonly payload: () => import('./payload-layout.js').PayloadLayout;
  /** Loads the source factory (lazily: see above). */
  source(): Promise<SourceFactory<z.infer<z.ZodObject<S>>>>;
  /** Loads the restore-target factory. */
  target(): Promise<TargetFactory<z.infer<z.ZodObject<T>>>>;
}

/** A registration of any field shapes, as the registry holds them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kinds differ in field shapes; each factory gets only what its own job fields let through
export type AnyKindRegistration = KindRegistration<any, any>;

/** Declares a kind, keeping its field shapes in the type (see `KindRegistration`). */
export function defineKind<S extends z.ZodRawShape, T extends z.ZodRawShape>(registration: KindRegistration<S, T>): KindRegistration<S, T> {
  return registration;
}
