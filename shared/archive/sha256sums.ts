import { StringDecoder } from 'node:string_decoder';
import { IntegrityError } from '../errors.js';
import { MAX_PATH_BYTES } from './safe-path.js';

/** One `SHA256SUMS` line in `sha256sum` text mode: lower-case hex, two spaces, the path, LF. */
export function formatSumLine(hexDigest: string, path: string): string {
  return `${hexDigest}  ${path}\n`;
}

const SUM_LINE = /^([0-9a-f]{64}) {2}(.+)$/s;
const MAX_LINE_CHARS = 64 + 2 + MAX_PATH_BYTES;

/**
 * Splits `SHA256SUMS` bytes, as they stream, into (digest, path) lines. Only the exact format
 * the writer produces is accepted (no `*` binary marker, no backslash-escaped lines, no CR, LF
 * after every line); anything else is an IntegrityError. Holds at most one line in memory.
 */
export class SumsParser {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private lineNumber = 0;

  constructor(private readonly onLine: (hexDigest: string, path: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.pending + this.decoder.write(chunk);
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      this.line(text.slice(start, newline));
      start = newline + 1;
    }
    this.pending = text.slice(start);
    if (this.pending.length > MAX_LINE_CHARS) throw this.malformed('line too long');
  }

  /** Call after the last chunk; throws when the last line is unterminated. */
  end(): void {
    const rest = this.pending + this.decoder.end();
    if (rest !== '') throw this.malformed('last line does not end with a newline');
  }

  private line(line: string): void {
    this.lineNumber += 1;
    const match = SUM_LINE.exec(line);
    if (!match) throw this.malformed('not "<64 hex digits>  <path>"');
    this.onLine(match[1]!, match[2]!);
  }

  private malformed(problem: string): IntegrityError {
    return new IntegrityError(`archive: entry SHA256SUMS: line ${this.lineNumber + 1}: ${problem}`);
  }
}
