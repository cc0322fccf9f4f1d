import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { AbortedError, InvalidInputError, isRetryable, NotFoundError, SnapworkerError, throwIfAborted } from '../../../errors.js';
import { newSnapshotId } from '../../../ids.js';
import { createStagingDir } from '../../../fsutil/staging-dir.js';
import { isBusyError } from '../sqlite-error-codes.js';
import { generationTime } from './replica-layout.js';
import { ReplicaStore } from './replica-store.js';
import { checkSegmentFrames, SEGMENT_HEADER_SIZE } from './segment-format.js';
import { SyncWalFile } from './sync-wal-file.js';
import { findCommittedEnd, frameChecksumEndingAt, readCommittedRun, readWalHeader, type ChainPoint, type CommittedRun, type WalFile } from './wal-reader.js';
import { WAL_HEADER_SIZE, sameChecksum, type WalChecksum, type WalHeader } from './wal-format.js';

/** How a replicator paces itself. */
export interface ReplicatorOptions {
  /** Directory for the snapshot copy a new generation uploads (needs the database's size). Required. */
  stagingDir: string;
  /** How often a sync begins, in ms (the pause after a sync is the rest of the interval). Default 1000. */
  intervalMs?: number;
  /**
   * WAL size in bytes past which a sync checkpoints. Default 4 MiB (about 1,000 pages: SQLite's
   * own automatic checkpoint, Litestream's `MinCheckpointPageN`).
   */
  checkpointBytes?: number;
  /**
   * WAL size in bytes past which the checkpoint lets the WAL restart: it takes the write lock for
   * a moment, ships the last frames and checkpoints with no read transaction of its own open.
   * Below it (when set above `checkpointBytes`), a checkpoint runs while the replicator's read
   * transaction stays open: it copies shipped frames into the database, takes no lock the
   * application waits for, and cannot restart the WAL. Default 4 MiB, the same as
   * `checkpointBytes`: every checkpoint lets the WAL restart, as Litestream's do (`db.go`
   * `checkpointWithExecutor`), so the WAL stays the size it has without replication and the
   * application's automatic checkpoint stops being retried after every commit sooner.
   */
  restartBytes?: number;
  /**
   * Age in ms of the WAL (since its last restart by the replicator, or since the replicator
   * started) past which a WAL above `checkpointBytes` is restarted too, when `restartBytes` is
   * larger. Default 60 s (Litestream's `CheckpointInterval`).
   */
  restartIntervalMs?: number;
  /** Frames read per segment, in bytes; a larger transaction goes whole into one segment. Default 16 MiB. */
  maxSegmentBytes?: number;
  /** SQLite's own wait for a lock per attempt, in ms (it blocks the event loop, so short). Default 100. */
  busyTimeoutMs?: number;
  /** How long a new generation keeps trying to take the write lock it needs for a moment. Default 30 s. */
  lockWaitMs?: number;
  /**
   * Age in ms after which the next sync begins a new generation (reason `snapshot interval`) once
   * everything committed is shipped, so retention can drop the older one and its segments (the
   * unit retention removes is a generation). Default: never.
   */
  snapshotIntervalMs?: number;
  /** Told what happens, for logs, events and metrics; must not throw. */
  onEvent?: (event: ReplicationEvent) => void;
}

const DEFAULTS = {
  intervalMs: 1000,
  checkpointBytes: 4 * 1024 * 1024,
  restartBytes: 4 * 1024 * 1024,
  restartIntervalMs: 60_000,
  maxSegmentBytes: 16 * 1024 * 1024,
  busyTimeoutMs: 100,
  lockWaitMs: 30_000,
  snapshotIntervalMs: Infinity,
};

/** The replicator's last shipped position: everything committed up to it is in the replica. */
export interface ShippedPosition {
  generation: string;
  index: number;
  offset: number;
  at: Date;
}

export type ReplicationEvent =
  | { type: 'generation'; generation: string; reason: string; snapshotBytes: number }
  | { type: 'resumed'; position: ShippedPosition }
  | { type: 'segment'; position: ShippedPosition; bytes: number }
  /**
   * A checkpoint ran: `restart` when it was the locked one that lets the WAL restart (`complete`
   * when it moved the whole WAL), with how long the application's writers were held off.
   */
  | { type: 'checkpoint'; generation: string; index: number; restart: boolean; complete: boolean; lockedMs?: number }
  /** A sync round finished: everything committed before `startedAt` is in the replica. */
  | { type: 'synced'; startedAt: Date; position: ShippedPosition }
  | { type: 'error'; message: string };

