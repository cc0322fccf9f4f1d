import { IntegrityError } from '../errors.js';
import { showName } from '../fsutil/byte-name.js';
import type { EntryHeader } from '../snapshot/entry.js';
import type { PayloadLayout } from './payload-layout.js';

/* Building blocks for the kinds' payload layouts (`<kind>/<kind>-payload.ts`). */

/** The one wording for an entry a kind's payload cannot hold. */
export function refuseEntry(kind: string, header: EntryHeader, expected: string): never {
  throw new IntegrityError(`entry ${showName(header.path)}: a ${header.type} does not belong in a ${kind} snapshot (expected ${expected})`);
}

/** Exactly these regular files, each once. */
export function fixedFilesLayout(kind: string, names: readonly string[]): PayloadLayout {
  const seen = new Set<string>();
  return {
    check(header) {
      if (header.type !== 'file' || !names.includes(header.path)) refuseEntry(kind, header, `the files ${names.join(', ')}`);
      if (seen.has(header.path)) throw new IntegrityError(`entry ${showName(header.path)}: appears twice`);
      seen.add(header.path);
    },
    end() {
      const missing = names.find((name) => !seen.has(name));
      if (missing) throw new IntegrityError(`a ${kind} snapshot needs ${missing}, which is missing`);
    },
  };
}
