import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { startS3rver, type S3rverHandle } from './s3rver.js';

/** A temp folder and an s3rver for one test file, with the repository URIs a suite runs against on both. */
export interface StorageBackends {
  /** The temp folder (set once the file's `before` hook ran). */
  root(): string;
  /** Repository URIs by driver: the filesystem and s3rver, each a fresh root per call. */
  readonly uris: Record<'fs' | 's3', () => string>;
}

/**
 * Registers `before`/`after` hooks (call at a test file's top level) that make a temp folder and
 * start s3rver, then remove and stop them.
 */
export function storageBackends(tempPrefix: string): StorageBackends {
  let root = '';
  let s3: S3rverHandle | undefined;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), tempPrefix));
    s3 = await startS3rver();
  });
  after(async () => {
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  });
  return {
    root: () => root,
    uris: {
      fs: () => `file://${path.join(root, randomUUID())}`,
      s3: () => `s3://${s3!.bucket}/${randomUUID()}?endpoint=${encodeURIComponent(s3!.endpoint)}&region=us-east-1&forcePathStyle=true&checksum=when_required`,
    },
  };
}
