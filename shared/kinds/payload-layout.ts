import { IntegrityError } from '../errors.js';
import type { EntryHeader } from '../snapshot/entry.js';
import { dirPayload } from './dir/dir-payload.js';
import { natsPayload } from './nats/nats-payload.js';
import { sqlitePayload } from './sqlite/sqlite-payload.js';

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
 * Each kind's layout, made fresh per snapshot read (layouts count what they saw). Until the
 * kinds registry lists registrations (`KindRegistration.payload`), this is the one place that
 * names them. A Map: the kind comes from a stored manifest.
 */
const LAYOUTS = new Map<string, () => PayloadLayout>([
  ['dir', dirPayload],
  ['nats', natsPayload],
  ['sqlite', sqlitePayload],
]);

/**
 * The layout for a snapshot of `kind`.
 * @throws IntegrityError for a kind this version does not know (a newer writer, or tampering):
 *   verifying what could never be restored would report a false OK.
 */
export function payloadLayout(kind: string): PayloadLayout {
  const layout = LAYOUTS.get(kind);
  if (!layout) throw new IntegrityError(`manifest: unknown source kind ${JSON.stringify(kind)} (known: ${[...LAYOUTS.keys()].join(', ')})`);
  return layout();
}
