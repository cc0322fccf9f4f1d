import { InvalidInputError } from '../errors.js';

/** What an upload token stands for: a server-side upload of one object. */
export interface PendingUpload {
  key: string;
  uploadId: string;
}

/**
 * Upload tokens are opaque to their keepers (the queue worker stores one on the job): base64url
 * JSON, so the repository can change what it needs to find an upload again without touching them.
 */
export function encodeUploadToken(upload: PendingUpload): string {
  return Buffer.from(JSON.stringify({ k: upload.key, u: upload.uploadId })).toString('base64url');
}

/** @throws InvalidInputError for a token that `encodeUploadToken` did not make. */
export function decodeUploadToken(token: string): PendingUpload {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const { k, u } = (value ?? {}) as { k?: unknown; u?: unknown };
  if (typeof k !== 'string' || typeof u !== 'string' || k === '' || u === '') throw new InvalidInputError('upload token: not a token this repository made');
  return { key: k, uploadId: u };
}
