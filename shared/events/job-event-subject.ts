import type { JobEventName } from './job-events.js';

/** The default subject prefix: events go to `snapworker.jobs.<token>.<event>`. */
export const DEFAULT_SUBJECT_PREFIX = 'snapworker.jobs';

/**
 * Characters a job id may keep as they are in its subject token. Everything else, including `.`,
 * `*`, `>`, whitespace, `%` and any non-ASCII character, is percent-encoded.
 */
const SAFE_TOKEN_CHAR = /^[A-Za-z0-9_\-:=]$/;
/** The token of the empty id: `%` alone never results from encoding a non-empty id. */
const EMPTY_ID_TOKEN = '%';

/**
 * Turns a job id into one NATS subject token, reversibly (see `decodeJobIdToken`).
 *
 * Rule (documented for producers in other languages): take the id's UTF-8 bytes; keep each byte
 * that is an ASCII letter, digit, `_`, `-`, `:` or `=`; write every other byte as `%` and two
 * upper-case hex digits. The empty id becomes `%`. So `42` stays `42`, `nightly.db` becomes
 * `nightly%2Edb` and `a b` becomes `a%20b`. Ids of BullMQ's own counter are digits and never change.
 */
export function encodeJobIdToken(jobId: string): string {
  if (jobId === '') return EMPTY_ID_TOKEN;
  let token = '';
  for (const char of jobId) {
    if (SAFE_TOKEN_CHAR.test(char)) {
      token += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8')) token += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return token;
}

/** The inverse of `encodeJobIdToken`. Throws `URIError` on a token it could not have produced. */
export function decodeJobIdToken(token: string): string {
  if (token === EMPTY_ID_TOKEN) return '';
  return decodeURIComponent(token);
}

/** The subject of one event of one job. */
export function jobEventSubject(prefix: string, jobId: string, event: JobEventName): string {
  return `${prefix}.${encodeJobIdToken(jobId)}.${event}`;
}

/** The subscription filter for every event of one job, or of every job when `jobId` is absent. */
export function jobEventFilter(prefix: string, jobId?: string): string {
  return `${prefix}.${jobId === undefined ? '*' : encodeJobIdToken(jobId)}.>`;
}
