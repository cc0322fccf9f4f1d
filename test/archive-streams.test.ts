import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import type { SourceEntry } from '../shared/snapshot/entry.js';
import { readArchive } from '../shared/formats/archive/archive-reader.js';
import { AbortedError } from '../shared/errors.js';
import { writeArchive } from '../shared/formats/archive/archive-writer.js';
import type { Compression } from '../shared/formats/archive/manifest.js';
import { nullProgress } from '../shared/progress.js';
import { testManifest } from './helpers/archive-fixtures.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';

const MiB = 1024 * 1024;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  peakRssBytes: number;
}

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'snapworker-streams-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Runs the CLI in a child process and measures its peak RSS (all threads). */
function cli(args: string[]): Promise<CliRun> {
  const rssFile = path.join(scratch, `rss-${process.hrtime.bigint()}`);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', path.join(PROJECT_ROOT, 'test', 'helpers', 'peak-rss.ts'), path.join(PROJECT_ROOT, 'worker', 'cli.ts'), ...args],
      { cwd: PROJECT_ROOT, env: { ...process.env, PEAK_RSS_FILE: rssFile, SNAPWORKER_ALLOWED_PATHS: scratch }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      readFile(rssFile, 'utf8').then(
        (text) => resolve({ code, stdout, stderr, peakRssBytes: Number(text) }),
        () => resolve({ code, stdout, stderr, peakRssBytes: NaN }),
      );
    });
  });
}

describe('reading archives whose data compresses extremely well', () => {
  // Before decompression was pulled by the reader, verify of 512 MiB of zeros took ~1 GB of RSS
  // with zstd, and more than 2 GiB of zeros could never be restored at all. gzip and the
  // uncompressed tar get a smaller file: the same check, less time.
  const SIZES: Record<Compression, number> = { zstd: 512 * MiB, gzip: 256 * MiB, none: 256 * MiB };
  const TAIL = Buffer.from('TAILDATA');
  const LIMIT = 350 * MiB;

  for (const compression of ['zstd', 'gzip', 'none'] as Compression[]) {
    const SIZE = SIZES[compression];
    it(`verifies and restores ${SIZE / MiB} MiB of zeros (${compression}) under ${LIMIT / MiB} MiB of peak RSS`, async () => {
      const source = await zerosTree(`zeros-${compression}`, SIZE, TAIL);
      const repo = `file://${path.join(scratch, `repo-${compression}`)}`;
      const snap = await cli(['snapshot', `dir://${source}`, '--name', 'zeros', '--compression', compression, '--repo', repo, '--local', '--json']);
      assert.equal(snap.code, 0, snap.stderr);
      const verify = await cli(['verify', 'latest', '--source', 'zeros', '--repo', repo, '--local', '--json']);
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(JSON.parse(verify.stdout).rawBytes, SIZE);
      const target = path.join(scratch, `restored-${compression}`);
      const restore = await cli(['restore', 'latest', `dir://${target}`, '--source', 'zeros', '--repo', repo, '--local', '--json']);
      assert.equal(restore.code, 0, restore.stderr);
      const restored = path.join(target, 'big');
      assert.equal((await stat(restored)).size, SIZE);
      const tail = await readTail(restored, TAIL.length);
      await rm(target, { recursive: true, force: true });
      assert.deepEqual(tail, TAIL);
      assert.ok(verify.peakRssBytes < LIMIT, `verify peak RSS ${Math.round(verify.peakRssBytes / MiB)} MiB`);
      assert.ok(restore.peakRssBytes < LIMIT, `restore peak RSS ${Math.round(restore.peakRssBytes / MiB)} MiB`);
    });
  }
});

