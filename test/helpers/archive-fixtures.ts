/**
 * Builders for archive tests: valid payloads for the writer, and hand-crafted (often hostile)
 * archives made with tar-stream directly, bypassing the writer's checks, so readers and restore
 * targets can be tested against what an attacker or a broken disk could hand them.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Source } from '../../shared/kinds/source.js';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';
import type { SourceEntry } from '../../shared/snapshot/entry.js';
import type { Compression, Manifest } from '../../shared/formats/archive/manifest.js';
import type { SealKey } from '../../shared/formats/archive/seal.js';

/** A valid manifest; override any field. */
/** A manifest for restoring `source`'s entries straight into a target in tests (no archive in between). */
export function manifestFor(source: Source): Manifest {
  return testManifest({ snapshotId: 'test', source: source.descriptor, labels: {}, compression: 'none' });
}

export function testManifest(overrides: Partial<Manifest> = {}): Manifest {
  return {
    format: 'snapworker-archive',
    version: 1,
    snapshotId: '01JTESTSNAPSHOT',
    createdAt: '2025-01-02T03:04:05.000Z',
    source: { kind: 'dir', uri: 'dir:///srv/app', name: 'app' },
    labels: { app: 'demo' },
    compression: 'zstd',
    tool: { name: 'snapworker', version: '0.0.0-test' },
    ...overrides,
  };
}

/** A payload entry for the writer, with its bytes held in memory. */
export interface MemoryEntry extends SourceEntry {
  data?: Buffer;
}

const MTIME = new Date('2024-06-01T12:00:00.000Z');

/** A file entry whose bytes are `data`, streamed in chunks of `chunkBytes` (default 64 KiB). */
export function fileEntry(path: string, data: Buffer | string, options: { mode?: number; mtime?: Date; chunkBytes?: number } = {}): MemoryEntry {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  return {
    path,
    type: 'file',
    mode: options.mode ?? 0o644,
    mtime: options.mtime ?? MTIME,
    size: bytes.length,
    data: bytes,
    open: () => Readable.from(chunked(bytes, chunkBytes)),
  };
}

export function directoryEntry(path: string, mode = 0o755): MemoryEntry {
  return { path, type: 'directory', mode, mtime: MTIME, size: 0 };
}

export function symlinkEntry(path: string, linkTarget: string): MemoryEntry {
  return { path, type: 'symlink', mode: 0o777, mtime: MTIME, size: 0, linkTarget };
}

function* chunked(bytes: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** Deterministic pseudo-random bytes (xorshift), compressible only a little, like real data. */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0x3f; // 6 bits of entropy per byte
  }
  return bytes;
}

/**
 * A mixed directory payload: nested directories, an empty file, a text file, a file larger than
 * one chunk, a path longer than 100 bytes and a non-ASCII one (both need pax headers), modes and
 * a relative symlink.
 */
export function mixedEntries(): MemoryEntry[] {
  const deep = `data/${'nested-directory-name/'.repeat(5)}file-with-a-long-name.txt`;
  return [
    directoryEntry('data'),
    directoryEntry('data/etc', 0o750),
    fileEntry('data/etc/app.conf', 'listen = 8080\n', { mode: 0o640 }),
    fileEntry('data/empty', ''),
    fileEntry('data/blob.bin', pseudoRandomBytes(300_000, 7), { chunkBytes: 50_000 }),
    fileEntry('data/run.sh', '#!/bin/sh\necho hi\n', { mode: 0o755 }),
    directoryEntry(deep.slice(0, deep.lastIndexOf('/'))),
    fileEntry(deep, 'deep\n'),
    fileEntry('data/grüße.txt', 'hallo\n'),
    symlinkEntry('data/current.conf', 'etc/app.conf'),
  ];
}

export async function* asAsync<T>(items: Iterable<T>): AsyncIterable<T> {
  yield* items;
}

