import { InvalidInputError } from '../../../errors.js';

/**
 * Where a database's replica lives in a repository (docs/sqlite.md, "Replication"), after
 * Litestream's file replica:
 *
 *   replicas/<db>/generations/<gen>/generation.json                     written last: the generation exists
 *   replicas/<db>/generations/<gen>/snapshots/<index>-<offset>.db        the database at that position
 *   replicas/<db>/generations/<gen>/wal/<index>/<offset>-<time>.seg      WAL frames from that position
 *   replicas/<db>/generations/<gen>/wal/<index>/<offset>-<time>.ckpt     empty: the replicator's checkpoint
 *                                                                        moved this WAL into the database
 *                                                                        up to <offset>, so a restarted WAL
 *                                                                        continues the chain at <index>+1
 *
 * `<gen>` sorts by time (`20261129T161500123Z-1a2b3c4d`); `<index>` (8 hex digits) counts the
 * restarts of the WAL within a generation; `<offset>` (16 hex digits) is the byte offset in that
 * WAL file; `<time>` (`20261129T161500123Z`) is when the replicator read the frames, so every
 * transaction in the segment committed before it. Fixed-width hex makes key order position order.
 */
export const REPLICAS = 'replicas/';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const GENERATION = /^\d{8}T\d{9}Z-[0-9a-f]{8}$/;
const SEGMENT_FILE = /^([0-9a-f]{16})-(\d{8}T\d{9}Z)\.seg$/;
const CHECKPOINT_FILE = /^([0-9a-f]{16})-(\d{8}T\d{9}Z)\.ckpt$/;
const SNAPSHOT_FILE = /^([0-9a-f]{8})-([0-9a-f]{16})\.db$/;

/** A position in the WAL history of one generation. */
export interface WalPosition {
  index: number;
  offset: number;
}

/** One stored segment, as its key describes it. */
export interface SegmentRef extends WalPosition {
  key: string;
  size: number;
  /** When the replicator read its frames: every transaction in it committed before this. */
  readAt: Date;
}

/** @throws InvalidInputError when `name` cannot be a replica name (it becomes a key segment). */
export function checkReplicaName(name: string): string {
  if (!NAME.test(name)) {
    throw new InvalidInputError(`replica name "${name}" must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
  return name;
}

export function isGenerationId(value: string): boolean {
  return GENERATION.test(value);
}

/** When a generation began: the time its id starts with (`20261129T161500123Z-…`). */
export function generationTime(generation: string): Date {
  return parseCompactTime(generation.slice(0, 19));
}

export function generationsPrefix(db: string): string {
  return `${REPLICAS}${checkReplicaName(db)}/generations/`;
}

export function generationPrefix(db: string, generation: string): string {
  if (!isGenerationId(generation)) throw new InvalidInputError(`"${generation}" is not a generation id (expected like 20261129T161500123Z-1a2b3c4d)`);
  return `${generationsPrefix(db)}${generation}/`;
}

export function generationRecordKey(db: string, generation: string): string {
  return `${generationPrefix(db, generation)}generation.json`;
}

export function snapshotKey(db: string, generation: string, at: WalPosition): string {
  return `${generationPrefix(db, generation)}snapshots/${hex(at.index, 8)}-${hex(at.offset, 16)}.db`;
}

export function segmentsPrefix(db: string, generation: string): string {
  return `${generationPrefix(db, generation)}wal/`;
}

export function segmentKey(db: string, generation: string, at: WalPosition, readAt: Date): string {
  return `${segmentsPrefix(db, generation)}${hex(at.index, 8)}/${hex(at.offset, 16)}-${compactTime(readAt)}.seg`;
}

export function checkpointMarkerKey(db: string, generation: string, at: WalPosition, writtenAt: Date): string {
  return `${segmentsPrefix(db, generation)}${hex(at.index, 8)}/${hex(at.offset, 16)}-${compactTime(writtenAt)}.ckpt`;
}

/** The segment or checkpoint marker a key names, or undefined for any other key. */
export function parseWalObjectKey(key: string, size: number): (SegmentRef & { kind: 'segment' | 'checkpoint' }) | undefined {
  const parts = key.split('/');
  const file = parts.at(-1) ?? '';
  const indexPart = parts.at(-2) ?? '';
  if (!/^[0-9a-f]{8}$/.test(indexPart)) return undefined;
  const segment = SEGMENT_FILE.exec(file);
  const marker = segment ? undefined : CHECKPOINT_FILE.exec(file);
  const match = segment ?? marker;
  if (!match) return undefined;
  return {
    kind: segment ? 'segment' : 'checkpoint',
    key,
    size,
    index: parseInt(indexPart, 16),
    offset: parseInt(match[1]!, 16),
    readAt: parseCompactTime(match[2]!),
  };
}

/** The position a snapshot key names, or undefined for any other key. */
export function parseSnapshotKey(key: string): WalPosition | undefined {
  const match = SNAPSHOT_FILE.exec(key.split('/').at(-1) ?? '');
  return match ? { index: parseInt(match[1]!, 16), offset: parseInt(match[2]!, 16) } : undefined;
}

/** Orders positions: by index, then offset. */
export function comparePositions(a: WalPosition, b: WalPosition): number {
  return a.index - b.index || a.offset - b.offset;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function compactTime(at: Date): string {
  return at.toISOString().replace(/[-:.]/g, '');
}

function parseCompactTime(text: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/.exec(text)!;
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}
