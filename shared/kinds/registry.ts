import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import type { AnyKindRegistration } from './kind.js';
import type { EndpointContext, Source, SourceParams } from './source.js';
import type { RestoreTarget } from './restore-target.js';
import { dirKind } from './dir/index.js';
import { natsKind } from './nats/index.js';
import { postgresKind } from './postgres/index.js';
import { sqliteKind } from './sqlite/index.js';

/**
 * Every kind snapworker knows, one line each (restic's `internal/backend/all`): adding a kind is
 * its folder under `shared/kinds/` plus one line here. The order is the order of `--help` and docs.
 */
export const KINDS = [dirKind, sqliteKind, natsKind, postgresKind] as const satisfies readonly AnyKindRegistration[];

/** Which role a URI plays in a job: read from (`source`) or restored into (`target`). */
export type EndpointRole = 'source' | 'target';

const ALL: readonly AnyKindRegistration[] = KINDS;

// A Map, not a record: the scheme comes from job data, and no input may find a property of Object.
const BY_SCHEME = new Map<string, AnyKindRegistration>(ALL.flatMap((registration) => registration.schemes.map((scheme) => [scheme, registration] as const)));
if (BY_SCHEME.size !== ALL.reduce((n, registration) => n + registration.schemes.length, 0)) throw new Error('kinds: a URI scheme is registered twice');

/** Supported source and target URI forms, for messages and docs. */
export const ENDPOINT_FORMS = ALL.map((registration) => registration.uriForm).join(', ');

/** The registration of `kind` (`dir`, `nats`, ...), or undefined. */
export function findKind(kind: string): AnyKindRegistration | undefined {
  return ALL.find((registration) => registration.kind === kind);
}

/** A job's URIs, parsed, and the one kind they all belong to. */
export interface ParsedEndpoints {
  registration: AnyKindRegistration;
  urls: URL[];
}

/**
 * Parses a job's endpoint URIs: every one must be a valid URI of one registered scheme, free of
 * credentials (job data never carries secrets; they come from worker profiles), all of one kind,
 * and several only where the kind allows several.
 * @throws InvalidInputError naming `field` and the bad URI.
 */
export function parseEndpoints(field: string, uris: readonly string[]): ParsedEndpoints {
  const result = checkEndpoints(uris);
  if (typeof result === 'string') throw new InvalidInputError(`${field}: ${result}`);
  return result;
}

/** What is wrong with `uris` as one job's endpoints (one phrase), or what they parse to. */
export function checkEndpoints(uris: readonly string[]): ParsedEndpoints | string {
  if (uris.length === 0) return 'no URI given';
  const urls: URL[] = [];
  for (const text of uris) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return `"${text}" is not a URI (expected ${ENDPOINT_FORMS})`;
    }
    if (!BY_SCHEME.has(url.protocol)) return `unsupported scheme "${url.protocol}" in "${text}" (expected ${ENDPOINT_FORMS})`;
    if (url.username || url.password) return `credentials are not allowed in "${url.protocol}//…" URIs; configure a profile on the worker`;
    urls.push(url);
  }
  const kinds = new Set(urls.map((url) => BY_SCHEME.get(url.protocol)!));
  if (kinds.size > 1) return `URIs of different kinds in one job (${[...kinds].map((k) => k.kind).join(', ')})`;
  const registration = BY_SCHEME.get(urls[0]!.protocol)!;
  if (urls.length > 1 && !registration.multipleUris) return `${registration.kind} takes one URI per job (${registration.uriForm}), got ${urls.length}`;
  return { registration, urls };
}

/**
 * Builds the source for `uris` (validated by `parseEndpoints`, then admitted by its kind, e.g.
 * NATS servers checked against the worker's allow-list, before anything connects).
 * @throws InvalidInputError for bad URIs or a URI the kind does not admit; the factory's errors.
 */
export async function openSource(uris: readonly string[], params: SourceParams, context: EndpointContext): Promise<Source> {
  // The job schema let through only fields of this kind (see `kindFields`).
  const fields = params as SourceParams & Record<string, unknown>;
  const { registration, urls } = admitted('source', uris, context);
  const factory = await registration.source();
  return factory(urls, fields, forRole(context, 'source'));
}

