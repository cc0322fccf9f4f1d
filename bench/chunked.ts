/**
 * `npm run bench -- --chunked`: the chunked format against restic on Debian's linux-source-6.1
 * tree, in the same run, alternating: first snapshot, second snapshot of the unchanged tree, and
 * a third after changing 1% of the files (one line appended to each). Wall time, CPU seconds
 * (user + system of the process tree, from /usr/bin/time) and the repository's bytes after each.
 * Each round starts both tools on fresh repositories; the changed files are put back afterwards.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { median } from './median.js';

interface Measured {
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/** Runs argv under /usr/bin/time; rejects with its stderr when it fails. */
export function measured(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S %M', ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => {
      const line = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
      if (code !== 0 || !line) reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds: Number(line[1]), cpuSeconds: Number(line[2]) + Number(line[3]), peakRssMiB: Number(line[4]) / 1024 });
    });
  });
}

function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** Every 100th regular file of the tree (1%), in a stable order. */
function onePercent(corpus: string): string[] {
  const files = readdirSync(corpus, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
  return files.filter((_, i) => i % 100 === 0);
}

export interface ChunkedBenchRow {
  step: string;
  tool: string;
  seconds: number;
  cpuSeconds: number;
  storedMiB: number;
  peakRssMiB: number;
}

/**
 * Runs the comparison `rounds` times; resolves with one row per step and tool (medians).
 * @param cli argv prefix that runs snapworker's command line.
 */
export async function runChunkedBench(options: { cli: string[]; corpus: string; work: string; rounds: number; log: (line: string) => void }): Promise<ChunkedBenchRow[]> {
  const { cli, corpus, work, rounds, log } = options;
  const changed = onePercent(corpus);
  const originals = changed.map((file) => readFileSync(file));
  const samples = new Map<string, ChunkedBenchRow[]>();
  const record = (row: ChunkedBenchRow) => {
    log(`  ${row.tool} ${row.step}: ${row.seconds.toFixed(1)} s, ${row.cpuSeconds.toFixed(1)} CPU s, ${row.storedMiB.toFixed(0)} MiB stored, ${row.peakRssMiB.toFixed(0)} MiB RSS`);
    const key = `${row.step}\0${row.tool}`;
    samples.set(key, [...(samples.get(key) ?? []), row]);
  };
  const restic = { RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
  for (let round = 0; round < rounds; round++) {
    const ours = path.join(work, 'chunked-repo');
    const theirs = path.join(work, 'restic-repo');
    rmSync(ours, { recursive: true, force: true });
    rmSync(theirs, { recursive: true, force: true });
    rmSync(restic.RESTIC_CACHE_DIR, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    await measured([...cli, 'init', '--repo', `file://${ours}`, '--format', 'chunked']);
    await measured(['restic', 'init', '--repo', theirs, '-q'], restic);
    const steps: Array<[string, () => void]> = [
      ['first snapshot', () => {}],
      ['second, unchanged', () => {}],
      ['third, 1% of files changed', () => changed.forEach((file) => appendFileSync(file, 'changed\n'))],
    ];
    try {
      for (const [step, prepare] of steps) {
        prepare();
        // Alternating which tool goes first, so neither always meets a warm or cold page cache.
        const order = round % 2 === 0 ? ['snapworker', 'restic'] : ['restic', 'snapworker'];
        for (const tool of order) {
          const run =
            tool === 'snapworker'
              ? await measured([...cli, 'snapshot', `dir://${corpus}`, '--local', '--repo', `file://${ours}`, '--name', 'linux'])
              : await measured(['restic', 'backup', '--repo', theirs, '-q', corpus], restic);
          record({ step, tool, ...run, storedMiB: bytesUnder(tool === 'snapworker' ? ours : theirs) / 2 ** 20 });
        }
      }
    } finally {
      changed.forEach((file, i) => writeFileSync(file, originals[i]!));
    }
  }
  return [...samples.values()].map((rows) => ({
    ...rows[0]!,
    seconds: median(rows.map((r) => r.seconds)),
    cpuSeconds: median(rows.map((r) => r.cpuSeconds)),
    storedMiB: median(rows.map((r) => r.storedMiB)),
    peakRssMiB: median(rows.map((r) => r.peakRssMiB)),
  }));
}

/** The rows as a markdown table. */
export function chunkedTable(rows: readonly ChunkedBenchRow[]): string {
  const lines = ['| step | tool | wall s | CPU s | repository MiB after | peak RSS MiB |', '| --- | --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) lines.push(`| ${r.step} | ${r.tool} | ${r.seconds.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${r.storedMiB.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} |`);
  return lines.join('\n');
}
