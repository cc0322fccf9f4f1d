/**
 * Browsing edge cases a new user hit (docs/browsing.md): `dump` of a sparse file writes the file
 * as it reads, holes as zeros; a partial restore or a dump of a directory never silently drops a
 * hard link whose content sits under a first name outside the selection. Both formats.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import { InvalidInputError } from '../shared/errors.js';
import { newChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { newSnapshotId } from '../shared/ids.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { restoreSnapshot } from '../shared/pipeline/restore-snapshot.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { runDumpCommand } from '../worker/commands/files-commands.js';
import type { CliOptions } from '../worker/commands/flags.js';

const signal = new AbortController().signal;

for (const format of ['archive', 'chunked'] as const) {
  describe(`browsing edge cases (${format} format)`, () => {
    let root: string;
    let repository: Repository;
    let context: EndpointContext;
    let id: string;
    const sparseSize = 2 * 1024 * 1024;

    before(async () => {
      root = await mkdtemp(path.join(os.tmpdir(), `snapworker-browse-edge-${format}-`));
      context = { checkPath: () => {}, stagingDir: root };
      const site = path.join(root, 'site');
      await mkdir(path.join(site, 'sub'), { recursive: true });
      // A sparse file: 2 MiB with 3 bytes of data in the middle.
      const sparse = await open(path.join(site, 'sparse'), 'w');
      await sparse.truncate(sparseSize);
      await sparse.write(Buffer.from('abc'), 0, 3, 1_000_000);
      await sparse.close();
      // A hard link whose first name (walk order: `a` before `sub/`) is outside `sub`.
      await writeFile(path.join(site, 'a'), 'important\n');
      await link(path.join(site, 'a'), path.join(site, 'sub', 'h'));
      await writeFile(path.join(site, 'sub', 'plain'), 'plain\n');
      repository = new Repository('edge', new FsDriver({ root: path.join(root, 'repo') }));
      await repository.init(format === 'chunked' ? { signal, snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig() } } : { signal });
      id = newSnapshotId();
      await takeSnapshot({ id, source: createDirSource([new URL(`dir://${site}`)], { name: 'site' }, context), repository, labels: {}, compression: 'zstd', signal, progress: nullProgress });
    });
    after(async () => {
      await rm(root, { recursive: true, force: true });
    });

    async function dump(where: string): Promise<Buffer> {
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (chunk: Buffer) => chunks.push(chunk));
      await runDumpCommand(repository, [id, where], { label: [] } as unknown as CliOptions, out, signal);
      return Buffer.concat(chunks);
    }

    it('dumps a sparse file whole: its logical size, holes as zeros', async () => {
      const bytes = await dump('/sparse');
      assert.equal(bytes.length, sparseSize);
      const expected = Buffer.alloc(sparseSize);
      expected.write('abc', 1_000_000);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(expected).digest('hex'));
    });

    it('refuses, in one line and writing nothing, a partial restore or dump that would drop a hard link to a first name outside it', async () => {
      const target = path.join(root, 'restored-sub');
      await assert.rejects(
        restoreSnapshot({ repository, record: await repository.getRecord(id), target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, selection: { subPath: '/sub' }, signal, progress: nullProgress }),
        (err: Error) => err instanceof InvalidInputError && /\/sub\/h is a hard link to \/a, which the selection leaves out/.test(err.message),
      );
      assert.equal(existsSync(target), false, 'nothing was written');
      await assert.rejects(dump('/sub'), (err: Error) => err instanceof InvalidInputError && /hard link to \/a/.test(err.message));
      // Selected together, both come back, linked.
      const both = path.join(root, 'restored-both');
      await restoreSnapshot({ repository, record: await repository.getRecord(id), target: createDirTarget([new URL(`dir://${both}`)], {}, context), replace: false, selection: { include: ['a', 'sub/h'] }, signal, progress: nullProgress });
      assert.equal((await import('node:fs')).readFileSync(path.join(both, 'sub', 'h'), 'utf8'), 'important\n');
    });
  });
}
