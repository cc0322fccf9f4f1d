/**
 * A second writer process for the catalog tests: commits fake snapshots into the repository at
 * argv[2] (a file:// or s3:// URI), lineage argv[3], argv[4] of them, 8 at a time, compacting past
 * argv[5] index objects; prints their ids as JSON.
 */
import { Repository } from '../../shared/catalog/repository.js';
import { openDriver } from '../../shared/storage/open-driver.js';
import { commitFakeSnapshots } from './catalog-records.js';

const [uri, lineage, count, compactAt] = process.argv.slice(2) as [string, string, string, string];
const driver = openDriver(uri);
try {
  const ids = await commitFakeSnapshots(new Repository(uri, driver, { compactAt: Number(compactAt) }), lineage, Number(count), 8);
  process.stdout.write(JSON.stringify(ids) + '\n');
} finally {
  await driver.close?.();
}