/** Where the chain of shipped frames stands. */
interface ChainState {
  generation: string;
  index: number;
  /** WAL offset shipped up to; 0 when the WAL was empty at the snapshot (any new WAL continues the chain). */
  offset: number;
  /** The WAL the shipped frames belong to, and the running checksum after the last one; absent at offset 0. */
  wal?: ShippedWal;
  /** A checkpoint of ours moved the whole WAL into the database up to `offset`: a restarted WAL continues at index + 1. */
  backfilled: boolean;
}

/** The WAL a chain's frames come from: its salts and restart count, and the running checksum. */
interface ShippedWal {
  salt1: number;
  salt2: number;
  checkpointSequence: number;
  checksum: WalChecksum;
}

/** What the live WAL says about the chain: continue from a point, nothing new, or broken. */
type Continuation = { from: ChainPoint; index: number } | { idle: true } | { broken: string };

/**
 * Continuous replication of one SQLite database in WAL mode into a `ReplicaStore`, after
 * Litestream (`db.go`, `replica.go` before its LTX format):
 *
 * - A read transaction stays open at all times (two connections take turns, so there is never a
 *   moment without one): it keeps other connections' checkpoints from restarting the WAL and
 *   overwriting frames not shipped yet. Our own connections never checkpoint on their own.
 * - Each sync reads the frames after the last shipped position, checks their salts and running
 *   checksum, and stores those up to the last commit frame as one segment: whole transactions only.
 * - Checkpoints follow Litestream's policy (`db.go` `checkpointIfNeeded` and
 *   `checkpointWithExecutor`, 2026): past `MinCheckpointPageN` (1,000 pages) a PASSIVE checkpoint
 *   with Litestream's read lock released, under a write-lock barrier, so the WAL restarts; its
 *   RESTART mode was removed (Litestream issue #724: writers blocked indefinitely). Past
 *   `restartBytes` (default: `checkpointBytes`, 4 MiB), or past `checkpointBytes` once the WAL is
 *   `restartIntervalMs` old, a sync lets the WAL restart: twice without a lock it pins a read
 *   transaction at the WAL's end, ships every frame up to it and runs a PASSIVE checkpoint; then
 *   it takes the write lock for a moment, reads the last frames, runs a PASSIVE checkpoint with no
 *   read transaction of ours, releases the lock, then stores those frames; when that checkpoint
 *   moved the whole WAL, a marker records it, so the WAL the next writer restarts (new salts)
 *   continues the chain at the next index. Unlike Litestream, the bulk of the copy runs before the
 *   lock, not under it. With `restartBytes` set above `checkpointBytes`, syncs in between run a
 *   PASSIVE checkpoint with the read transaction still open, so it copies only shipped frames and
 *   cannot restart the WAL; nobody waits for it.
 * - Anything else that breaks the chain (other salts without our checkpoint, a checksum that no
 *   longer matches at the shipped offset, a truncated WAL, a replaced database file) starts a new
 *   generation with a fresh snapshot instead of shipping a broken chain.
 *
 * It writes to the database only through SQLite (checkpoints), so it needs read-write access to
 * the database, its folder and its `-wal`/`-shm`; it refuses databases not in WAL mode.
 */
export class SqliteReplicator {
  private readonly opts: Required<Omit<ReplicatorOptions, 'onEvent'>> & Pick<ReplicatorOptions, 'onEvent'>;
  private readonly what: string;
  /** Takes the write lock for a moment (BEGIN IMMEDIATE) so no commit slips in. */
  private control?: Database.Database;
  /** Runs our checkpoints (a connection inside a transaction cannot). */
  private checkpointer?: Database.Database;
  /** Read-only, so closing them never checkpoints or deletes a WAL (see `closeConnections`). */
  private pins: Database.Database[] = [];
  private activePin = 0;
  private identity?: { dev: number; ino: number };
  private chain?: ChainState;
  /** When the WAL the chain is in last restarted after a checkpoint of ours, or when we first saw it (ms since the epoch). */
  private walSince = Date.now();
  private lastShipped?: ShippedPosition;

