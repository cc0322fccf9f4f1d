import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Decrypter, Encrypter } from 'age-encryption';
import { errorMessage, IntegrityError } from '../errors.js';

/*
 * The age file format (age-encryption.org/v1, https://age-encryption.org/v1), streamed:
 *
 *   header  "age-encryption.org/v1\n", one stanza per recipient, "--- <HMAC>\n"
 *   nonce   16 random bytes
 *   payload STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption"):
 *           64 KiB chunks, each ChaCha20-Poly1305 under HKDF-SHA256(file key, nonce, "payload")
 *           with nonce = 11-byte big-endian chunk counter || 0x01 on the last chunk, else 0x00.
 *
 * The header (X25519 key agreement, stanzas, header MAC) is made and checked by `age-encryption`,
 * the format authors' implementation. The payload runs through node:crypto's native
 * ChaCha20-Poly1305: the package's pure-JavaScript one streams too, but at about 35 MiB/s on this
 * machine kind, far beyond the 10% budget; native it runs several hundred MiB/s.
 *
 * The encrypting stream passes on ONE buffer per buffer it is given (every chunk it completes,
 * with its tag): a consumer that writes each buffer it receives (a pipe into a file) otherwise
 * makes two writes per 64 KiB chunk; the storage drivers read through an async iterator, which
 * joins what is buffered itself, so for them this is the same copy in another place. The
 * decrypting stream passes on one buffer per chunk (see `open`).
 */

const CHUNK = 64 * 1024;
const TAG = 16;
const NONCE = 16;
const MAGIC = 'age-encryption.org/v1\n';
/** A header beyond this is not one of ours (one X25519 stanza is about 200 bytes). */
const MAX_HEADER = 64 * 1024;

/** The payload key, as a KeyObject: made once per file, not converted again for every chunk. */
function payloadKey(fileKey: Uint8Array, nonce: Buffer): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32)));
}

