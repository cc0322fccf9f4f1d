/** The job names on the queue; also the `kind` in events and the `kind` metric label. */
export const JOB_KINDS = ['snapshot', 'restore', 'verify', 'prune', 'replicate', 'copy', 'check'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
