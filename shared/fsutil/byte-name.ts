/**
 * File names are bytes on Linux, not text: any byte but `/` and NUL may appear, in any order,
 * valid UTF-8 or not. Entry paths are kept as JavaScript strings in one lossless form, Python's
 * "surrogateescape" (PEP 383): valid UTF-8 is decoded as usual, and every byte that is not part of
 * a valid UTF-8 sequence becomes the lone surrogate U+DC80..U+DCFF (0x80..0xFF + 0xDC00).
 *
 * Why this form rather than Buffers or latin1 "byte strings": ordinary names (ASCII and UTF-8,
 * nearly every name there is) stay ordinary strings, so globs, JSON records, listings and
 * messages keep working unchanged and cost nothing extra; only the filesystem calls and the tar
 * and SHA256SUMS encodings convert, and only names holding an escaped byte take the slow path.
 * The mapping is a bijection: a lone surrogate never comes out of valid UTF-8 (strict decoding
 * refuses encoded surrogates), so `encodeName(decodeName(b))` equals `b` for every byte string.
 */

/** Lone low surrogates that stand for one raw byte each (the `u` flag leaves real pairs whole). */
const ESCAPED_BYTE = /[\uDC80-\uDCFF]/u;
const REPLACEMENT_CHARACTER = '\uFFFD';

/** Bytes → the lossless string form. */
export function decodeName(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  // Node's decoder marks every invalid sequence with U+FFFD; without one the bytes were valid.
  if (!text.includes(REPLACEMENT_CHARACTER)) return text;
  return decodeSlowly(bytes);
}

/** The lossless string form → the original bytes. */
export function encodeName(name: string): Buffer {
  if (!ESCAPED_BYTE.test(name)) return Buffer.from(name, 'utf8');
  const bytes: number[] = [];
  for (const char of name) {
    const code = char.codePointAt(0)!;
    if (code >= 0xdc80 && code <= 0xdcff) bytes.push(code - 0xdc00);
    else for (const byte of Buffer.from(char, 'utf8')) bytes.push(byte);
  }
  return Buffer.from(bytes);
}

/** Whether the name holds bytes that are not valid UTF-8 (then it must go to the OS as a Buffer). */
export function hasEscapedBytes(name: string): boolean {
  return ESCAPED_BYTE.test(name);
}

/** The name as Node's fs functions take it: the string itself when plain UTF-8, else its bytes. */
export function fsPath(name: string): string | Buffer {
  return ESCAPED_BYTE.test(name) ? encodeName(name) : name;
}

/** Byte length of the name on disk. */
export function nameByteLength(name: string): number {
  return ESCAPED_BYTE.test(name) ? encodeName(name).length : Buffer.byteLength(name);
}

/** Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF); other bytes escaped one by one. */
function decodeSlowly(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      out += String.fromCharCode(lead);
      i += 1;
      continue;
    }
    const code = sequenceAt(bytes, i, lead);
    if (code === undefined) {
      out += String.fromCharCode(0xdc00 + lead);
      i += 1;
    } else {
      out += String.fromCodePoint(code);
      i += code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    }
  }
  return out;
}

/** The code point of a valid multi-byte sequence starting at `i`, or undefined. */
function sequenceAt(bytes: Buffer, i: number, lead: number): number | undefined {
  let length: number;
  let code: number;
  let min: number;
  if (lead >= 0xc2 && lead <= 0xdf) [length, code, min] = [2, lead & 0x1f, 0x80];
  else if (lead >= 0xe0 && lead <= 0xef) [length, code, min] = [3, lead & 0x0f, 0x800];
  else if (lead >= 0xf0 && lead <= 0xf4) [length, code, min] = [4, lead & 0x07, 0x10000];
  else return undefined;
  if (i + length > bytes.length) return undefined;
  for (let k = 1; k < length; k++) {
    const next = bytes[i + k]!;
    if ((next & 0xc0) !== 0x80) return undefined;
    code = (code << 6) | (next & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return undefined;
  return code;
}

/** Longest name shown whole in a message; longer ones show their first and last SHOWN_END characters. */
const MAX_SHOWN_CHARS = 160;
const SHOWN_END = 60;
// eslint-disable-next-line no-control-regex
const NEEDS_QUOTING = /[\u0000-\u001f\u007f"\\\uDC80-\uDCFF]|^$/u;

/**
 * A path (or name, or link target) as it goes into a message: one line, printable, short.
 * Plain when it is printable UTF-8; otherwise in double quotes with `\n`, `\t`, `\\`, `\"` and
 * `\xNN` escapes (control characters and bytes that are not UTF-8). A path longer than 160
 * characters shows its first and last 60 with `…` and its byte length between, so a 9 KB path
 * makes a short line.
 */
export function showName(name: string): string {
  let shown = name;
  let note = '';
  if (name.length > MAX_SHOWN_CHARS) {
    const chars = Array.from(name);
    if (chars.length > MAX_SHOWN_CHARS) {
      shown = chars.slice(0, SHOWN_END).join('') + '\u0000' + chars.slice(-SHOWN_END).join('');
      note = ` (${nameByteLength(name)} bytes)`;
    }
  }
  if (!NEEDS_QUOTING.test(shown)) return shown + note;
  let out = '"';
  for (const char of shown) {
    const code = char.codePointAt(0)!;
    if (char === '\u0000' && note) out += '…';
    else if (char === '\n') out += '\\n';
    else if (char === '\t') out += '\\t';
    else if (char === '\\' || char === '"') out += `\\${char}`;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code >= 0xdc80 && code <= 0xdcff) out += `\\x${(code - 0xdc00).toString(16)}`;
    else out += char;
  }
  return `${out}"${note}`;
}
