import path from 'node:path';
import { InvalidInputError } from '../errors.js';

/**
 * Where a worker finds a key-encryption key (KEK) for a repository: configured on the worker
 * (`SNAPWORKER_REPOSITORY_KEYS`, docs/encryption.md), never in job data. A source names where the
 * secret is, never the secret itself, so it may be shown in messages and `key ls`.
 * - `env:VAR`: the variable holds a key (64 hex digits, or base64 of 32 bytes) or a passphrase;
 * - `file:/abs/path`: the same in a file (a mounted Kubernetes Secret), one trailing newline ignored;
 * - `kms:KEY`: an AWS KMS key (id, ARN or `alias/...`) that wraps the repository's keys
 *   (envelope encryption; region and endpoint from the AWS SDK's default chain, e.g. `AWS_REGION`,
 *   `AWS_ENDPOINT_URL_KMS`).
 */
export type KeySource = { kind: 'env'; variable: string } | { kind: 'file'; path: string } | { kind: 'kms'; keyId: string };

const SPEC_FORMS = 'env:VAR, file:/abs/path or kms:KEY-ID';

/**
 * Parses `env:VAR`, `file:/abs/path` or `kms:KEY-ID`.
 * @throws InvalidInputError naming the spec and the accepted forms.
 */
export function parseKeySource(spec: string): KeySource {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon);
  const value = spec.slice(colon + 1);
  const bad = (why: string) => new InvalidInputError(`key source ${JSON.stringify(spec)}: ${why}`);
  switch (kind) {
    case 'env':
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw bad('expected env:VARIABLE_NAME');
      return { kind: 'env', variable: value };
    case 'file':
      if (!path.isAbsolute(value)) throw bad('expected file:/absolute/path');
      return { kind: 'file', path: value };
    case 'kms':
      if (!/^[A-Za-z0-9:/_.+=@-]{1,2048}$/.test(value)) throw bad('expected kms:KEY-ID (a key id, ARN or alias/NAME)');
      return { kind: 'kms', keyId: value };
    default:
      throw bad(`expected ${SPEC_FORMS}`);
  }
}

/** The spec form of a source (`env:VAR`), for messages and listings: never a secret. */
export function describeKeySource(source: KeySource): string {
  switch (source.kind) {
    case 'env':
      return `env:${source.variable}`;
    case 'file':
      return `file:${source.path}`;
    case 'kms':
      return `kms:${source.keyId}`;
  }
}
