import { IntegrityError } from '../../errors.js';
import { decodeName, encodeName } from '../../fsutil/byte-name.js';
import { MAX_PATH_BYTES } from './safe-path.js';

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\\\n\r]/;

/**
 * One `SHA256SUMS` line in `sha256sum` text mode: lower-case hex, two spaces, the path, LF, in
 * the lossless string form of `byte-name.ts` (encode with `encodeSumLines`). A path holding a
 * backslash, newline or carriage return is written as GNU coreutils (≥ 9.0) writes it: the line
 * starts with `\` and those characters become `\\`, `\n` and `\r`, so `sha256sum -c` reads it.
 */
export function formatSumLine(hexDigest: string, path: string): string {
  if (!NEEDS_ESCAPE.test(path)) return `${hexDigest}  ${path}\n`;
  return `\\${hexDigest}  ${path.replace(/[\\\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : '\\r'))}\n`;
}

/** The bytes of `formatSumLine` lines: each path's original bytes, raw like sha256sum writes them. */
export function encodeSumLines(lines: readonly string[]): Buffer {
  // Line by line: only lines with bytes that are not UTF-8 take encodeName's slow path.
  return Buffer.concat(lines.map(encodeName));
}

const SUM_LINE = /^(\\?)([0-9a-f]{64}) {2}(.+)$/s;
const MAX_LINE_BYTES = 1 + 64 + 2 + 2 * MAX_PATH_BYTES;

/**
 * Splits `SHA256SUMS` bytes, as they stream, into (digest, path) lines; paths come out in the
 * lossless string form. Accepts exactly what the writer produces: plain lines, and lines
 * escaped as coreutils does (leading `\`, then `\\`, `\n`, `\r` in the path); no `*` binary
 * marker, no CR line ends, LF after every line. Anything else is an IntegrityError. Holds at
 * most one line in memory.
 */
export class SumsParser {
  private pending: Buffer = Buffer.alloc(0);
  private lineNumber = 0;

  constructor(private readonly onLine: (hexDigest: string, path: string) => void) {}

  push(chunk: Buffer): void {
    const bytes = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let start = 0;
    for (let newline = bytes.indexOf(0x0a); newline !== -1; newline = bytes.indexOf(0x0a, start)) {
      this.line(decodeName(bytes.subarray(start, newline)));
      start = newline + 1;
    }
    this.pending = Buffer.from(bytes.subarray(start));
    if (this.pending.length > MAX_LINE_BYTES) throw this.malformed('line too long');
  }

  /** Call after the last chunk; throws when the last line is unterminated. */
  end(): void {
    if (this.pending.length > 0) throw this.malformed('last line does not end with a newline');
  }

  private line(line: string): void {
    this.lineNumber += 1;
    const match = SUM_LINE.exec(line);
    if (!match) throw this.malformed('not "<64 hex digits>  <path>"');
    const path = match[1] ? unescapePath(match[3]!) : match[3]!;
    if (path === undefined) throw this.malformed('bad backslash escape');
    this.onLine(match[2]!, path);
  }

  private malformed(problem: string): IntegrityError {
    return new IntegrityError(`archive: entry SHA256SUMS: line ${this.lineNumber + 1}: ${problem}`);
  }
}

/** Undoes coreutils' escaping; undefined for an escape it never writes. */
function unescapePath(escaped: string): string | undefined {
  let bad = false;
  const path = escaped.replace(/\\(.?)/gs, (_all, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    if (c === 'r') return '\r';
    bad = true;
    return '';
  });
  return bad ? undefined : path;
}
