import { isAbsolute } from 'node:path';

import { InvalidInputError } from '../errors.js';
import { redactUrl } from '../redact-url.js';
import { FsDriver } from './fs/fs-driver.js';
import { S3Driver } from './s3/s3-driver.js';
import type { S3DriverOptions } from './s3/s3-driver-options.js';
import type { StorageDriver, StorageObserver } from './storage-driver.js';

export interface OpenDriverOptions {
  /** Receives request outcomes and byte counts for metrics. */
  observer?: StorageObserver;
}

/** Where a repository URI points, parsed and checked, before any driver is made. */
export type RepositoryLocation = { kind: 'file'; root: string } | { kind: 's3'; options: S3DriverOptions };

type Complaint = (part: string, why: string) => never;

/** One storage scheme: how its URIs parse and which driver serves them. */
interface StorageScheme {
  /** The driver's `kind` (metric label). */
  driverKind: string;
  /** The URI form, for messages. */
  form: string;
  locate(url: URL, bad: Complaint): RepositoryLocation;
  open(location: RepositoryLocation, observer: StorageObserver | undefined): StorageDriver;
}

/**
 * Every storage scheme a repository URI may use, one line each: the only place that knows them
 * (config, the command line and the worker's registry ask here).
 */
const SCHEMES = new Map<string, StorageScheme>([
  ['file:', { driverKind: 'fs', form: 'file:///abs/path', locate: (url, bad) => ({ kind: 'file', root: fileRoot(url, bad) }), open: (l, observer) => new FsDriver({ root: (l as { root: string }).root, observer }) }],
  ['s3:', { driverKind: 's3', form: 's3://bucket/prefix', locate: (url, bad) => ({ kind: 's3', options: s3OptionsFromUrl(url, bad) }), open: (l, observer) => new S3Driver({ ...(l as { options: S3DriverOptions }).options, observer }) }],
]);

/** The repository URI forms, for messages: `file:///abs/path or s3://bucket/prefix`. */
export const REPOSITORY_URI_FORMS = [...SCHEMES.values()].map((scheme) => scheme.form).join(' or ');

/** The schemes as URIs start, for messages: `file:// or s3://`. */
export const REPOSITORY_URI_SCHEMES = [...SCHEMES.keys()].map((scheme) => `${scheme}//`).join(' or ');

/** True when `text` starts like a repository URI of a known scheme (not yet checked further). */
export function isRepositoryUri(text: string): boolean {
  const match = /^([a-z0-9+.-]+:)\/\//i.exec(text);
  return match !== null && SCHEMES.has(match[1]!.toLowerCase());
}

/** The driver kind (`fs`, `s3`) a repository URI opens, for metric labels; undefined for an unknown scheme. */
export function driverKindOf(uri: string): string | undefined {
  const match = /^([a-z0-9+.-]+:)/i.exec(uri);
  return match ? SCHEMES.get(match[1]!.toLowerCase())?.driverKind : undefined;
}

/**
 * Opens the storage driver a repository URI names (see `parseRepositoryUri`).
 * @throws InvalidInputError naming the bad part of the URI.
 */
export function openDriver(uri: string, options: OpenDriverOptions = {}): StorageDriver {
  const location = parseRepositoryUri(uri);
  return SCHEMES.get(`${location.kind}:`)!.open(location, options.observer);
}

/**
 * Parses a repository URI without opening anything, so configuration can check every one at
 * start:
 * - `file:///abs/path` → a filesystem repository rooted at `/abs/path`;
 * - `s3://bucket/prefix?endpoint=…&region=…&forcePathStyle=true&checksum=when_required&partSize=16MiB&queueSize=4&maxAttempts=8`
 *   (every parameter optional; sizes as bytes or with B/KiB/MiB/GiB).
 *
 * Throws `InvalidInputError` naming the bad part of the URI: unknown scheme or parameter, a
 * relative or remote file path, credentials in the URI (they come from the AWS SDK's default
 * chain only), a malformed value.
 */
