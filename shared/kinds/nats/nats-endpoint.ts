import { DEFAULT_NATS_PORT } from '../../nats/nats-servers.js';
import { InvalidInputError } from '../../errors.js';
import { redactUrl } from '../../redact-url.js';
import type { NatsProfile } from './nats-profile.js';

/** A parsed `nats://host:port/STREAM[?profile=name]` URI: where to connect and which stream. */
export interface NatsEndpoint {
  /** `host:port`, as the NATS client expects it. */
  server: string;
  stream: string;
  /** Name of the worker-configured profile to authenticate with, if any. */
  profileName?: string;
  /** The URI rebuilt from its parts: never carries a secret, safe to log and store. */
  uri: string;
}

// JetStream refuses these in stream names: they would change the meaning of API subjects or paths.
const FORBIDDEN_STREAM_NAME_CHARS = /[\s.*>/\\]/;
const MAX_STREAM_NAME_LENGTH = 255;

/**
 * Parses a NATS stream URI. Credentials are never accepted inside the URI (they would end up in
 * job data, logs and records); they come only from a named profile in the worker's config.
 *
 * @throws InvalidInputError for another scheme, credentials in the URI, a missing or invalid
 *   stream name, or query parameters other than `profile`.
 */
export function parseNatsUri(url: URL): NatsEndpoint {
  if (url.protocol !== 'nats:') {
    throw new InvalidInputError(`nats: parse uri: scheme must be nats:, got ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidInputError(
      'nats: parse uri: credentials (user, password or token) are not allowed in the uri; ' +
        'reference a worker-configured profile with ?profile=<name>',
    );
  }
  if (url.hostname === '') throw new InvalidInputError(`nats: parse uri ${redactUrl(url.href)}: a host is required`);
  const port = url.port === '' ? DEFAULT_NATS_PORT : Number(url.port);
  const stream = parseStreamName(url);
  for (const key of url.searchParams.keys()) {
    if (key !== 'profile') {
      throw new InvalidInputError(`nats: parse uri ${redactUrl(url.href)}: unknown query parameter ${JSON.stringify(key)}`);
    }
  }
  const profileName = url.searchParams.get('profile') ?? undefined;
  if (profileName === '') throw new InvalidInputError(`nats: parse uri ${redactUrl(url.href)}: profile name is empty`);
  const server = `${url.hostname}:${port}`;
  const query = profileName === undefined ? '' : `?profile=${encodeURIComponent(profileName)}`;
  return { server, stream, profileName, uri: `nats://${server}/${encodeURIComponent(stream)}${query}` };
}

/** Parses exactly one URI, as every NATS source and target needs. */
export function parseSingleNatsUri(uris: readonly URL[], role: 'source' | 'target'): NatsEndpoint {
  if (uris.length !== 1) {
    throw new InvalidInputError(`nats: ${role} takes exactly one nats:// uri, got ${uris.length}`);
  }
  return parseNatsUri(uris[0]!);
}

/**
 * The profile an endpoint names, or `undefined` for an anonymous connection.
 * @throws InvalidInputError when the named profile is not configured on this worker.
 */
export function resolveNatsProfile(
  endpoint: NatsEndpoint,
  profiles: Readonly<Record<string, NatsProfile>>,
): NatsProfile | undefined {
  if (endpoint.profileName === undefined) return undefined;
  const profile = Object.hasOwn(profiles, endpoint.profileName) ? profiles[endpoint.profileName] : undefined;
  if (profile === undefined) {
    throw new InvalidInputError(
      `nats: ${endpoint.uri}: profile ${JSON.stringify(endpoint.profileName)} is not configured on this worker`,
    );
  }
  return profile;
}

/**
 * Checks a stream name the way the server would, so a bad one fails before any connection.
 * @throws InvalidInputError naming the problem.
 */
export function checkStreamName(name: string, where: string): void {
  if (name === '' || name.length > MAX_STREAM_NAME_LENGTH || FORBIDDEN_STREAM_NAME_CHARS.test(name)) {
    throw new InvalidInputError(
      `nats: ${where}: invalid stream name ${JSON.stringify(name)} ` +
        `(1-${MAX_STREAM_NAME_LENGTH} characters, no whitespace, '.', '*', '>', '/' or '\\')`,
    );
  }
}

function parseStreamName(url: URL): string {
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  if (segments.length !== 1) {
    throw new InvalidInputError(`nats: parse uri ${redactUrl(url.href)}: expected nats://host:port/STREAM`);
  }
  let stream: string;
  try {
    stream = decodeURIComponent(segments[0]!);
  } catch (err) {
    throw new InvalidInputError(`nats: parse uri ${redactUrl(url.href)}: stream name is not valid percent-encoding`, {
      cause: err,
    });
  }
  checkStreamName(stream, `parse uri ${redactUrl(url.href)}`);
  return stream;
}
