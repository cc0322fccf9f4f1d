import { IntegrityError } from '../../errors.js';
import type { StreamConfig, StreamState } from './jetstream-api.js';

/**
 * Archive entry names of a NATS stream snapshot. They are the file names `nats stream backup`
 * writes into its directory, so an extracted archive is a directory `nats stream restore` accepts.
 */
export const BACKUP_METADATA_ENTRY = 'backup.json';
export const SNAPSHOT_DATA_ENTRY = 'stream.tar.s2';

/**
 * `backup.json`: the stream's config and state at snapshot time. Same shape as jsm.go writes
 * (`{"config": …, "state": …}`, two-space indent) and as `$JS.API.STREAM.RESTORE` takes as its
 * request, so either tool restores the other's backup.
 */
export interface StreamBackupMetadata {
  config: StreamConfig;
  state: StreamState;
}

/** Largest `backup.json` accepted on restore; real ones are a few KiB. */
export const MAX_BACKUP_METADATA_BYTES = 4 * 1024 * 1024;

export function encodeBackupMetadata(metadata: StreamBackupMetadata): Buffer {
  return Buffer.from(JSON.stringify({ config: metadata.config, state: metadata.state }, null, 2));
}

/**
 * Parses and checks `backup.json`.
 * @throws IntegrityError when it is not JSON or lacks a config with a stream name or a state.
 */
export function parseBackupMetadata(bytes: Uint8Array): StreamBackupMetadata {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`nats: ${BACKUP_METADATA_ENTRY}: not valid JSON`, { cause: err });
  }
  if (!isObject(value) || !isObject(value.config) || !isObject(value.state)) {
    throw new IntegrityError(`nats: ${BACKUP_METADATA_ENTRY}: expected {"config": {...}, "state": {...}}`);
  }
  if (typeof value.config.name !== 'string' || value.config.name === '') {
    throw new IntegrityError(`nats: ${BACKUP_METADATA_ENTRY}: config has no stream name`);
  }
  // Checked above: an object with a named config and a state; the rest is the server's business.
  return { config: value.config as StreamConfig, state: value.state as StreamState };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
