import crypto, { createHash } from 'node:crypto';

/** SHA-256 of a buffer in hex; the one-shot call skips a Hash object per small file where available (Node ≥ 20.12). */
export const sha256Hex: (bytes: Buffer) => string =
  typeof crypto.hash === 'function' ? (bytes) => crypto.hash('sha256', bytes, 'hex') : (bytes) => createHash('sha256').update(bytes).digest('hex');
