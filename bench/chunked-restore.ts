/**
 * Restore of a chunked snapshot against `restic restore` and `zstd -dc | tar -x` of the same tree,
 * in one run, alternating the order per round (fresh target folders each time):
 *
 *   node --import tsx bench/chunked-restore.ts --corpus /path/to/tree [--work DIR] [--rounds N]
 *
 * Sets up once: a chunked repository with one snapshot of the corpus, a restic repository with
 * one backup of it, and a `tar | zstd -3` archive of it. Reports wall seconds, CPU seconds (user +
 * system of the process tree, from /usr/bin/time) and peak RSS, medians over the rounds. Our side
 * runs the CLI through tsx, whose start costs a few CPU seconds of its own (measured alone as
 * `snapworker --help`, printed too); the restore also ends with one syncfs (durability before the
 * swap), which restic and tar do not do.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measured } from './chunked.js';
import { median } from './median.js';

interface Row {
  tool: string;
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/**
 * Runs the comparison; resolves with one row per tool (medians over `rounds`).
 * @param cli argv prefix that runs snapworker's command line.
 */
export async function runChunkedRestoreBench(options: { cli: string[]; corpus: string; work: string; rounds: number; log: (line: string) => void }): Promise<Row[]> {
  const { cli, corpus, work, rounds, log } = options;
  const ours = path.join(work, 'chunked-repo');
  const theirs = path.join(work, 'restic-repo');
  const archive = path.join(work, 'corpus.tar.zst');
  const restic = { RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  await measured([...cli, 'init', '--repo', `file://${ours}`, '--format', 'chunked']);
  await measured([...cli, 'snapshot', `dir://${corpus}`, '--local', '--repo', `file://${ours}`, '--name', 'corpus']);
  await measured(['restic', 'init', '--repo', theirs, '-q'], restic);
  await measured(['restic', 'backup', '--repo', theirs, '-q', corpus], restic);
  await measured(['sh', '-c', `tar -cf - -C "${path.dirname(corpus)}" "${path.basename(corpus)}" | zstd -3 -T0 -q > "${archive}"`]);
  const startup = await measured([...cli, '--help']);
  log(`  snapworker --help (start-up alone): ${startup.cpuSeconds.toFixed(1)} CPU s, ${startup.peakRssMiB.toFixed(0)} MiB RSS`);

  const samples = new Map<string, Row[]>();
  const tools = ['snapworker', 'restic', 'zstd -dc + tar -x'];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? tools : [...tools].reverse();
    for (const tool of order) {
      const target = path.join(work, 'restored');
      rmSync(target, { recursive: true, force: true });
      let run;
      if (tool === 'snapworker') run = await measured([...cli, 'restore', 'latest', '--source', 'corpus', `dir://${target}`, '--local', '--repo', `file://${ours}`]);
      else if (tool === 'restic') run = await measured(['restic', 'restore', 'latest', '--repo', theirs, '-q', '--target', target], restic);
      else {
        mkdirSync(target);
        run = await measured(['sh', '-c', `zstd -dc "${archive}" | tar -x -C "${target}"`]);
      }
      log(`  ${tool}: ${run.seconds.toFixed(1)} s, ${run.cpuSeconds.toFixed(1)} CPU s, ${run.peakRssMiB.toFixed(0)} MiB RSS`);
      samples.set(tool, [...(samples.get(tool) ?? []), { tool, ...run }]);
    }
  }
  rmSync(path.join(work, 'restored'), { recursive: true, force: true });
  return [...samples.values()].map((rows) => ({
    tool: rows[0]!.tool,
    seconds: median(rows.map((r) => r.seconds)),
    cpuSeconds: median(rows.map((r) => r.cpuSeconds)),
    peakRssMiB: median(rows.map((r) => r.peakRssMiB)),
  }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { corpus: { type: 'string' }, work: { type: 'string', default: '/tmp/snapworker-bench-restore' }, rounds: { type: 'string', default: '2' } } });
  if (!values.corpus || !path.isAbsolute(values.corpus)) throw new Error('give --corpus /absolute/path/to/a/tree');
  const cli = [process.execPath, '--import', 'tsx', path.join(import.meta.dirname, '..', 'worker', 'cli.ts')];
  const rows = await runChunkedRestoreBench({ cli, corpus: values.corpus, work: values.work!, rounds: Number(values.rounds), log: console.log });
  console.log('| tool | wall s | CPU s | peak RSS MiB |\n| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.tool} | ${r.seconds.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} |`);
}
