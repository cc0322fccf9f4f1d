/**
 * S3's multipart limits and how part sizes are chosen within them.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
 */

const MiB = 1024 * 1024;

/** Smallest part S3 accepts (all but the last part). */
export const MIN_PART_SIZE = 5 * MiB;
/** Largest part S3 accepts. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** Most parts one multipart upload may have. */
export const MAX_PARTS = 10_000;
/** Largest object S3 stores. */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;
/** With an unknown size, the part size doubles after every this many parts (see `partSizeForPart`). */
export const PARTS_PER_SIZE_STEP = 800;

/**
 * Part size for a body of known `size`: the configured size, grown (in whole MiB) just enough
 * that the body fits in `MAX_PARTS` parts. Every part but the last has this size.
 */
export function partSizeForKnownSize(size: number, configuredPartSize: number): number {
  const needed = Math.ceil(Math.ceil(size / MAX_PARTS) / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(configuredPartSize, needed));
}

/**
 * Size of part `partNumber` (1-based) for a body of unknown size: the configured size for the
 * first `PARTS_PER_SIZE_STEP` parts, then doubling every `PARTS_PER_SIZE_STEP` parts up to
 * `MAX_PART_SIZE`. Small and medium uploads keep the configured size (and its memory bound),
 * while 10,000 parts still hold `MAX_OBJECT_SIZE` for any configured size >= `MIN_PART_SIZE`.
 */
export function partSizeForPart(partNumber: number, configuredPartSize: number): number {
  const step = Math.floor((partNumber - 1) / PARTS_PER_SIZE_STEP);
  return Math.min(MAX_PART_SIZE, configuredPartSize * 2 ** step);
}

/** Bytes that `MAX_PARTS` parts sized by `partSizeForPart` can hold. */
export function capacityForUnknownSize(configuredPartSize: number): number {
  let total = 0;
  for (let part = 1; part <= MAX_PARTS; part++) total += partSizeForPart(part, configuredPartSize);
  return total;
}
