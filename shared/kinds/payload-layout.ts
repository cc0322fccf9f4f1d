import { IntegrityError } from '../errors.js';
import type { EntryHeader } from '../snapshot/entry.js';
import { findKind, KINDS } from './registry.js';

/**
 * The structure of one kind's payload (docs/archive-format.md, "Payload per source kind"): which
 * entries may appear, of which type, and which must. The restore and verify pipelines both apply
 * it to what a format's reader yields, so a snapshot one of them refuses the other refuses too;
 * formats know nothing of kinds.
 */
export interface PayloadLayout {
  /** @throws IntegrityError for an entry this kind's payload cannot hold. */
  check(header: EntryHeader): void;
  /** After the last payload entry. @throws IntegrityError for a required entry that never came. */
  end(): void;
  /**
   * For a small file whose content restore parses (NATS `backup.json`): the most bytes it may
   * have. The pipeline then refuses a bigger one and hands the bytes to `checkContent`.
   */
  contentLimit?(header: EntryHeader): number | undefined;
  /** @throws IntegrityError when the content is not what restore accepts. */
  checkContent?(header: EntryHeader, bytes: Buffer): void;
}

/**
 * The layout for a snapshot of `kind`.
 * @throws IntegrityError for a kind this version does not know (a newer writer, or tampering):
 *   verifying what could never be restored would report a false OK.
 */
export function payloadLayout(kind: string): PayloadLayout {
  const registration = findKind(kind);
  if (!registration) throw new IntegrityError(`manifest: unknown source kind ${JSON.stringify(kind)} (known: ${KINDS.map((k) => k.kind).join(', ')})`);
  return registration.payload();
}
