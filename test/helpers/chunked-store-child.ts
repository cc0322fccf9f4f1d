/**
 * A writer process for the chunked store's crash test: saves random blobs into the repository at
 * argv[2] (a file:// URI) in small packs, flushing every 8 blobs; after each flush prints the ids
 * saved so far as one JSON line. Runs until killed.
 */
import { randomBytes } from 'node:crypto';
import { Repository } from '../../shared/catalog/repository.js';
import { openBlobStore } from '../../shared/formats/chunked/store/blob-store.js';
import { plainCipherOf, readChunkedStoreConfig } from '../../shared/formats/chunked/store/store-config.js';
import { openDriver } from '../../shared/storage/open-driver.js';

const uri = process.argv[2]!;
const repository = new Repository(uri, openDriver(uri));
const cipher = plainCipherOf(await readChunkedStoreConfig(repository), repository.name);
const store = await openBlobStore(repository, { cipher, packSize: 32 * 1024 });
const flushed: string[] = [];
const unflushed: string[] = [];
for (let i = 0; ; i++) {
  unflushed.push((await store.save('data', randomBytes(16 * 1024 + (i % 100)))).id);
  if (unflushed.length === 8) {
    await store.flush();
    flushed.push(...unflushed.splice(0));
    process.stdout.write(JSON.stringify(flushed) + '\n');
  }
}
