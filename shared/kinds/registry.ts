import { InvalidInputError } from '../errors.js';
import { parseNatsUri } from './nats/nats-endpoint.js';
import type { EndpointContext, Source, SourceFactory, SourceParams } from './source.js';
import type { RestoreTarget, TargetFactory, TargetParams } from './restore-target.js';

/**
 * Where each URI scheme's source and target live. Loaded lazily so a worker that only ever
 * snapshots directories never loads the SQLite or NATS modules.
 *
 * Maps, not records: the scheme comes from job data, and no input may find a property of Object.
 */
const SOURCES = new Map<string, () => Promise<SourceFactory>>([
  ['dir:', async () => (await import('./dir/dir-source.js')).createDirSource],
  ['sqlite:', async () => (await import('./sqlite/sqlite-source.js')).createSqliteSource],
  ['nats:', async () => (await import('./nats/nats-source.js')).createNatsSource],
]);

const TARGETS = new Map<string, () => Promise<TargetFactory>>([
  ['dir:', async () => (await import('./dir/dir-target.js')).createDirTarget],
  ['sqlite:', async () => (await import('./sqlite/sqlite-target.js')).createSqliteTarget],
  ['nats:', async () => (await import('./nats/nats-target.js')).createNatsTarget],
]);

/** Supported source and target URI forms, for messages and docs. */
export const ENDPOINT_FORMS = 'dir:///abs/path, sqlite:///abs/path/db.sqlite (several allowed), nats://host:4222/STREAM';

/**
 * Parses endpoint URIs: every one must be valid, of one supported scheme, and free of
 * credentials (job data never carries secrets; NATS credentials come from worker profiles).
 * @throws InvalidInputError naming `field` and the bad URI.
 */
export function parseEndpointUris(field: string, uris: readonly string[]): URL[] {
  if (uris.length === 0) throw new InvalidInputError(`${field}: no URI given`);
  const parsed = uris.map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InvalidInputError(`${field}: "${text}" is not a URI (expected ${ENDPOINT_FORMS})`);
    }
    if (!SOURCES.has(url.protocol)) {
      throw new InvalidInputError(`${field}: unsupported scheme "${url.protocol}" in "${text}" (expected ${ENDPOINT_FORMS})`);
    }
    if (url.username || url.password) {
      throw new InvalidInputError(`${field}: credentials are not allowed in "${url.protocol}//…" URIs; configure a profile on the worker`);
    }
    return url;
  });
  const schemes = new Set(parsed.map((u) => u.protocol));
  if (schemes.size > 1) throw new InvalidInputError(`${field}: URIs of different kinds in one job (${[...schemes].join(', ')})`);
  return parsed;
}

/**
 * Builds the source for `uris` (validated by `parseEndpointUris`, NATS servers checked against
 * the worker's allow-list before anything connects).
 */
export async function openSource(uris: readonly string[], params: SourceParams, context: EndpointContext): Promise<Source> {
  const urls = parseEndpointUris('source', uris);
  admitServers(urls, 'source', context);
  const factory = await SOURCES.get(urls[0]!.protocol)!();
  return factory(urls, params, forRole(context, 'source'));
}

/** Builds the restore target for `uris` (validated and admitted as for `openSource`). */
export async function openTarget(uris: readonly string[], params: TargetParams, context: EndpointContext): Promise<RestoreTarget> {
  const urls = parseEndpointUris('target', uris);
  admitServers(urls, 'target', context);
  const factory = await TARGETS.get(urls[0]!.protocol)!();
  return factory(urls, params, forRole(context, 'target'));
}

type Role = 'source' | 'target';

/** The context with path checks that know whether they check a source or a target. */
function forRole(context: EndpointContext, role: Role): EndpointContext {
  return { ...context, checkPath: (absPath) => context.checkPath(absPath, role) };
}

/** Refuses, before any connection, a NATS server the worker does not allow jobs to name. */
function admitServers(urls: readonly URL[], role: Role, context: EndpointContext): void {
  if (context.checkNatsServer === undefined) return;
  for (const url of urls) if (url.protocol === 'nats:') context.checkNatsServer(parseNatsUri(url).server, role);
}