  constructor(
    readonly dbPath: string,
    readonly store: ReplicaStore,
    options: ReplicatorOptions,
  ) {
    this.opts = { ...DEFAULTS, ...options };
    this.what = `sqlite replicate ${dbPath}`;
    if (!path.isAbsolute(dbPath)) throw new InvalidInputError(`${this.what}: the database path must be absolute`);
  }

  /** The last position whose frames are stored, if any. */
  get position(): ShippedPosition | undefined {
    return this.lastShipped;
  }

  /**
   * Syncs every `intervalMs` until `signal` fires, then ships what is committed and closes;
   * resolves (does not throw) when it stops because `signal` fired. Retryable failures (storage,
   * a busy lock, the file missing for a while) are reported as `error` events and retried at the
   * next interval; others end the run.
   * @throws InvalidInputError for a database that is missing, not SQLite or not in WAL mode.
   */
  async run(signal: AbortSignal): Promise<void> {
    try {
      let startedAt = new Date();
      for (let round = 0; !signal.aborted; round++) {
        // Rounds begin every interval, as Litestream's monitor ticker: a slow round (storage, a
        // loaded disk) shortens the pause after it instead of adding to the lag.
        if (round > 0) await sleep(Math.max(0, this.opts.intervalMs - (Date.now() - startedAt.getTime())), undefined, { signal }).catch(() => undefined);
        if (signal.aborted) break;
        try {
          startedAt = new Date();
          await this.sync(signal);
          if (this.lastShipped) this.opts.onEvent?.({ type: 'synced', startedAt, position: this.lastShipped });
        } catch (err) {
          // Cancelling is how a replicator stops: `close` below ships what is committed.
          if (signal.aborted) break;
          if (!isRetryable(err)) throw err;
          this.opts.onEvent?.({ type: 'error', message: (err as Error).message });
        }
      }
    } finally {
      await this.close();
    }
  }

  /**
   * One round: opens the database on first use (resuming the chain from the store, else starting
   * a generation), ships the committed frames, checkpoints past the threshold.
   */
  async sync(signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    if (!this.control) {
      await this.openConnections();
      this.chain = await this.resumeFromStore(signal);
      if (this.chain && this.lastShipped) this.opts.onEvent?.({ type: 'resumed', position: this.lastShipped });
    } else if (await this.replaced()) {
      this.closeConnections();
      await this.openConnections();
      return this.startGeneration('the database file was replaced', signal);
    }
    if (!this.chain) return this.startGeneration('start', signal);
    this.pin();
    const handle = await openWal(this.dbPath);
    try {
      const next = await this.continuation(handle);
      if ('broken' in next) return await this.startGeneration(next.broken, signal);
      // Up to what the WAL held when the round began: frames committed while we store them wait
      // for the next round, so a busy database gets one segment per interval instead of a chase
      // of small ones (each a put with its fsyncs), which cost the writer half its throughput.
      if ('from' in next) await this.shipFrom(handle!, next.from, next.index, signal, (await handle!.stat()).size);
      // The shipped offset, not the file's size: a restarted WAL keeps its old length, and its
      // stale frames past the new ones are not there to checkpoint (Litestream issue #997).
      // Once moved into the database, the WAL waits for the application's next write to restart it.
      const walBytes = this.chain!.offset;
      if (!this.chain!.backfilled && walBytes >= this.opts.checkpointBytes) {
        const restart = walBytes >= this.opts.restartBytes || Date.now() - this.walSince >= this.opts.restartIntervalMs;
        if (restart) await this.restartCheckpoint(signal);
        else this.passiveCheckpoint();
      }
    } finally {
      await handle?.close();
    }
    // After shipping, so the old generation reaches up to the new one's snapshot without a gap.
    if (Date.now() - generationTime(this.chain!.generation).getTime() >= this.opts.snapshotIntervalMs) {
      await this.startGeneration('snapshot interval', signal);
    }
  }

  /** Ships what is committed, checkpoints when it can, and releases every connection. */
  async close(): Promise<void> {
    if (!this.control) return;
    try {
      // Best effort: a failure here (storage down, the file gone) must not hide why the run ended.
      if (this.chain && !(await this.replaced().catch(() => true))) await this.restartCheckpoint(undefined).catch(() => undefined);
    } finally {
      this.closeConnections();
    }
  }

