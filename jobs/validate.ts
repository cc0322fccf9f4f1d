import type { z } from 'zod';
import { InvalidInputError } from '../shared/errors.js';
import { JOB_KINDS, type JobKind } from '../shared/job-kind.js';
import { JOB_SCHEMAS, type JobDataByKind } from './schemas.js';

export function isJobKind(name: string): name is JobKind {
  return (JOB_KINDS as readonly string[]).includes(name);
}

/**
 * Checks job data against its schema.
 * @throws InvalidInputError naming the job kind, the field and what is wrong with it.
 */
export function parseJobData<K extends JobKind>(kind: K, data: unknown): JobDataByKind[K] {
  assertJobKind(kind);
  const result = JOB_SCHEMAS[kind].safeParse(data);
  if (result.success) return result.data;
  return failInvalid(kind, describeIssues(result.error.issues, data));
}

/** Zod issues as short phrases naming the field: `field "keepDaily": …`, `unknown field(s) x`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], data: unknown): string[] {
  return issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : '(data)';
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
    if (issue.path.length > 0 && valueAt(data, issue.path) === undefined) return `field "${field}" is required`;
    return `field "${field}": ${issue.message}`;
  });
}

/**
 * Checks the job name and data together, for jobs that arrive off the queue.
 * @throws InvalidInputError for an unknown job name or bad data.
 */
export function parseJob(name: string, data: unknown): { kind: JobKind; data: JobDataByKind[JobKind] } {
  assertJobKind(name);
  return { kind: name, data: parseJobData(name, data) };
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * Checks a job name before it is used to look anything up: callers in plain JavaScript may pass
 * any string, and "constructor" must not find a property of Object.
 * @throws InvalidInputError (never retried) for a name that is not a job kind.
 */
export function assertJobKind(name: string): asserts name is JobKind {
  if (!isJobKind(name)) throw new InvalidInputError(`unknown job name ${JSON.stringify(name)} (expected ${JOB_KINDS.join(', ')})`);
}

function failInvalid(kind: string, problems: string[]): never {
  throw new InvalidInputError(`invalid ${kind} job: ${problems.join('; ')}`);
}
