import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../../errors.js';
import type { PayloadLayout } from '../payload-layout.js';
import { refuseEntry } from '../payload-rules.js';
import { showName } from '../../fsutil/byte-name.js';

/**
 * A PostgreSQL snapshot's payload is one pg_dump directory-format dump (`pg_dump -Fd`), each of
 * its files an archive entry `dump/<file>`: `toc.dat` (the table of contents: schema, sequences'
 * values, ownership and grants), one `<dumpId>.dat` per table's data, and for large objects
 * `blobs.toc` and one `blob_<oid>.dat` each. Uncompressed (`-Z0`): the archive compresses once.
 */
export const DUMP_ENTRY_PREFIX = 'dump/';

/** The dump's table of contents, which pg_restore reads first. */
const TOC_FILE = 'toc.dat';

/** The names pg_dump writes into a directory dump (and so the only ones a restore accepts). */
const DUMP_FILE_NAME = /^[A-Za-z0-9_]+\.(dat|toc)$/;

/** The file name of a dump entry, or `undefined` when `entryPath` is not one. */
export function dumpFileName(entryPath: string): string | undefined {
  if (!entryPath.startsWith(DUMP_ENTRY_PREFIX)) return undefined;
  const name = entryPath.slice(DUMP_ENTRY_PREFIX.length);
  return DUMP_FILE_NAME.test(name) ? name : undefined;
}

/** One file of a staged dump. */
export interface DumpFile {
  name: string;
  size: number;
  mode: number;
}

/** The total size of the files in a dump directory so far (while pg_dump writes it). */
export async function dumpDirBytes(dumpDir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dumpDir)) total += (await stat(path.join(dumpDir, name)).catch(() => ({ size: 0 }))).size;
  return total;
}

/** The files of a directory dump, `toc.dat` first (so a reader meets the contents first), then by name. */
export async function listDumpFiles(dumpDir: string): Promise<DumpFile[]> {
  const names = (await readdir(dumpDir)).sort((a, b) => (a === TOC_FILE ? -1 : b === TOC_FILE ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const files: DumpFile[] = [];
  for (const name of names) {
    const info = await stat(path.join(dumpDir, name));
    files.push({ name, size: info.size, mode: info.mode & 0o777 });
  }
  return files;
}

/**
 * The payload layout of a `postgres` snapshot (see `shared/kinds/payload-layout.ts`): only
 * regular files `dump/<file>` with the names pg_dump writes, each once, `toc.dat` among them.
 * `verify` and `restore` both read through it.
 */
export function postgresPayloadLayout(): PayloadLayout {
  const seen = new Set<string>();
  return {
    check(header) {
      const name = dumpFileName(header.path);
      if (header.type !== 'file' || name === undefined) {
        refuseEntry('postgres', header, `${DUMP_ENTRY_PREFIX}<file> files of a pg_dump directory`);
      }
      if (seen.has(name)) throw new IntegrityError(`entry ${showName(header.path)}: appears twice`);
      seen.add(name);
    },
    end() {
      if (!seen.has(TOC_FILE)) throw new IntegrityError(`a postgres snapshot needs ${DUMP_ENTRY_PREFIX}${TOC_FILE}, which is missing`);
    },
  };
}