  private async openConnections(): Promise<void> {
    const info = await stat(this.dbPath).catch((cause) => {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${this.what}: no such file`, { cause });
      throw new SnapworkerError(`${this.what}: ${(cause as Error).message}`, { cause });
    });
    if (!info.isFile()) throw new InvalidInputError(`${this.what}: not a regular file`);
    const connect = (readonly: boolean) => {
      const db = new Database(this.dbPath, { readonly, fileMustExist: true, timeout: this.opts.busyTimeoutMs });
      // Checkpoints are ours to run, when every frame is shipped.
      db.pragma('wal_autocheckpoint = 0');
      return db;
    };
    try {
      this.control = connect(false);
      const mode = String(this.control.pragma('journal_mode', { simple: true }));
      if (mode !== 'wal') {
        throw new InvalidInputError(`${this.what}: the database is in ${mode} journal mode; replication needs WAL mode (PRAGMA journal_mode=WAL)`);
      }
      this.checkpointer = connect(false);
      this.pins = [connect(true), connect(true)];
    } catch (err) {
      this.closeConnections();
      if (err instanceof SnapworkerError) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (code === 'SQLITE_NOTADB') throw new InvalidInputError(`${this.what}: not an SQLite database`, { cause: err });
      throw new SnapworkerError(`${this.what}: open: ${(err as Error).message}`, { cause: err });
    }
    this.identity = { dev: info.dev, ino: info.ino };
  }

  /**
   * Closes the read-write connections while a read-only one still holds its shared lock, then the
   * read-only ones. SQLite's last connection to close checkpoints the WAL and deletes it *by path*;
   * after the database file was replaced, that path holds the new database's WAL, which a
   * read-write close would delete. A read-only connection cannot take the lock that needs.
   */
  private closeConnections(): void {
    try {
      this.pins[0]?.exec('SELECT count(*) FROM sqlite_schema');
    } catch {
      // The shared lock is held from the connection's first read; this only makes sure of it.
    }
    for (const db of [this.control, this.checkpointer, ...this.pins]) {
      try {
        db?.close();
      } catch {
        // Closing is best effort: a connection that cannot close holds nothing we still need.
      }
    }
    this.pins = [];
    this.control = undefined;
    this.checkpointer = undefined;
  }

  /** True when the path now names another file than the one our connections have open. */
  private async replaced(): Promise<boolean> {
    const info = await stat(this.dbPath).catch(() => undefined);
    if (!info) throw new SnapworkerError(`${this.what}: the database file vanished`);
    return info.dev !== this.identity?.dev || info.ino !== this.identity?.ino;
  }

  /** Begins a read transaction on the idle pin connection, then ends the other one's. */
  private pin(): void {
    const next = this.pins[1 - this.activePin]!;
    next.exec('BEGIN');
    // BEGIN is deferred; the first read takes the WAL read mark that holds checkpoints back.
    next.prepare('SELECT count(*) FROM sqlite_schema').get();
    const previous = this.pins[this.activePin]!;
    if (previous.inTransaction) previous.exec('COMMIT');
    this.activePin = 1 - this.activePin;
  }

  private unpinAll(): void {
    for (const db of this.pins) if (db.inTransaction) db.exec('COMMIT');
  }

  /** Decides how the live WAL continues the shipped chain (see the class comment). */
  private async continuation(handle: WalFile | undefined): Promise<Continuation> {
    const chain = this.chain!;
    const header = handle ? await readWalHeader(handle) : undefined;
    if (!header) {
      if (chain.offset === 0 || chain.backfilled) return { idle: true };
      return { broken: 'the WAL was truncated behind the replicator (a TRUNCATE checkpoint by another connection, or a deleted WAL)' };
    }
    const start: ChainPoint = { header, offset: WAL_HEADER_SIZE, checksum: header.checksum };
    if (!chain.wal) return { from: start, index: chain.index };
    if (header.salt1 === chain.wal.salt1 && header.salt2 === chain.wal.salt2 && header.checkpointSequence === chain.wal.checkpointSequence) {
      const stored = chain.offset === WAL_HEADER_SIZE ? header.checksum : await frameChecksumEndingAt(handle!, chain.offset, header.pageSize);
      if (stored && sameChecksum(stored, chain.wal.checksum)) return { from: { header, offset: chain.offset, checksum: chain.wal.checksum }, index: chain.index };
      return { broken: `the WAL was rewritten behind the replicator (checksum mismatch at offset ${chain.offset})` };
    }
    // SQLite adds one to salt-1 and to the checkpoint sequence at each restart of the WAL: exactly
    // one more than ours means the WAL restarted once, after our checkpoint had moved all of it.
    if (chain.backfilled && header.salt1 === ((chain.wal.salt1 + 1) >>> 0) && header.checkpointSequence === ((chain.wal.checkpointSequence + 1) >>> 0)) {
      return { from: start, index: chain.index + 1 };
    }
    return { broken: 'the WAL was restarted behind the replicator (new salts) before every frame was shipped' };
  }

  /**
   * Ships the committed frames in the WAL now, up to the WAL's end at the call (a fast writer
   * would otherwise keep it chasing); 'broken' when the WAL no longer continues the chain.
   */
  private async shipAvailable(signal: AbortSignal | undefined): Promise<'shipped' | 'broken'> {
    const handle = await openWal(this.dbPath);
    try {
      const next = await this.continuation(handle);
      if ('broken' in next) return 'broken';
      if ('from' in next) await this.shipFrom(handle!, next.from, next.index, signal, (await handle!.stat()).size);
      return 'shipped';
    } finally {
      await handle?.close();
    }
  }

  /** Stores the committed runs after `from` as segments of `index`, those starting before `untilOffset`. */
  private async shipFrom(handle: WalFile, from: ChainPoint, index: number, signal?: AbortSignal, untilOffset = Infinity): Promise<void> {
    for await (const pending of committedRuns(handle, from, index, this.opts.maxSegmentBytes, untilOffset, signal)) await this.storeSegment(pending, signal);
  }

  /** Stores one run read from the WAL as a segment and moves the chain past it. */
  private async storeSegment(pending: PendingSegment, signal?: AbortSignal): Promise<void> {
    const { from, index, run, readAt } = pending;
    const generation = this.chain!.generation;
    const segmentHeader = {
      pageSize: from.header.pageSize,
      checkpointSequence: from.header.checkpointSequence,
      salt1: from.header.salt1,
      salt2: from.header.salt2,
      previousChecksum: from.checksum,
      bigEndianChecksum: from.header.bigEndianChecksum,
    };
    const bytes = await this.store.putSegment(generation, { index, offset: from.offset }, readAt, segmentHeader, run.bytes, { signal });
    this.chain = { generation, index, offset: run.end.offset, wal: walOf(from.header, run.end.checksum), backfilled: false };
    this.lastShipped = { generation, index, offset: run.end.offset, at: readAt };
    this.opts.onEvent?.({ type: 'segment', position: this.lastShipped, bytes });
  }

  /**
   * A PASSIVE checkpoint while our read transaction stays open: SQLite copies frames up to that
   * transaction's snapshot (all shipped: it began before this round read the WAL) and cannot
   * restart the WAL under it. No lock that the application waits for; a busy checkpoint lock
   * (the application's own checkpoint running) only makes it copy nothing this round.
   */
  private passiveCheckpoint(): void {
    this.checkpointer!.pragma('wal_checkpoint(PASSIVE)');
    const chain = this.chain!;
    this.opts.onEvent?.({ type: 'checkpoint', generation: chain.generation, index: chain.index, restart: false, complete: false });
  }

  /**
   * Lets the WAL restart: with the write lock held for a moment (so no commit slips in), reads
   * the last committed frames and runs a PASSIVE checkpoint with no read transaction of ours
   * open; releases the lock, then stores those frames and, when the checkpoint moved the whole
   * WAL, the checkpoint marker. A busy lock skips this round.
   *
   * First, twice and without the lock: a read transaction is pinned at the WAL's end, every frame
   * up to it is shipped, and a PASSIVE checkpoint runs (see `passiveCheckpoint`), so the locked
   * step copies only what came since. Nothing slow happens under the lock: no storage write and
   * no fsync of ours; only the checkpoint's own two fsyncs of what is left. If this process dies
   * between the lock's release and the stored segment, the next replicator finds the WAL
   * restarted without a marker and starts a new generation (nothing is lost).
   * Measured: with the whole copy and the storage writes under the lock, a writer at full speed
   * lost about half its throughput (docs/benchmarks.md).
   */
  private async restartCheckpoint(signal: AbortSignal | undefined): Promise<void> {
    for (let pass = 0; pass < 2; pass++) {
      this.pin();
      if ((await this.shipAvailable(signal)) === 'broken') return; // the next sync starts a generation
      this.checkpointer!.pragma('wal_checkpoint(PASSIVE)');
    }
    const control = this.control!;
    try {
      control.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if (isBusyError(err)) return;
      throw err;
    }
    const lockedAt = performance.now();
    let tail: PendingSegment[] = [];
    let result: { busy: number; log: number; checkpointed: number } | undefined;
    try {
      // Synchronous reads while the lock is held (see SyncWalFile).
      const handle = SyncWalFile.open(this.dbPath);
      try {
        const next = await this.continuation(handle);
        if ('broken' in next) return;
        // Under the lock the WAL cannot grow: these are the few frames committed since the pass above.
        if ('from' in next) for await (const pending of committedRuns(handle!, next.from, next.index, this.opts.maxSegmentBytes, Infinity, signal)) tail.push(pending);
      } finally {
        handle?.close();
      }
      this.unpinAll();
      [result] = this.checkpointer!.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    } finally {
      if (this.pins.every((db) => !db.inTransaction)) this.pin();
      control.exec('ROLLBACK');
    }
    const lockedMs = performance.now() - lockedAt;
    for (const pending of tail) await this.storeSegment(pending, signal);
    tail = [];
    const chain = this.chain!;
    const complete = !!result && result.busy === 0 && result.log === result.checkpointed && chain.offset > 0;
    if (complete) {
      await this.store.putCheckpointMarker(chain.generation, { index: chain.index, offset: chain.offset }, { signal });
      this.chain = { ...chain, backfilled: true };
      this.walSince = Date.now();
    }
    this.opts.onEvent?.({ type: 'checkpoint', generation: chain.generation, index: chain.index, restart: true, complete, lockedMs });
  }

  /**
   * Starts a generation: with the write lock held for a moment, finds the end of the committed
   * WAL and pins a read transaction there; then copies the database as of that read transaction,
   * stores it, and writes the generation's record last.
   */
  private async startGeneration(reason: string, signal?: AbortSignal): Promise<void> {
    const control = this.control!;
    await this.takeWriteLock(control, signal);
    let point: ChainPoint | undefined;
    try {
      // Synchronous reads while the lock is held (see SyncWalFile).
      const handle = SyncWalFile.open(this.dbPath);
      try {
        const header = handle ? await readWalHeader(handle) : undefined;
        point = header ? await findCommittedEnd(handle!, header, this.opts.maxSegmentBytes) : undefined;
      } finally {
        handle?.close();
      }
      this.unpinAll();
      this.pin();
    } finally {
      control.exec('ROLLBACK');
    }
    const generation = newSnapshotId();
    const at = { index: 0, offset: point?.offset ?? 0 };
    const staging = await createStagingDir(this.opts.stagingDir, 'replicate-');
    try {
      const copyPath = path.join(staging.path, 'snapshot.db');
      const pinned = this.pins[this.activePin]!;
      await pinned.backup(copyPath, {
        progress: () => {
          throwIfAborted(signal);
          return 4096;
        },
      });
      const pageSize = pinned.pragma('page_size', { simple: true }) as number;
      const stored = await this.store.putSnapshot(generation, at, copyPath, { signal });
      const createdAt = new Date();
      await this.store.putGeneration(
        {
          v: 1,
          generation,
          database: this.store.name,
          path: this.dbPath,
          createdAt: createdAt.toISOString(),
          reason,
          pageSize,
          snapshot: {
            ...stored,
            ...at,
            ...(point
              ? {
                  salt1: point.header.salt1,
                  salt2: point.header.salt2,
                  checkpointSequence: point.header.checkpointSequence,
                  checksum: [point.checksum[0], point.checksum[1]] as [number, number],
                }
              : {}),
          },
        },
        // Not abortable: once the record is stored the chain must move to it, or a stop right
        // then would ship the rest into the old generation while restores pick the new one.
        {},
      );
      this.chain = {
        generation,
        ...at,
        ...(point ? { wal: walOf(point.header, point.checksum) } : {}),
        backfilled: false,
      };
      this.lastShipped = { generation, ...at, at: createdAt };
      this.walSince = Date.now();
      this.opts.onEvent?.({ type: 'generation', generation, reason, snapshotBytes: stored.size });
    } finally {
      await staging.remove();
    }
  }

  private async takeWriteLock(control: Database.Database, signal?: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    for (let delayMs = 10; ; delayMs = Math.min(delayMs * 2, 500)) {
      throwIfAborted(signal);
      try {
        control.exec('BEGIN IMMEDIATE');
        return;
      } catch (err) {
        if (!isBusyError(err)) throw err;
        if (Date.now() - startedAt > this.opts.lockWaitMs) {
          throw new SnapworkerError(`${this.what}: new generation: the write lock stayed busy for ${this.opts.lockWaitMs / 1000} s`, { cause: err });
        }
        await sleep(delayMs * (0.5 + Math.random() / 2), undefined, { signal }).catch(() => {
          throw new AbortedError(`${this.what}: aborted`);
        });
      }
    }
  }

  /**
   * The chain as the store left it (a replicator that died, or the one before a restart): the
   * newest generation's last segment, or its snapshot when it has none.
   */
  private async resumeFromStore(signal?: AbortSignal): Promise<ChainState | undefined> {
    const generation = (await this.store.generations({ signal })).at(-1);
    if (!generation) return undefined;
    const record = await this.store.readGeneration(generation, { signal });
    const objects = await this.store.walObjects(generation, { signal });
    const last = objects.at(-1);
    const lastSegment = objects.filter((o) => o.kind === 'segment').at(-1);
    let state: ChainState;
    if (!lastSegment) {
      const { snapshot } = record;
      const known = snapshot.checksum && snapshot.salt1 !== undefined && snapshot.salt2 !== undefined && snapshot.checkpointSequence !== undefined;
      state = {
        generation,
        index: snapshot.index,
        offset: snapshot.offset,
        ...(known ? { wal: { salt1: snapshot.salt1!, salt2: snapshot.salt2!, checkpointSequence: snapshot.checkpointSequence!, checksum: snapshot.checksum! } } : {}),
        backfilled: false,
      };
    } else {
      const { header, checksum } = checkSegmentFrames(await this.store.readObject(lastSegment.key, { signal }), lastSegment.key);
      state = {
        generation,
        index: lastSegment.index,
        offset: lastSegment.offset + (lastSegment.size - SEGMENT_HEADER_SIZE),
        wal: { salt1: header.salt1, salt2: header.salt2, checkpointSequence: header.checkpointSequence, checksum },
        backfilled: false,
      };
    }
    if (last?.kind === 'checkpoint' && last.index === state.index && last.offset === state.offset) state.backfilled = true;
    this.lastShipped = { generation, index: state.index, offset: state.offset, at: last?.readAt ?? new Date(record.createdAt) };
    return state;
  }
}

/** A committed run read from the WAL, not stored yet. */
interface PendingSegment {
  from: ChainPoint;
  index: number;
  run: CommittedRun;
  /** When it was read: every transaction in it committed before. */
  readAt: Date;
}

/** The committed runs after `from`, one per `maxBytes` or so, those starting before `untilOffset`. */
async function* committedRuns(handle: WalFile, from: ChainPoint, index: number, maxBytes: number, untilOffset: number, signal?: AbortSignal): AsyncGenerator<PendingSegment> {
  for (;;) {
    throwIfAborted(signal);
    if (from.offset >= untilOffset) return;
    const readAt = new Date();
    const run = await readCommittedRun(handle, from, maxBytes);
    if (!run) return;
    yield { from, index, run, readAt };
    from = run.end;
  }
}

function walOf(header: WalHeader, checksum: WalChecksum): ShippedWal {
  return { salt1: header.salt1, salt2: header.salt2, checkpointSequence: header.checkpointSequence, checksum };
}

/** The open `-wal` file, or undefined when there is none. */
async function openWal(dbPath: string): Promise<FileHandle | undefined> {
  try {
    return await open(`${dbPath}-wal`, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
