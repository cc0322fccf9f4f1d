/** What a secret is replaced with. */
export const REDACTED = '***';

/**
 * Query parameters whose values may be secrets: tokens, keys, passwords, and the signature and
 * credential of an AWS presigned URL (`X-Amz-Signature`, `X-Amz-Credential`,
 * `X-Amz-Security-Token`).
 */
const SECRET_PARAMETER = /token|key|secret|pass|pwd|auth|signature|credential|sig$/i;

// `scheme://user:pass@host`, `scheme://token@host`: everything between `//` and the last `@`
// before the host. Written as a pattern, not with `URL`, so it also cleans text that is not one
// valid URL (a comma-separated server list, a URL inside a sentence, a malformed value).
const USER_INFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/gi;
const QUERY_PARAMETER = /([?&])([^=&#\s]+)=([^&#\s]*)/g;

/**
 * A URL (or text holding URLs, such as `nats://a:4222,nats://b:4222`) that is safe to print:
 * user info becomes `***@` and the values of query parameters that may carry secrets become
 * `***`. Everything else is kept, so the operator still recognises the URL. Used for every URL
 * that reaches a log line, an event, an error message, a metric or a record.
 */
export function redactUrl(text: string): string {
  return text
    .replace(USER_INFO, `$1${REDACTED}@`)
    .replace(QUERY_PARAMETER, (whole, separator: string, name: string) =>
      SECRET_PARAMETER.test(safeDecode(name)) ? `${separator}${name}=${REDACTED}` : whole,
    );
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
