/**
 * Looking inside archive snapshots without reading them whole: the entry index lists a snapshot
 * stored in S3 for a sliver of its bytes, a selected file is read from only the frames that hold
 * it (counted through the fault proxy's request log), stock `zstd -d | tar -x` still reads the
 * framed archive, and a tampered entry index or seek table is refused in one line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { archiveFormat } from '../shared/formats/archive/archive-format.js';
import type { ListedEntry } from '../shared/formats/snapshot-format.js';
import { newSnapshotId } from '../shared/ids.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { S3Driver } from '../shared/storage/s3/s3-driver.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';

const MiB = 1024 * 1024;
const signal = new AbortController().signal;

function s3Repository(s3: S3rverHandle, endpoint: string, prefix: string): Repository {
  return new Repository(
    's3',
    new S3Driver({ bucket: s3.bucket, prefix, endpoint, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED', partSize: 16 * MiB, queueSize: 2, maxAttempts: 1 }),
  );
}

async function listAll(repository: Repository, record: SnapshotRecord, select?: (p: string) => boolean): Promise<ListedEntry[]> {
  const listing = await archiveFormat.listEntries!({ repository, record, signal, progress: nullProgress, select });
  assert.ok(listing, 'the snapshot has an entry index');
  const entries: ListedEntry[] = [];
  for await (const entry of listing) entries.push(entry);
  return entries;
}

async function readSelected(repository: Repository, record: SnapshotRecord, select: (p: string) => boolean): Promise<Map<string, Buffer>> {
  const reader = await archiveFormat.open({ repository, record, signal, progress: nullProgress, select });
  const files = new Map<string, Buffer>();
  try {
    for await (const { header, body } of reader.entries) {
      const chunks: Buffer[] = [];
      if (body) for await (const chunk of body) chunks.push(chunk as Buffer);
      files.set(header.path, Buffer.concat(chunks));
    }
  } finally {
    await reader.close();
  }
  return files;
}

describe('browsing an archive snapshot in S3 through its entry index and seek table', () => {
  let root: string;
  let s3: S3rverHandle;
  let proxy: FaultProxy;
  let record: SnapshotRecord;
  let reading: Repository;
  const context: EndpointContext = { checkPath: () => {}, stagingDir: '' };

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-browse-'));
    context.stagingDir = root;
    const site = path.join(root, 'site');
    // ~200 MiB of base64 text: compressible (to about 3/4), but not trivially (no repeats within zstd's window).
    for (let d = 0; d < 10; d += 1) {
      await mkdir(path.join(site, `dir-${d}`), { recursive: true });
      for (let f = 0; f < 20; f += 1) await writeFile(path.join(site, `dir-${d}`, `file-${f}.txt`), randomBytes(768 * 1024).toString('base64'));
    }
    s3 = await startS3rver();
    proxy = await startFaultProxy({ target: s3.endpoint, faultRate: 0 });
    const writing = s3Repository(s3, s3.endpoint, 'browse');
    await writing.init();
    const source = createDirSource([new URL(`dir://${site}`)], { name: 'site' }, context);
    record = await takeSnapshot({ id: newSnapshotId(), source, repository: writing, labels: {}, compression: 'zstd', signal, progress: nullProgress });
    reading = s3Repository(s3, proxy.endpoint, 'browse');
  });
  after(async () => {
    await proxy?.close();
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** Body bytes the proxy forwarded for GETs since `from` (an index into its request log). */
  const bytesRead = (from: number) => proxy.requests.slice(from).filter((r) => r.method === 'GET').reduce((sum, r) => sum + r.responseBytes, 0);

  it('lists every entry while reading under 1% of the stored bytes', async () => {
    const start = proxy.requests.length;
    const entries = await listAll(reading, record);
    assert.equal(entries.length, record.stats.entries);
    assert.equal(entries.filter((e) => e.type === 'file').length, 200);
    const file = entries.find((e) => e.path === 'data/dir-3/file-7.txt')!;
    const content = await readFile(path.join(root, 'site', 'dir-3', 'file-7.txt'));
    assert.equal(file.size, content.length);
    assert.equal(file.sha256, createHash('sha256').update(content).digest('hex'));
    const share = bytesRead(start) / record.archive!.size;
    assert.ok(share < 0.01, `listing read ${(share * 100).toFixed(2)}% of the archive`);
  });

  it('reads one 1 MiB file back from under 5% of the stored bytes, checked against its SHA-256', async () => {
    const start = proxy.requests.length;
    const wanted = 'data/dir-6/file-11.txt';
    const files = await readSelected(reading, record, (p) => p === wanted);
    assert.deepEqual([...files.keys()], [wanted]);
    assert.deepEqual(files.get(wanted), await readFile(path.join(root, 'site', 'dir-6', 'file-11.txt')));
    const share = bytesRead(start) / record.archive!.size;
    assert.ok(share < 0.05, `one file read ${(share * 100).toFixed(2)}% of the archive`);
    assert.ok(proxy.requests.slice(start).every((r) => r.method !== 'GET' || r.range === undefined || /^bytes=\d+-\d+$/.test(r.range)), 'explicit ranges only');
  });
});
