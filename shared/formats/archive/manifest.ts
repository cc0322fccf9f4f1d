import { z } from 'zod';
import type { SnapshotManifest } from '../../snapshot/manifest.js';

/** Format name written into every manifest; readers refuse anything else. */
export const ARCHIVE_FORMAT = 'snapworker-archive';
export const ARCHIVE_FORMAT_VERSION = 1;

export type Compression = 'zstd' | 'gzip' | 'none';

/** `manifest.json`, the first entry of every archive: the snapshot's manifest plus the archive's own facts. */
export interface Manifest extends SnapshotManifest {
  format: typeof ARCHIVE_FORMAT;
  version: typeof ARCHIVE_FORMAT_VERSION;
  compression: Compression;
  /** Key id of the seal when `SHA256SUMS.seal` follows the sums. */
  sealKeyId?: string;
}

/** Names of the archive's own entries; payload paths may not use them. */
export const MANIFEST_ENTRY = 'manifest.json';
export const SUMS_ENTRY = 'SHA256SUMS';
export const SEAL_ENTRY = 'SHA256SUMS.seal';

const compressionSchema = z.enum(['zstd', 'gzip', 'none']);

/**
 * The shape of `manifest.json` as readers accept it. Unknown fields are kept (a later v1 writer
 * may add optional ones); `format` and `version` are checked separately so their errors are precise.
 */
export const manifestSchema = z.looseObject({
  format: z.literal(ARCHIVE_FORMAT),
  version: z.literal(ARCHIVE_FORMAT_VERSION),
  snapshotId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_", "-" (at most 128)'),
  createdAt: z.iso.datetime({ offset: true }),
  source: z.looseObject({
    kind: z.string().min(1),
    uri: z.string(),
    name: z.string().min(1),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  labels: z.record(z.string(), z.string()),
  compression: compressionSchema,
  tool: z.looseObject({ name: z.literal('snapworker'), version: z.string().min(1) }),
  sealKeyId: z.string().min(1).optional(),
});

/**
 * Checks a parsed `manifest.json` value. Returns the problems as one readable line per field
 * (`undefined` when the manifest is valid), so writers and readers can wrap them in their own error.
 */
export function manifestProblems(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const { format, version } = value as { format?: unknown; version?: unknown };
  if (format !== ARCHIVE_FORMAT) return `format is ${JSON.stringify(format)}, expected ${JSON.stringify(ARCHIVE_FORMAT)}`;
  if (version !== ARCHIVE_FORMAT_VERSION) return `unsupported version ${JSON.stringify(version)} (this reader knows ${ARCHIVE_FORMAT_VERSION})`;
  const result = manifestSchema.safeParse(value);
  if (!result.success) return z.prettifyError(result.error).replace(/\n\s*/g, ' ');
  if (carriesCredentials(result.data.source.uri)) return 'source.uri carries credentials (a user, password or token), which an archive must never hold';
  return undefined;
}

/** True when a URI has a user-info part (`scheme://user:pass@host`, `nats://token@host`). */
function carriesCredentials(uri: string): boolean {
  try {
    const url = new URL(uri);
    return url.username !== '' || url.password !== '';
  } catch {
    return false; // not a URL: nothing in it is read as a credential
  }
}