/** Writes chunk `counter`'s STREAM nonce into `nonce` (12 bytes; the cipher copies it). */
function chunkNonce(nonce: Buffer, counter: number, last: boolean): Buffer {
  nonce.fill(0);
  nonce.writeUIntBE(counter, 5, 6); // 48 bits of the 88-bit counter: 2^48 chunks of 64 KiB is plenty
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Takes at most `max` bytes off the front of `chunks` (non-empty), without copying. */
function nextPiece(chunks: Buffer[], max: number): Buffer {
  const head = chunks[0]!;
  if (head.length <= max) return chunks.shift()!;
  chunks[0] = head.subarray(max);
  return head.subarray(0, max);
}

/**
 * Takes exactly `n` bytes off the front of `chunks` (which hold at least `n`) without copying
 * when one piece holds them all; when they straddle pieces, gathers them into `scratch` (at least
 * `n` bytes, reused by the caller: the result is valid until its next use).
 */
function take(chunks: Buffer[], n: number, scratch: Buffer): Buffer {
  const first = nextPiece(chunks, n);
  if (first.length === n) return first;
  first.copy(scratch);
  for (let at = first.length; at < n; ) {
    const piece = nextPiece(chunks, n - at);
    piece.copy(scratch, at);
    at += piece.length;
  }
  return scratch.subarray(0, n);
}

/**
 * A Transform from plaintext to an age file encrypted to `recipient` (`age1…`). Memory: the
 * buffer it was given, sealed into one of the same size plus 16 bytes per 64 KiB, and at most one
 * 64 KiB chunk held back (the last chunk carries the last flag, so a full chunk waits for more).
 */
export class AgeEncryptStream extends Transform {
  private key: KeyObject | undefined;
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private counter = 0;
  private readonly nonce = Buffer.alloc(12);

  /** @param identity the recipient's identity (`AGE-SECRET-KEY-1…`): the file key is read back from the header age made. */
  constructor(
    private readonly recipient: string,
    private readonly identity: string,
  ) {
    super();
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.start().then(() => callback(), (err: unknown) => callback(err as Error));
  }

  private async start(): Promise<void> {
    // age-encryption makes the header (stanzas, MAC) and hides the file key; our identity reads it back.
    const encrypter = new Encrypter();
    encrypter.addRecipient(this.recipient);
    const empty = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
    const headerEnd = headerLength(empty);
    if (headerEnd === undefined) throw new Error('age: no header in what age-encryption made');
    const header = empty.subarray(0, headerEnd);
    const decrypter = new Decrypter();
    decrypter.addIdentity(this.identity);
    const fileKey = await decrypter.decryptHeader(header);
    const nonce = Buffer.from(empty.subarray(headerEnd, headerEnd + NONCE));
    this.key = payloadKey(fileKey, nonce);
    this.push(Buffer.concat([header, nonce]));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // A full chunk goes out only once more data follows it: the last chunk carries the last flag.
    const full = Math.floor((this.pendingBytes - 1) / CHUNK);
    if (full > 0) {
      const out = Buffer.allocUnsafe(full * (CHUNK + TAG));
      for (let i = 0; i < full; i++) this.seal(out, i * (CHUNK + TAG), CHUNK, false);
      this.pendingBytes -= full * CHUNK;
      this.push(out);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const out = Buffer.allocUnsafe(this.pendingBytes + TAG);
    this.seal(out, 0, this.pendingBytes, true);
    this.pendingBytes = 0;
    this.push(out);
    callback();
  }

  /** Encrypts the next `n` pending bytes as one STREAM chunk into `out` at `at`: ciphertext, then tag. */
  private seal(out: Buffer, at: number, n: number, last: boolean): void {
    const cipher = createCipheriv('chacha20-poly1305', this.key!, chunkNonce(this.nonce, this.counter++, last), { authTagLength: TAG });
    for (let left = n; left > 0; ) {
      const piece = nextPiece(this.pending, left);
      at += cipher.update(piece).copy(out, at);
      left -= piece.length;
    }
    cipher.final();
    cipher.getAuthTag().copy(out, at);
  }
}

/**
 * A Transform from an age file to its plaintext, with `identity` (`AGE-SECRET-KEY-1…`). Every
 * chunk is authenticated before it is passed on; a truncated file fails at its end.
 * Errors are IntegrityErrors prefixed with `what`: not an age file, encrypted to another key,
 * a changed header or chunk, or truncated.
 */
export class AgeDecryptStream extends Transform {
  private key: KeyObject | undefined;
  private readonly nonce = Buffer.alloc(12);
  private readonly scratch = Buffer.allocUnsafe(CHUNK + TAG);
  private header: Buffer | undefined = Buffer.alloc(0);
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private counter = 0;

  constructor(
    private readonly identity: string,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.header !== undefined) {
      this.readHeader(chunk).then(
        (rest) => {
          if (rest === undefined) return callback();
          this.payload(rest, callback);
        },
        (err: unknown) => callback(err as Error),
      );
      return;
    }
    this.payload(chunk, callback);
  }

  /** Collects the header and nonce; resolves with the payload bytes after them once complete. */
  private async readHeader(chunk: Buffer): Promise<Buffer | undefined> {
    const seen = Buffer.concat([this.header!, chunk]);
    if (!seen.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC).subarray(0, Math.min(MAGIC.length, seen.length)))) {
      throw new IntegrityError(`${this.what}: not an age file (age-encryption.org/v1)`);
    }
    const headerEnd = headerLength(seen);
    if (headerEnd === undefined || seen.length < headerEnd + NONCE) {
      if (seen.length > MAX_HEADER) throw new IntegrityError(`${this.what}: age header longer than ${MAX_HEADER} bytes`);
      this.header = seen;
      return undefined;
    }
    const decrypter = new Decrypter();
    decrypter.addIdentity(this.identity);
    let fileKey: Uint8Array;
    try {
      fileKey = await decrypter.decryptHeader(seen.subarray(0, headerEnd));
    } catch (err) {
      const message = errorMessage(err);
      throw new IntegrityError(
        `${this.what}: ${/no identity matched/.test(message) ? "encrypted to another key than this repository's" : `age header rejected (${message})`}`,
        { cause: err },
      );
    }
    this.key = payloadKey(fileKey, seen.subarray(headerEnd, headerEnd + NONCE));
    this.header = undefined;
    return seen.subarray(headerEnd + NONCE);
  }

  private payload(chunk: Buffer, callback: TransformCallback): void {
    if (chunk.length > 0) this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    try {
      // Every chunk but the last is full; the last one is known only at the end (_flush).
      while (this.pendingBytes > CHUNK + TAG) {
        this.push(this.open(CHUNK + TAG, false));
        this.pendingBytes -= CHUNK + TAG;
      }
    } catch (err) {
      return callback(err as Error);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.header !== undefined) return callback(new IntegrityError(`${this.what}: truncated inside its age header`));
    try {
      if (this.pendingBytes < TAG) throw new IntegrityError(`${this.what}: truncated (age payload ends inside a chunk)`);
      if (this.pendingBytes === TAG && this.counter > 0) throw new IntegrityError(`${this.what}: age payload ends in an empty chunk`);
      this.push(this.open(this.pendingBytes, true));
    } catch (err) {
      return callback(err as Error);
    }
    callback();
  }

  /**
   * Decrypts the next `n` pending bytes (a chunk and its tag) and returns the plaintext, only
   * once the tag verified. A chunk that straddles the buffers read (storage streams read 64 KiB,
   * a chunk is 16 bytes more) is gathered into a scratch buffer kept for the stream: one
   * decipher call and one new buffer per chunk, where deciphering piece by piece made two of
   * each, and gathering into a fresh buffer a third.
   */
  private open(n: number, last: boolean): Buffer {
    const decipher = createDecipheriv('chacha20-poly1305', this.key!, chunkNonce(this.nonce, this.counter++, last), { authTagLength: TAG });
    const sealed = take(this.pending, n, this.scratch);
    const plaintext = decipher.update(sealed.subarray(0, n - TAG));
    decipher.setAuthTag(sealed.subarray(n - TAG));
    try {
      decipher.final();
    } catch (err) {
      throw new IntegrityError(`${this.what}: age chunk ${this.counter - 1} failed authentication (changed or truncated)`, { cause: err });
    }
    return plaintext;
  }
}

/** Bytes of the age header in `bytes` (through the `--- MAC` line), or undefined while incomplete. */
function headerLength(bytes: Buffer): number | undefined {
  const macLine = bytes.indexOf('\n--- ');
  if (macLine < 0) return undefined;
  const end = bytes.indexOf('\n', macLine + 1);
  return end < 0 ? undefined : end + 1;
}
