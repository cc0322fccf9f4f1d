import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';

import { IntegrityError, InvalidInputError } from '../../errors.js';
import { bodyChunks } from '../body-chunks.js';
import { MAX_PARTS } from './part-size.js';

/** One part cut from an upload body, ready to send (and to re-send on retry). */
export interface BodyPart {
  partNumber: number;
  data: Buffer;
  /** Hex SHA-256 of `data`. */
  sha256: string;
}

export interface ReadPartsOptions {
  /** Size of part `partNumber` (1-based); every part but the last has exactly this size. */
  partSizeOf(partNumber: number): number;
  /** Updated with every byte in order: the whole object's hash. */
  wholeHash: Hash;
  /** The declared body size, checked before the last part is handed out. */
  declaredSize?: number;
  /** `s3: put <key>`, for messages. */
  label: string;
  /** Stops reading (with `AbortedError`) even if the body never yields again. */
  signal?: AbortSignal;
}

/**
 * Cuts `body` into parts as consumers pull them: nothing is read ahead of demand, so memory is
 * the parts being uploaded plus the one being filled. A body that ends before filling the first
 * part yields one short part (the caller then uses a single PUT). Each byte is copied once.
 *
 * Throws `IntegrityError` when the body is longer or shorter than `declaredSize`, and
 * `InvalidInputError` beyond `MAX_PARTS` parts. The body is destroyed when the consumer stops early.
 */
export async function* readParts(body: Readable, options: ReadPartsOptions): AsyncGenerator<BodyPart> {
  let partNumber = 1;
  let partSize = options.partSizeOf(1);
  let pending: Buffer[] = [];
  let filled = 0;
  let total = 0;

  const cut = (): BodyPart => {
    if (partNumber > MAX_PARTS) throw new InvalidInputError(`${options.label}: body needs more than ${MAX_PARTS} parts`);
    const data = Buffer.concat(pending, filled);
    options.wholeHash.update(data);
    const part = { partNumber, data, sha256: createHash('sha256').update(data).digest('hex') };
    pending = [];
    filled = 0;
    partNumber++;
    partSize = options.partSizeOf(partNumber);
    return part;
  };

  for await (const chunk of bodyChunks(body, options.signal)) {
    let bytes = chunk;
    total += bytes.length;
    if (options.declaredSize !== undefined && total > options.declaredSize) {
      throw new IntegrityError(`${options.label}: body is longer than the declared ${options.declaredSize} bytes`);
    }
    while (bytes.length > 0) {
      const take = Math.min(partSize - filled, bytes.length);
      pending.push(bytes.subarray(0, take));
      filled += take;
      bytes = bytes.subarray(take);
      if (filled === partSize) yield cut();
    }
  }
  if (options.declaredSize !== undefined && total !== options.declaredSize) {
    throw new IntegrityError(`${options.label}: body has ${total} bytes, ${options.declaredSize} were declared`);
  }
  if (filled > 0 || partNumber === 1) yield cut();
}