describe('reading archives of many empty entries', () => {
  it('reads 200,000 empty files back, in order, with a slow and a fast consumer', async () => {
    // The kind of fault: a decompressor that waits for the reader to ask again while the reader
    // waits for it. Zero-byte entries are 512-byte headers only, so the tar parser eats a 1 MiB
    // chunk in one go and the consumer asks for the next one in a pattern that once hung at
    // about 166,000 entries.
    const COUNT = 200_000;
    const archive = path.join(scratch, 'empty.tar.zst');
    const mtime = new Date('2024-01-02T03:04:05Z');
    function* entries(): Generator<SourceEntry> {
      yield { path: 'data', type: 'directory', mode: 0o755, mtime, size: 0 };
      for (let i = 0; i < COUNT; i++) yield { path: `data/f${i}`, type: 'file', mode: 0o644, mtime, size: 0, open: () => Readable.from([]) };
    }
    const { stream, done } = writeArchive({
      manifest: testManifest({ compression: 'zstd' }),
      entries: (async function* () { yield* entries(); })(),
      signal: new AbortController().signal,
      progress: nullProgress,
      threads: 1,
    });
    await pipeline(stream, createWriteStream(archive));
    await done;

    // Generous: the point is the order and that it ends, not its speed on a loaded machine.
    const verified = await readArchive(createReadStream(archive), { signal: AbortSignal.timeout(600_000) });
    assert.equal(verified.files, COUNT);

    let seen = 0;
    const restored = await readArchive(createReadStream(archive), {
      signal: AbortSignal.timeout(600_000),
      onEntry: async (header, body) => {
        if (body) for await (const _ of body);
        if (header.type === 'file') assert.equal(header.path, `data/f${seen++}`);
        if (seen % 5000 === 0) await new Promise((resolve) => setImmediate(resolve));
      },
    });
    assert.equal(restored.entries, COUNT + 1);
    assert.equal(seen, COUNT);
  });
});

describe('aborting a read while the consumer waits inside a body', () => {
  for (const compression of ['zstd', 'none'] as const) {
    it(`rejects with AbortedError and ends the consumer's body instead of hanging (${compression})`, async () => {
      // Incompressible, so half the stored bytes hold part of the body whatever the compression.
      const bytes = randomBytes(8 * MiB);
      const { stream, done } = writeArchive({
        manifest: testManifest({ compression }),
        entries: (async function* (): AsyncGenerator<SourceEntry> {
          yield { path: 'data', type: 'directory', mode: 0o755, mtime: new Date(), size: 0 };
          yield { path: 'data/big', type: 'file', mode: 0o644, mtime: new Date(), size: bytes.length, open: () => Readable.from([bytes]) };
        })(),
        signal: new AbortController().signal,
        progress: nullProgress,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      await done;
      const whole = Buffer.concat(chunks);
      // Only the first part arrives, and the input stays open: the body waits for more.
      const input = new PassThrough();
      input.write(whole.subarray(0, Math.floor(whole.length / 2)));
      const controller = new AbortController();
      let bodyError: unknown;
      const reading = readArchive(input, {
        signal: controller.signal,
        onEntry: async (_header, body) => {
          if (!body) return;
          try {
            for await (const _ of body) controller.abort(new Error('operator stopped it'));
          } catch (err) {
            bodyError = err;
            throw err;
          }
        },
      });
      await assert.rejects(reading, AbortedError);
      assert.ok(bodyError, 'the consumer saw its body end with an error');
      assert.ok(input.destroyed, 'the input was destroyed');
    });
  }
});

/** A directory holding `big`: `size` bytes of zeros ending in `tail`, sparse so it costs no disk. */
async function zerosTree(name: string, size: number, tail: Buffer): Promise<string> {
  const root = path.join(scratch, name);
  await mkdir(root);
  const handle = await open(path.join(root, 'big'), 'w');
  try {
    await handle.truncate(size);
    await handle.write(tail, 0, tail.length, size - tail.length);
  } finally {
    await handle.close();
  }
  return root;
}

async function readTail(file: string, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, (await handle.stat()).size - length);
    return buffer;
  } finally {
    await handle.close();
  }
}