export function parseRepositoryUri(uri: string): RepositoryLocation {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (err) {
    throw new InvalidInputError(`repository URI ${JSON.stringify(redactUrl(uri))}: not a URI`, { cause: err });
  }
  const bad = (part: string, why: string): never => {
    throw new InvalidInputError(`repository URI ${JSON.stringify(redactUrl(url.href))}: ${part}: ${why}`);
  };
  if (url.username || url.password) bad('credentials', 'not allowed in URIs; use the AWS SDK default chain (env, shared files, web identity)');
  if (url.hash) bad('fragment', 'not allowed');
  // URL parsing silently resolves "." and ".." segments; a repository path must not contain them.
  const rawPath = uri.replace(/^[a-z0-9+.-]+:\/\/[^/?#]*/i, '').split(/[?#]/)[0]!;
  if (rawPath.split('/').some((segment) => segment === '.' || segment === '..')) bad('path', 'has "." or ".." segments');

  const scheme = SCHEMES.get(url.protocol);
  if (!scheme) return bad('scheme', `${JSON.stringify(url.protocol.slice(0, -1))} is not supported (use ${REPOSITORY_URI_FORMS})`);
  return scheme.locate(url, bad);
}

function fileRoot(url: URL, bad: Complaint): string {
  if (url.host && url.host !== 'localhost') bad('host', `${JSON.stringify(url.host)}: file URIs name a local absolute path (file:///abs/path)`);
  if (url.search) bad('query', 'file URIs take no parameters');
  const root = decodeURIComponent(url.pathname).replace(/\/+$/, '') || '/';
  if (!isAbsolute(root)) bad('path', 'must be absolute');
  return root;
}

const S3_PARAMETERS = ['endpoint', 'region', 'forcePathStyle', 'checksum', 'partSize', 'queueSize', 'maxAttempts'] as const;

function s3OptionsFromUrl(url: URL, bad: Complaint): S3DriverOptions {
  if (!url.host) bad('bucket', 'missing (s3://bucket/prefix)');
  if (url.port) bad('bucket', 'a port belongs in the endpoint parameter');
  for (const name of url.searchParams.keys()) {
    if (!(S3_PARAMETERS as readonly string[]).includes(name)) bad(`parameter ${name}`, `unknown (known: ${S3_PARAMETERS.join(', ')})`);
  }
  const param = (name: (typeof S3_PARAMETERS)[number]) => url.searchParams.get(name) ?? undefined;
  const options: S3DriverOptions = {
    bucket: url.host,
    prefix: decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, ''),
    endpoint: param('endpoint'),
    region: param('region'),
  };
  const pathStyle = param('forcePathStyle');
  if (pathStyle !== undefined) {
    if (!/^(true|false|1|0)$/i.test(pathStyle)) bad('parameter forcePathStyle', `${JSON.stringify(pathStyle)} is not true or false`);
    options.forcePathStyle = /^(true|1)$/i.test(pathStyle);
  }
  const checksum = param('checksum');
  if (checksum !== undefined) {
    const mode = checksum.toUpperCase();
    if (mode !== 'WHEN_REQUIRED' && mode !== 'WHEN_SUPPORTED') bad('parameter checksum', `${JSON.stringify(checksum)} is not when_required or when_supported`);
    options.checksumMode = mode as S3DriverOptions['checksumMode'];
  }
  const partSize = param('partSize');
  if (partSize !== undefined) options.partSize = parseByteSize(partSize) ?? bad('parameter partSize', `${JSON.stringify(partSize)} is not a size like 16MiB`);
  for (const name of ['queueSize', 'maxAttempts'] as const) {
    const value = param(name);
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) bad(`parameter ${name}`, `${JSON.stringify(value)} is not a whole number`);
    options[name] = Number(value);
  }
  return options;
}

const UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `16MiB`, `512KiB`, `1GiB`, `5242880` → bytes; undefined when not a size. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+)\s*(b|kib|mib|gib)?$/i.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNITS[(match[2] ?? '').toLowerCase()]!;
}
