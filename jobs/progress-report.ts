/** Phases a job goes through, reported with progress. */
export type Phase = 'preparing' | 'reading' | 'uploading' | 'downloading' | 'writing' | 'verifying' | 'committing';

/** A progress report as it goes out on the job, on NATS and to the CLI progress bar. */
export interface ProgressReport {
  phase: Phase;
  bytesDone: number;
  bytesTotal?: number;
  entriesDone: number;
  bytesPerSecond: number;
  etaSeconds?: number;
  /** Archive bytes moved to or from the repository so far (uploaded or downloaded). */
  bytesTransferred?: number;
  /**
   * Snapshots into a deduplicating format (chunked): of the bytes read so far, those stored as new
   * blobs (before compression), and those not stored again (already in the repository, or in a
   * file unchanged since the parent snapshot). Absent for formats that do not deduplicate.
   */
  bytesNew?: number;
  bytesDeduplicated?: number;
}