/** One raw tar entry for crafted archives. `data` only for files; any tar type is allowed. */
export interface RawEntry {
  name: string;
  type?: tar.Header['type'];
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `SHA256SUMS` text for the regular-file entries among `entries`. */
export function sumsFor(entries: RawEntry[]): string {
  return entries
    .filter((entry) => (entry.type ?? 'file') === 'file')
    .map((entry) => `${sha256Hex(entry.data ?? '')}  ${entry.name}\n`)
    .join('');
}

/** The `SHA256SUMS.seal` document for `sums` under `seal`. */
export function sealFor(sums: string, seal: SealKey): string {
  const mac = createHmac('sha256', seal.key).update(sums).digest('hex');
  return JSON.stringify({ alg: 'HMAC-SHA256', keyId: seal.keyId, mac }) + '\n';
}

/** A tar made by tar-stream from `entries` as given (no checks), with the end-of-archive marker unless `endMarker` is false. */
export async function buildTar(entries: RawEntry[], options: { endMarker?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  })();
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = {
      name: entry.name,
      type,
      mode: entry.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: MTIME,
      linkname: entry.linkname,
      devmajor: entry.devmajor,
      devminor: entry.devminor,
    };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, typeof entry.data === 'string' ? Buffer.from(entry.data) : (entry.data ?? Buffer.alloc(0)), done);
      else pack.entry(header, done).end(undefined);
    });
  }
  pack.finalize();
  const bytes = await collected;
  return options.endMarker === false ? bytes.subarray(0, bytes.length - 1024) : bytes;
}

export function compressBytes(bytes: Buffer, compression: Compression): Buffer {
  switch (compression) {
    case 'zstd':
      return zstdCompress(bytes);
    case 'gzip':
      return gzipSync(bytes);
    case 'none':
      return bytes;
  }
}

export interface CraftOptions {
  compression?: Compression;
  /** Manifest fields to override (or the raw manifest text to store). */
  manifest?: Partial<Manifest> | string;
  /** Replaces the computed `SHA256SUMS` text. */
  sums?: string;
  /** Seals the sums (the manifest gets `sealKeyId`), or stores this exact seal text. */
  seal?: SealKey | { raw: string; keyId: string };
  /** Entries placed after the sums (and seal). */
  after?: RawEntry[];
  /** Entries placed before manifest.json. */
  before?: RawEntry[];
  /** Bytes appended after the tar's end marker, before compression. */
  trailingTar?: Buffer;
  /** Bytes appended after the compressed stream. */
  trailingCompressed?: Buffer;
  endMarker?: boolean;
}

/**
 * An archive laid out like the writer's (manifest, `payload`, SHA256SUMS computed over the
 * regular files, optional seal), but built without any of its checks, so each option can break
 * exactly one rule.
 */
export async function craftArchive(payload: RawEntry[], options: CraftOptions = {}): Promise<Buffer> {
  const compression = options.compression ?? 'zstd';
  const sealKeyId = options.seal ? options.seal.keyId : undefined;
  const manifestText =
    typeof options.manifest === 'string'
      ? options.manifest
      : JSON.stringify(testManifest({ compression, ...(sealKeyId ? { sealKeyId } : {}), ...options.manifest }), null, 2) + '\n';
  const head: RawEntry[] = [...(options.before ?? []), { name: 'manifest.json', data: manifestText }, ...payload];
  const sums = options.sums ?? sumsFor(head);
  const entries: RawEntry[] = [...head, { name: 'SHA256SUMS', data: sums }];
  if (options.seal) entries.push({ name: 'SHA256SUMS.seal', data: 'raw' in options.seal ? options.seal.raw : sealFor(sums, options.seal) });
  entries.push(...(options.after ?? []));
  let tarBytes = await buildTar(entries, { endMarker: options.endMarker });
  if (options.trailingTar) tarBytes = Buffer.concat([tarBytes, options.trailingTar]);
  const compressed = compressBytes(tarBytes, compression);
  return options.trailingCompressed ? Buffer.concat([compressed, options.trailingCompressed]) : compressed;
}