/**
 * Builds the restore target for `uris` (validated and admitted as for `openSource`). The target
 * refuses, in `begin`, a snapshot whose manifest names a kind it does not accept.
 */
export async function openTarget(uris: readonly string[], params: object, context: EndpointContext): Promise<RestoreTarget> {
  const { registration, urls } = admitted('target', uris, context);
  const factory = await registration.target();
  return refusingOtherKinds(factory(urls, params as Record<string, unknown>, forRole(context, 'target')));
}

function admitted(role: EndpointRole, uris: readonly string[], context: EndpointContext): ParsedEndpoints {
  const parsed = parseEndpoints(role, uris);
  for (const url of parsed.urls) parsed.registration.admit?.(url, role, context);
  return parsed;
}

/** The context with path checks that know whether they check a source or a target. */
function forRole(context: EndpointContext, role: EndpointRole): EndpointContext {
  return { ...context, checkPath: (absPath) => context.checkPath(absPath, role) };
}

/**
 * The one check that a snapshot suits a target, against the manifest the format read (the
 * pipeline checks the record before reading; a manifest that disagrees is caught here).
 */
function refusingOtherKinds(target: RestoreTarget): RestoreTarget {
  return {
    uri: target.uri,
    accepts: target.accepts,
    begin: async (manifest, options) => {
      const kind = manifest.source.kind;
      if (!target.accepts.includes(kind)) {
        throw new InvalidInputError(`restore: snapshot ${manifest.snapshotId} holds a ${kind} source; target ${target.uri} takes ${target.accepts.join(', ')}`);
      }
      return target.begin(manifest, options);
    },
  };
}

/** One kind-specific job field: its schema and the kinds that read it. */
export interface KindField {
  schema: z.core.$ZodType;
  kinds: string[];
}

/**
 * The kind-specific fields of snapshot jobs (`source`) or restore jobs (`target`), by field name,
 * in registration order. A field several kinds declare must be one schema object.
 * @throws Error (at start, a programming error) for a field declared twice with different schemas.
 */
export function kindFields(role: EndpointRole): ReadonlyMap<string, KindField> {
  const fields = new Map<string, KindField>();
  for (const registration of ALL) {
    const shape: z.ZodRawShape = role === 'source' ? registration.sourceParams : registration.targetParams;
    for (const [name, schema] of Object.entries(shape)) {
      const seen = fields.get(name);
      if (seen === undefined) fields.set(name, { schema, kinds: [registration.kind] });
      else if (seen.schema === schema) seen.kinds.push(registration.kind);
      else throw new Error(`kinds: ${seen.kinds.join(', ')} and ${registration.kind} declare the ${role} field ${name} differently; share one schema`);
    }
  }
  return fields;
}

/** A kind's credentials profiles in worker config: the variable and the schema of one profile. */
export interface ProfileSetting {
  kind: string;
  /** `SNAPWORKER_<KIND>_PROFILES`. */
  variable: string;
  profile: z.ZodType;
}

/** A kind's allow-list of servers in worker config (`KindRegistration.servers`). */
export interface ServerSetting {
  kind: string;
  /** `SNAPWORKER_<KIND>_ALLOWED_SERVERS`. */
  variable: string;
  defaultPort: number;
  /** What jobs may name when the variable is unset. */
  defaults: readonly string[];
}

/** Every kind whose URIs name network servers, with its allow-list variable. */
export function serverSettings(): ServerSetting[] {
  return ALL.flatMap((registration) =>
    registration.servers ? [{ kind: registration.kind, variable: `SNAPWORKER_${registration.kind.toUpperCase()}_ALLOWED_SERVERS`, ...registration.servers }] : [],
  );
}

/** Every kind that takes profiles, with its config variable. */
export function profileSettings(): ProfileSetting[] {
  return ALL.flatMap((registration) =>
    registration.profile ? [{ kind: registration.kind, variable: `SNAPWORKER_${registration.kind.toUpperCase()}_PROFILES`, profile: registration.profile }] : [],
  );
}
