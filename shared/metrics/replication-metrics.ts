import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The replication series of a worker (docs/observability.md), labelled by `database`: the
 * replica name, which comes from the job (`name`) or the database file's base name, never a path.
 * One replicator per database runs across the fleet, so the set is bounded by configuration.
 */
export class ReplicationMetrics {
  private readonly lag: Gauge<'database'>;
  private readonly walIndex: Gauge<'database'>;
  private readonly walOffset: Gauge<'database'>;
  private readonly shippedAt: Gauge<'database'>;
  private readonly generations: Counter<'database'>;
  private readonly segmentBytes: Counter<'database'>;
  /**
   * Per running replicator, the time (ms since the epoch) every commit before which is in the
   * replica: the start of its last sync, or the read time of its last segment when later (a busy
   * database keeps one sync shipping segment after segment). Lag is now minus this.
   */
  private readonly syncedFrom = new Map<string, number>();

  /** @param prefix every name starts with it (`snapworker_`, from metrics.ts, which owns this) */
  constructor(registry: Registry, prefix: string) {
    const registers = [registry];
    const syncedFrom = this.syncedFrom;
    this.lag = new Gauge({
      name: `${prefix}replication_lag_seconds`,
      help: 'Per replicated database running on this worker: age of the newest point every commit before which is in the replica (start of the last sync or read time of the last segment).',
      labelNames: ['database'],
      registers,
      // Computed at scrape time, so a replicator that stopped syncing shows a growing lag.
      collect() {
        this.reset();
        const now = Date.now();
        for (const [database, from] of syncedFrom) this.set({ database }, Math.max(0, (now - from) / 1000));
      },
    });
    this.walIndex = new Gauge({
      name: `${prefix}replication_wal_index`,
      help: 'Last shipped position per replicated database: the WAL index (restarts of the WAL within the generation).',
      labelNames: ['database'],
      registers,
    });
    this.walOffset = new Gauge({
      name: `${prefix}replication_wal_offset_bytes`,
      help: 'Last shipped position per replicated database: the byte offset in that WAL.',
      labelNames: ['database'],
      registers,
    });
    this.shippedAt = new Gauge({
      name: `${prefix}replication_shipped_timestamp_seconds`,
      help: 'Per replicated database: when the frames of the last shipped segment (or the generation snapshot) were read.',
      labelNames: ['database'],
      registers,
    });
    this.generations = new Counter({
      name: `${prefix}replication_generations_total`,
      help: 'Generations begun per replicated database by this worker (a start, a broken WAL chain, a snapshot interval).',
      labelNames: ['database'],
      registers,
    });
    this.segmentBytes = new Counter({
      name: `${prefix}replication_segment_bytes_total`,
      help: 'Bytes of WAL segments stored per replicated database by this worker.',
      labelNames: ['database'],
      registers,
    });
  }

  /** A replicator began here: its series exist from now on, counters at 0. */
  started(database: string): void {
    this.syncedFrom.set(database, Date.now());
    this.generations.inc({ database }, 0);
    this.segmentBytes.inc({ database }, 0);
  }

  /** A sync round that began at `startedAt` finished at `position`. */
  synced(database: string, startedAt: Date, position: { index: number; offset: number; at: Date }): void {
    this.syncedFrom.set(database, Math.max(this.syncedFrom.get(database) ?? 0, startedAt.getTime()));
    this.shipped(database, position);
  }

  /** A segment (or a generation's snapshot) was stored up to `position`. */
  shipped(database: string, position: { index: number; offset: number; at: Date }): void {
    this.syncedFrom.set(database, Math.max(this.syncedFrom.get(database) ?? 0, position.at.getTime()));
    this.walIndex.set({ database }, position.index);
    this.walOffset.set({ database }, position.offset);
    this.shippedAt.set({ database }, position.at.getTime() / 1000);
  }

  generationStarted(database: string): void {
    this.generations.inc({ database });
  }

  segmentStored(database: string, bytes: number): void {
    if (Number.isFinite(bytes) && bytes >= 0) this.segmentBytes.inc({ database }, bytes);
  }

  /** The replicator left this worker: its gauges go (another worker reports them now). */
  stopped(database: string): void {
    this.syncedFrom.delete(database);
    for (const gauge of [this.walIndex, this.walOffset, this.shippedAt]) gauge.remove({ database });
  }
}
