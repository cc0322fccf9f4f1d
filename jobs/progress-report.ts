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
}
