/**
 * Walk+read throughput of the directory source against tar, and optionally restore throughput of
 * the directory target.
 *
 *   node --import tsx bench/dir.ts <tree> [--runs=3] [--io=sync|async|both] [--read-ahead-files=32]
 *                       [--read-ahead-mib=8] [--restore] [--restore-parent=<dir on the same disk>]
 *
 * Reads every entry's bytes the way the archive writer does (one entry at a time, in order) and
 * discards them; reports MiB/s and files/s per run. Compares with
 * `tar -cf - -C <tree> . | cat > /dev/null` (GNU tar notices an archive named /dev/null and then
 * skips reading file contents, so `tar -cf /dev/null` is shown too, as a stat-only reference).
 * Page cache state is whatever it is: run twice for warm figures, drop caches for cold ones.
 *
 * With --restore it also feeds the entries into the directory target (fsync of every file on
 * and off) under --restore-parent (default: the OS temp dir) and removes the result.
 */
import { manifestFor } from '../test/helpers/archive-fixtures.js';
import { nullNotices } from '../shared/kinds/notices.js';
import { execSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dirUri } from '../shared/kinds/dir/dir-uri.js';
import { nullProgress } from '../shared/progress.js';
import { createDirSourceFactory, DIR_SOURCE_DEFAULTS, type DirSourceOptions } from '../shared/kinds/dir/dir-source.js';
import type { EndpointContext, Source } from '../shared/kinds/source.js';
import { createDirTargetFactory } from '../shared/kinds/dir/dir-target.js';

const MiB = 1024 * 1024;
const context: EndpointContext = { checkPath() {}, stagingDir: os.tmpdir() };

interface Run {
  seconds: number;
  bytes: number;
  files: number;
}

function report(label: string, run: Run): void {
  const mibs = run.bytes / MiB / run.seconds;
  const filesPerSecond = run.files / run.seconds;
  console.log(
    `${label.padEnd(34)} ${run.seconds.toFixed(2).padStart(7)} s  ${mibs.toFixed(0).padStart(6)} MiB/s  ${filesPerSecond.toFixed(0).padStart(7)} files/s`,
  );
}

async function timeSourceRead(source: Source): Promise<Run> {
  const signal = new AbortController().signal;
  const started = process.hrtime.bigint();
  let bytes = 0;
  let files = 0;
  for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
    if (!entry.open) continue;
    files += 1;
    for await (const chunk of await entry.open()) bytes += (chunk as Buffer).length;
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes, files };
}

async function timeRestore(source: Source, parent: string, fsyncFiles: boolean): Promise<Run> {
  const scratch = await mkdtemp(path.join(parent, 'snapworker-bench-'));
  try {
    const signal = new AbortController().signal;
    const target = createDirTargetFactory({ fsyncFiles })([dirUri(path.join(scratch, 'restored'))], {}, context);
    const started = process.hrtime.bigint();
    const session = await target.begin(
      manifestFor(source),
      { signal, progress: nullProgress, replace: false },
    );
    let files = 0;
    try {
      for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
        if (entry.open) files += 1;
        await session.write(entry, await entry.open?.());
      }
    } catch (err) {
      await session.abort();
      throw err;
    }
    const result = await session.commit();
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes: result.bytes, files };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function timeShell(command: string): number {
  const started = process.hrtime.bigint();
  execSync(command, { stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/bash' });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: 'string', default: '3' },
      io: { type: 'string', default: 'both' },
      'read-ahead-files': { type: 'string', default: String(DIR_SOURCE_DEFAULTS.readAheadFiles) },
      'read-ahead-mib': { type: 'string', default: String(DIR_SOURCE_DEFAULTS.readAheadBytes / MiB) },
      restore: { type: 'boolean', default: false },
      'restore-parent': { type: 'string', default: os.tmpdir() },
    },
  });
  const tree = positionals[0];
  if (!tree || !path.isAbsolute(tree)) {
    console.error('usage: node --import tsx bench/dir.ts <absolute path of a tree> [--runs=3] [--restore]');
    process.exit(2);
  }
  const ioModes = (values.io === 'both' ? ['sync', 'async'] : [values.io]) as ('sync' | 'async')[];
  const options: DirSourceOptions = {
    readAheadFiles: Number(values['read-ahead-files']),
    readAheadBytes: Number(values['read-ahead-mib']) * MiB,
  };
  const sourceWith = (io: 'sync' | 'async'): Source => createDirSourceFactory({ ...options, io })([dirUri(tree)], {}, context);
  const quoted = `'${tree.replaceAll("'", "'\\''")}'`;
  console.log(`tree ${tree}; read-ahead ${options.readAheadFiles} files / ${values['read-ahead-mib']} MiB; node ${process.version}`);

  let last: Run = { seconds: 0, bytes: 0, files: 0 };
  for (let run = 1; run <= Number(values.runs); run++) {
    for (const io of ioModes) {
      last = await timeSourceRead(sourceWith(io));
      report(`dir source (${io}) walk+read, run ${run}`, last);
    }
    const tarPipe = timeShell(`tar -cf - -C ${quoted} . | cat > /dev/null`);
    report(`tar -cf - | cat >/dev/null, run ${run}`, { ...last, seconds: tarPipe });
  }
  const tarNull = timeShell(`tar -cf /dev/null -C ${quoted} .`);
  report('tar -cf /dev/null (reads no data)', { ...last, seconds: tarNull });
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);

  if (values.restore) {
    const source = sourceWith(ioModes[0]!);
    report('restore, fsync every file', await timeRestore(source, values['restore-parent'], true));
    report('restore, no per-file fsync', await timeRestore(source, values['restore-parent'], false));
    console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  }
}

await main();
