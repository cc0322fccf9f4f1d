import { IntegrityError } from '../../errors.js';
import type { PostgresClient } from './postgres-client.js';

// A TOC line of `pg_restore -l`: `<dumpId>; <tableoid> <oid> <TYPE> <schema> <name> <owner>`.
const TOC_TABLE = /^\d+; \d+ \d+ TABLE (?!DATA )/;
const TOC_LARGE_OBJECT = /^\d+; \d+ \d+ BLOB - /;
// pg_dump 17 lists large objects in groups (`BLOB METADATA`), not one entry each: not counted.
const TOC_LARGE_OBJECT_GROUP = /^\d+; \d+ \d+ BLOB METADATA /;

/** Tables a restore made, leaving out the catalogs and tables an extension's script creates. */
const RESTORED_TABLES = `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

/**
 * The sanity check after pg_restore exited 0 and before anything is swapped: every table and
 * large object the dump's table of contents lists exists in the restored database. (pg_restore
 * with `--exit-on-error` already stopped at the first failed statement; this catches a dump whose
 * data entries went missing without an error, and anything pg_restore skipped.)
 *
 * @throws IntegrityError naming the counts that differ.
 */
export async function checkRestoredDatabase(client: PostgresClient, dumpDir: string, database: string, signal: AbortSignal): Promise<void> {
  let tables = 0;
  let largeObjects = 0;
  let largeObjectsGrouped = false;
  await client.run('pg_restore', ['--list', '--format=directory', dumpDir], signal, (line) => {
    if (TOC_TABLE.test(line)) tables++;
    else if (TOC_LARGE_OBJECT.test(line)) largeObjects++;
    else if (TOC_LARGE_OBJECT_GROUP.test(line)) largeObjectsGrouped = true;
  });
  const [[restoredTables, restoredLargeObjects] = []] = await client.query(
    database,
    `SELECT (${RESTORED_TABLES}), (SELECT count(*) FROM pg_largeobject_metadata)`,
    signal,
  );
  const problems: string[] = [];
  if (Number(restoredTables) !== tables) problems.push(`${restoredTables} tables, the dump lists ${tables}`);
  if (!largeObjectsGrouped && Number(restoredLargeObjects) !== largeObjects) problems.push(`${restoredLargeObjects} large objects, the dump lists ${largeObjects}`);
  if (problems.length > 0) throw new IntegrityError(`${client.what}: restored database has ${problems.join('; ')}`);
}
