/**
 * The job id of the replicator of replica `name` in repository `repo`:
 * `replicate.<repo>.<name>`. One id per replica location, so enqueueing it twice (from any
 * producer, the command line included) adds one job, and exactly one replicator writes
 * `replicas/<name>/` of a repository across the fleet. Repository names hold no `.`, so the id
 * reads back unambiguously; neither holds `:` (BullMQ's key separator).
 */
export function replicateJobId(repo: string, name: string): string {
  return `replicate.${repo}.${name}`;
}
