/**
 * `npm run bench`: snapworker beside its peers, measured in the same run, alternating, several
 * rounds; prints medians and ratios and writes them to docs/benchmarks.md.
 *
 *   npm run bench                     generated corpus (~300 MB mixed), a few minutes
 *   npm run bench -- --full           Debian's linux-source-6.1 tree (1.3 GB, 78k files)
 *   npm run bench -- --rounds 5       more rounds
 *   npm run bench -- --memory 10      also snapshot a generated 10 GiB source and report peak RSS
 *   npm run bench -- --catalog        only the catalog at 100,000 snapshots (bench/catalog.ts)
 *   npm run bench -- --no-write       print only, leave docs/benchmarks.md alone
 *   npm run bench -- --fleet          instead: 1, 2, 4, 8 worker processes on Redis and a cluster (fleet/)
 *   npm run bench -- --encryption     instead: plain beside encrypted snapshot and restore, both formats (encryption.ts)
 *   npm run bench -- --replication    instead: SQLite replication (replication.ts; --full: the 1 GiB restore)
 *   npm run bench -- --help           every flag (bench-args.ts)
 *
 * Our side runs the compiled CLI (`node dist/worker/cli.js … --local`), as a user would; peak
 * memory is the child's VmHWM. Benchmarks are not tests: nothing here asserts a time.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import { benchArgsOrExit } from './bench-args.js';
import { median } from './median.js';
import { fleetBench, fleetTable, FLEET_SIZES, FLEET_CONCURRENCY } from './fleet/fleet-bench.js';

const PROJECT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(PROJECT, 'dist', 'worker', 'cli.js');
// Before anything else: --help and bad flags answer at once, without building or generating.
const args = benchArgsOrExit(process.argv.slice(2));
const ROUNDS = args.rounds;
const WORK = args.work;

interface Run {
  seconds: number;
  peakRssBytes?: number;
}

/** Runs a command (argv, or a shell script when given a string), timing it and sampling peak RSS. */
function timed(command: string | string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const [file, argv] = typeof command === 'string' ? ['bash', ['-o', 'pipefail', '-c', command]] : [command[0]!, command.slice(1)];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    let peak = 0;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const sample = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
      } catch {
        // exited between samples
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(sample);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${typeof command === 'string' ? command : command.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds, ...(peak ? { peakRssBytes: peak } : {}) });
    });
  });
}

function duSize(dir: string): number {
  const out = spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout;
  return Number(out.split('\t')[0]);
}

function fileCount(dir: string): number {
  return Number(spawnSync('bash', ['-c', `find '${dir}' -type f | wc -l`], { encoding: 'utf8' }).stdout.trim());
}

/** Writes `bytes` of half-compressible data (random halves, text halves) without holding it. */
function writeMixedFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  const text = Buffer.from('snapworker benchmark line of fairly compressible text 0123456789\n'.repeat(16384));
  try {
    for (let done = 0; done < bytes; ) {
      const chunk = done % (2 << 20) === 0 ? randomBytes(Math.min(1 << 20, bytes - done)) : text.subarray(0, Math.min(text.length, 1 << 20, bytes - done));
      writeSync(fd, chunk);
      done += chunk.length;
    }
  } finally {
    closeSync(fd);
  }
}

/** A tree of `bigFiles` large files and `smallFiles` small ones in nested directories. */
function generateTree(root: string, bigFiles: number, bigBytes: number, smallFiles: number): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (let i = 0; i < bigFiles; i++) writeMixedFile(path.join(root, `big-${i}.bin`), bigBytes);
  for (let i = 0; i < smallFiles; i++) {
    const dir = path.join(root, `d${i % 50}`, `e${i % 7}`);
    mkdirSync(dir, { recursive: true });
    const size = 200 + ((i * 7919) % 16000);
    writeFileSync(path.join(dir, `f${i}.txt`), i % 3 === 0 ? randomBytes(size) : Buffer.alloc(size, `line ${i}\n`));
  }
}

/** Debian's linux-source tree, unpacked once into the work dir. */
function linuxSource(): string {
  const tarball = '/usr/src/linux-source-6.1.tar.xz';
  const dir = path.join(WORK, 'linux-source');
  if (existsSync(path.join(dir, '.complete'))) return dir;
  if (!existsSync(tarball)) {
    console.log('installing linux-source-6.1 (Debian package) for the full corpus');
    spawnSync('bash', ['-c', 'apt-get update -qq && apt-get install -y -qq linux-source-6.1'], { stdio: 'inherit' });
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const untar = spawnSync('tar', ['-xJf', tarball, '-C', dir, '--strip-components=1'], { stdio: 'inherit' });
  if (untar.status !== 0) throw new Error('could not unpack linux-source');
  writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

const ours = {
  snapshot: (source: string, repo: string) => timed([process.execPath, CLI, 'snapshot', `dir://${source}`, '--local', '--repo', `file://${repo}`, '--json']),
  restore: (repo: string, target: string, name: string) =>
    timed([process.execPath, CLI, 'restore', 'latest', `dir://${target}`, '--source', name, '--local', '--repo', `file://${repo}`]),
};
const peers = {
  snapshot: (source: string, out: string) => timed(`tar -cf - -C '${source}' . | zstd -q -3 -T0 -o '${out}'`),
  restore: (archive: string, target: string) => timed(`mkdir -p '${target}' && zstd -q -dc '${archive}' | tar -xf - -C '${target}'`),
};

interface Row {
  figure: string;
  ours: string;
  peer: string;
  ratio: string;
  note?: string;
}

/** Snapshot and restore of `source`, alternating with tar|zstd and zstd|tar, `ROUNDS` rounds. */
async function compareSnapshotRestore(label: string, source: string): Promise<{ rows: Row[]; snapshotSeconds: number; peakRss: number }> {
  const scratch = path.join(WORK, 'scratch');
  const name = path.basename(source);
  const runs = { ourSnap: [] as Run[], peerSnap: [] as Run[], ourRestore: [] as Run[], peerRestore: [] as Run[] };
  for (let round = 0; round < ROUNDS; round++) {
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    const repo = path.join(scratch, 'repo');
    const peerArchive = path.join(scratch, 'peer.tar.zst');
    // Alternate who goes first, so page-cache warmth does not favour one side.
    if (round % 2 === 0) {
      runs.ourSnap.push(await ours.snapshot(source, repo));
      runs.peerSnap.push(await peers.snapshot(source, peerArchive));
    } else {
      runs.peerSnap.push(await peers.snapshot(source, peerArchive));
      runs.ourSnap.push(await ours.snapshot(source, repo));
    }
    spawnSync('sync');
    const ourTarget = path.join(scratch, 'ours-restored');
    const peerTarget = path.join(scratch, 'peer-restored');
    if (round % 2 === 0) {
      runs.ourRestore.push(await ours.restore(repo, ourTarget, name));
      runs.peerRestore.push(await peers.restore(peerArchive, peerTarget));
    } else {
      runs.peerRestore.push(await peers.restore(peerArchive, peerTarget));
      runs.ourRestore.push(await ours.restore(repo, ourTarget, name));
    }
    console.log(
      `  round ${round + 1}: snapshot ${runs.ourSnap.at(-1)!.seconds.toFixed(2)}s vs ${runs.peerSnap.at(-1)!.seconds.toFixed(2)}s, ` +
        `restore ${runs.ourRestore.at(-1)!.seconds.toFixed(2)}s vs ${runs.peerRestore.at(-1)!.seconds.toFixed(2)}s`,
    );
  }
  rmSync(scratch, { recursive: true, force: true });
  const m = (r: Run[]) => median(r.map((x) => x.seconds));
  const peak = Math.max(...[...runs.ourSnap, ...runs.ourRestore].map((r) => r.peakRssBytes ?? 0));
  // Throughput ratio: peer time / our time (1.0 = as fast as the peer, higher is faster).
  const ratio = (ourRuns: Run[], peerRuns: Run[]) => (m(peerRuns) / m(ourRuns)).toFixed(2);
  return {
    snapshotSeconds: m(runs.ourSnap),
    peakRss: peak,
    rows: [
      { figure: `snapshot ${label}`, ours: `${m(runs.ourSnap).toFixed(2)} s`, peer: `${m(runs.peerSnap).toFixed(2)} s (tar \\| zstd -3 -T0)`, ratio: ratio(runs.ourSnap, runs.peerSnap) },
      { figure: `restore ${label}`, ours: `${m(runs.ourRestore).toFixed(2)} s`, peer: `${m(runs.peerRestore).toFixed(2)} s (zstd -dc \\| tar -x)`, ratio: ratio(runs.ourRestore, runs.peerRestore) },
      { figure: `peak RSS ${label}`, ours: `${(peak / 2 ** 20).toFixed(0)} MiB`, peer: '', ratio: '' },
    ],
  };
}

/** Enqueue-to-start latency on an idle worker, and small-job throughput over two worker processes. */
async function queueOverhead(): Promise<Row[]> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const connection = { host: new URL(redisUrl).hostname, port: Number(new URL(redisUrl).port || 6379) };
  const queueName = `bench-${randomBytes(4).toString('hex')}`;
  const root = path.join(WORK, 'queue');
  rmSync(root, { recursive: true, force: true });
  generateTree(path.join(root, 'tiny'), 0, 0, 3);
  const env = {
    REDIS_URL: redisUrl,
    SNAPWORKER_QUEUE: queueName,
    SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${path.join(root, 'repo')}` }),
    SNAPWORKER_ALLOWED_PATHS: root,
    SNAPWORKER_METRICS_PORT: '0',
    SNAPWORKER_CONCURRENCY: '8',
    LOG_LEVEL: 'warn',
  };
  const queue = new Queue(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  const workers = [0, 1].map(() => spawn(process.execPath, [CLI, 'worker'], { env: { ...process.env, ...env }, stdio: 'ignore' }));
  try {
    await events.waitUntilReady();
    await new Promise((r) => setTimeout(r, 2000)); // workers connected and idle
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const job = await queue.add('snapshot', { v: 1, source: `dir://${path.join(root, 'tiny')}` }, { priority: 10 });
      await job.waitUntilFinished(events, 30_000);
      const done = (await queue.getJob(job.id!))!;
      latencies.push(done.processedOn! - done.timestamp);
      await new Promise((r) => setTimeout(r, 100));
    }
    const count = 400;
    const started = Date.now();
    const jobs = await queue.addBulk(Array.from({ length: count }, () => ({ name: 'snapshot', data: { v: 1, source: `dir://${path.join(root, 'tiny')}` }, opts: { priority: 10 } })));
    await Promise.all(jobs.map((j) => j.waitUntilFinished(events, 300_000)));
    const perSecond = count / ((Date.now() - started) / 1000);
    return [
      { figure: 'enqueue-to-start, idle worker (median of 20)', ours: `${median(latencies).toFixed(0)} ms`, peer: 'target < 50 ms', ratio: '' },
      { figure: `small snapshot jobs, 2 worker processes (${count} jobs)`, ours: `${perSecond.toFixed(0)} jobs/s`, peer: 'target ≥ 200 jobs/s', ratio: '' },
    ];
  } finally {
    workers.forEach((w) => w.kill('SIGTERM'));
    await events.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Replaces the section `key` of the benchmarks page (between its markers), keeping the others,
 * so a default run does not erase the figures of the last full run.
 */
function writeSection(file: string, key: string, title: string, body: string): void {
  const header = '# Benchmarks\n\nRatio above 1 means snapworker was faster than the peer; the performance goal is ≥ 0.8. Regenerate with `npm run bench` (default corpus) or `npm run bench -- --full` (linux-source): each run rewrites its own section of this page (the figures between its `begin`/`end` markers) unless given `--no-write`, which only prints them. `npm run bench -- --help` lists every flag (`--full`, `--rounds N`, `--memory GIB`, `--no-write`, `--skip-queue`, `--skip-scaling`, `--catalog`, `--catalog-snapshots N`, `--fleet`, `--fleet-jobs N`, `--encryption`, `--replication`, `--chunked`, `--work DIR`).\n';
  const begin = `<!-- begin ${key} -->`;
  const end = `<!-- end ${key} -->`;
  const block = `${begin}\n## ${title}\n\n${body}\n${end}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : header;
  const start = current.indexOf(begin);
  const stop = current.indexOf(end);
  const next = start >= 0 && stop > start ? current.slice(0, start) + block + current.slice(stop + end.length) : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}

/** `--catalog`: the catalog bench alone (no build, no corpus), into its own section. */
async function catalogMain(): Promise<void> {
  const { runCatalogBench } = await import('./catalog.js');
  const { figures, notes } = await runCatalogBench({ snapshots: args.catalogSnapshots, rounds: ROUNDS, work: WORK });
  const table = [
    '| figure | filesystem | s3rver | goal |',
    '|---|---|---|---|',
    ...figures.map((f) => `| ${f.figure} | ${f.fs} | ${f.s3} | ${f.goal} |`),
  ].join('\n');
  const section =
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()} with \`${commandLine()}\` (${ROUNDS} rounds on a fresh \`Repository\` each, in process, medians and maxima; s3rver as a child process on the same machine). ` +
    `100 lineages; records written straight through \`Repository\` (no archives), each lineage's index as 10 objects. Setup: ${notes.join('; ')}.\n\n${table}`;
  console.log('\n' + table);
  if (!args.noWrite) {
    writeSection(path.join(PROJECT, 'docs', 'benchmarks.md'), 'catalog', 'Catalog at scale', section);
    console.log('\nwrote docs/benchmarks.md');
  }
}

/** `--replication`: the SQLite replication figures alone (no build), into their own section. */
async function replicationMain(): Promise<void> {
  const { runReplicationBench } = await import('./replication.js');
  const [restoreMib, restoreSegments] = args.full ? [1024, 10_000] : [64, 1000];
  const seconds = 5;
  console.log(`replication: ${ROUNDS} rounds of ${seconds} s per variant; restore of ${restoreMib} MiB with ${restoreSegments} segments`);
  const figures = await runReplicationBench({ seconds, rounds: ROUNDS, restoreMib, restoreSegments, work: WORK, log: (line) => console.log(line) });
  const table = ['| figure | value |', '|---|---|', ...figures.map((f) => `| ${f.figure} | ${f.value} |`)].join('\n');
  const section =
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()} with \`${commandLine()}\` (${ROUNDS} rounds alternating the variants, medians; ` +
    `load average ${os.loadavg()[0]!.toFixed(1)} at the end). A writer process commits one 200-byte row per transaction (WAL, \`synchronous = NORMAL\`) as fast as it can for ${seconds} s; ` +
    `the replicator (interval 1 s, default checkpoint thresholds) runs in the bench's process into a file repository on the same disk. ` +
    `Each variant with replication is compared with the one without it that differs in nothing else (a fresh database, WAL mode, \`synchronous = NORMAL\`, the same application checkpoint policy). ` +
    `Overheads are 1 − with/without per round (throughput) and with/without − 1 (the writer's CPU per transaction, which the machine's load moves less). See bench/replication.ts.\n\n${table}`;
  console.log('\n' + table);
  if (!args.noWrite) {
    writeSection(path.join(PROJECT, 'docs', 'benchmarks.md'), 'replication', 'SQLite replication', section);
    console.log('\nwrote docs/benchmarks.md');
  }
}

/**
 * `--chunked`: the chunked format against restic on linux-source-6.1, into its own section. The
 * built CLI, as users run it: through tsx every command paid about 3 CPU-seconds of compiling.
 */
async function chunkedMain(): Promise<void> {
  const { runChunkedBench, chunkedTable } = await import('./chunked.js');
  console.log('building (npm run build)');
  buildCli();
  const corpus = linuxSource();
  console.log(`chunked vs restic on linux-source-6.1, ${ROUNDS} rounds`);
  const rows = await runChunkedBench({ cli: [process.execPath, CLI], corpus, work: WORK, rounds: ROUNDS, log: (line) => console.log(line) });
  const table = chunkedTable(rows);
  const section =
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()} with \`${commandLine()}\` (medians of ${ROUNDS} rounds, tools alternating, each round on fresh repositories; ` +
    'CPU seconds are user + system of the whole process tree; the third snapshot follows appending a line to every 100th file).\n\n' +
    table;
  console.log('\n' + table);
  if (!args.noWrite) {
    writeSection(path.join(PROJECT, 'docs', 'benchmarks.md'), 'chunked', 'Chunked format against restic', section);
    console.log('\nwrote docs/benchmarks.md');
  }
}

/** `--fleet`: the fleet figures alone, printed and written to their own section. */
async function fleetMain(): Promise<void> {
  console.log(`fleet: ${FLEET_SIZES.join(', ')} worker processes × standalone Redis and a 3-master cluster, ${args.fleetJobs} jobs per batch, ${ROUNDS} rounds`);
  const rows = await fleetBench({ cli: CLI, work: WORK, rounds: ROUNDS, jobs: args.fleetJobs, log: (line) => console.log(line) });
  const table = fleetTable(rows);
  const section =
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()} with \`${commandLine()}\` (${ROUNDS} rounds, medians; ` +
    `load average ${os.loadavg()[0]!.toFixed(1)} at the end: other work may have shared the cores). Each worker process runs ${FLEET_CONCURRENCY} jobs at once; ` +
    `a job is a snapshot of a 3-file directory into a file repository, enqueued with the client's defaults. CPU is per job of the measured batch; ` +
    `"cores busy: ours" is their CPU-seconds (workers, Redis, producer) per wall second, "others" that of every other process on the machine meanwhile; ` +
    `Redis commands include those run inside BullMQ's Lua scripts, ` +
    `script calls are round trips.\n\n${table}`;
  console.log('\n' + table);
  if (!args.noWrite) {
    writeSection(path.join(PROJECT, 'docs', 'benchmarks.md'), 'fleet', 'Worker fleet', section);
    console.log('\nwrote docs/benchmarks.md');
  }
}

/** The corpus of this run (--full: linux-source; else the generated one, made once under WORK) and its label. */
function benchCorpus(generated = { name: 'generated', bigFiles: 4, smallFiles: 20_000 }): { corpus: string; label: string } {
  const corpus = args.full ? linuxSource() : path.join(WORK, generated.name);
  if (!args.full && !existsSync(path.join(corpus, '.complete'))) {
    console.log(`generating the corpus ${generated.name}`);
    generateTree(corpus, generated.bigFiles, 50 << 20, generated.smallFiles);
    writeFileSync(path.join(corpus, '.complete'), '');
  }
  return { corpus, label: `${args.full ? 'linux-source-6.1' : 'generated'} (${(duSize(corpus) / 2 ** 20).toFixed(0)} MiB, ${fileCount(corpus)} files)` };
}

/**
 * `--encryption`: plain beside encrypted, both formats, alone, into its own section. Its default
 * corpus is half the default one (2 large files and 10,000 small ones, about 180 MiB), so that
 * `--rounds 5` (8 runs of each of 4 kinds per round) stays within about 10 minutes on 2 quiet cores.
 */
async function encryptionMain(): Promise<void> {
  const { ENCRYPTION_BENCH_FORMATS, encryptionTable, measureCiphersAlone, runEncryptionBench } = await import('./encryption.js');
  mkdirSync(WORK, { recursive: true });
  const { corpus, label } = benchCorpus(args.full ? undefined : { name: 'generated-encryption', bigFiles: 2, smallFiles: 10_000 });
  console.log(`encryption: ${label}, ${ROUNDS} rounds`);
  const figures = await runEncryptionBench({ corpus, rounds: ROUNDS, work: WORK });
  console.log('the ciphers alone');
  const alone = await measureCiphersAlone({ work: WORK });
  const table =
    `${encryptionTable(figures)}\n\nThe ciphers alone (medians of 7, CPU-seconds; steadier than whole runs when the machine is shared):\n\n` +
    ['| what | plain | encrypted | difference |', '|---|---:|---:|---:|', ...alone.map((a) => `| ${a.what} | ${a.plain.toFixed(3)} | ${a.encrypted.toFixed(3)} | ${(a.encrypted - a.plain).toFixed(3)} |`)].join('\n');
  const section =
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()} with \`${commandLine()}\` (${ROUNDS} rounds, medians; plain and encrypted alternate, in one process, each run into a fresh filesystem repository; ` +
    `load average ${os.loadavg()[0]!.toFixed(1)} at the end: other work may have shared the cores, and then only the CPU-seconds mean much). Corpus ${label}, zstd level 3. ` +
    `Encrypted, the archive format is an ${ENCRYPTION_BENCH_FORMATS.archive}; the chunked format uses ${ENCRYPTION_BENCH_FORMATS.chunked}. ` +
    `CPU-seconds are every thread of the process (zstd's too); throughput is of the raw corpus. Goal: overhead ≤ 10%.\n\n${table}`;
  console.log('\n' + table);
  if (!args.noWrite) {
    writeSection(path.join(PROJECT, 'docs', 'benchmarks.md'), 'encryption', 'Encryption overhead', section);
    console.log('\nwrote docs/benchmarks.md');
  }
}

function machineLine(): string {
  return `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
}

/**
 * The command as the figures' page shows it: without `--work DIR`, which only says where scratch
 * files went (a machine's own path, nothing the figures depend on).
 */
function commandLine(): string {
  const argv = process.argv.slice(2).filter((arg, i, all) => arg !== '--work' && all[i - 1] !== '--work' && !arg.startsWith('--work='));
  return `npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}`;
}

/** `npm run build`, so `CLI` is the code of this checkout. @throws when the build fails. */
function buildCli(): void {
  if (spawnSync('npm', ['run', 'build'], { cwd: PROJECT, stdio: 'ignore' }).status !== 0) throw new Error('npm run build failed');
}

async function main(): Promise<void> {
  console.log('building (npm run build)');
  buildCli();
  mkdirSync(WORK, { recursive: true });
  if (args.fleet) return fleetMain();
  const rows: Row[] = [];

  const { corpus, label } = benchCorpus();
  console.log(`corpus: ${label}, ${ROUNDS} rounds`);
  rows.push(...(await compareSnapshotRestore(label, corpus)).rows);

  if (!args.skipScaling) {
    console.log('scaling: 3 sizes');
    for (const factor of [1, 2, 4]) {
      const dir = path.join(WORK, `scale-${factor}`);
      generateTree(dir, factor, 64 << 20, 5000 * factor);
      const run = await ours.snapshot(dir, path.join(WORK, `scale-repo-${factor}`));
      rows.push({
        figure: `scaling ×${factor}: ${(duSize(dir) / 2 ** 20).toFixed(0)} MiB, ${5000 * factor} small files`,
        ours: `${run.seconds.toFixed(2)} s`,
        peer: `${((duSize(dir) / 2 ** 20) / run.seconds).toFixed(0)} MiB/s`,
        ratio: '',
        note: `peak RSS ${((run.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`,
      });
      rmSync(dir, { recursive: true, force: true });
      rmSync(path.join(WORK, `scale-repo-${factor}`), { recursive: true, force: true });
    }
  }

  if (args.memoryGiB !== undefined) {
    const gib = args.memoryGiB;
    console.log(`memory: generating a ${gib} GiB source`);
    const dir = path.join(WORK, 'memory');
    generateTree(dir, Math.max(1, Math.round(gib * 2)), 512 << 20, 20_000);
    const run = await ours.snapshot(dir, path.join(WORK, 'memory-repo'));
    rows.push({ figure: `peak RSS, snapshot of ${(duSize(dir) / 2 ** 30).toFixed(1)} GiB`, ours: `${((run.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`, peer: 'target < 256 MiB', ratio: '', note: `${run.seconds.toFixed(1)} s` });
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.join(WORK, 'memory-repo'), { recursive: true, force: true });
  }

  if (!args.skipQueue) {
    console.log('queue overhead');
    rows.push(...(await queueOverhead()));
  }

  const table = [
    '| figure | snapworker | peer / target | ratio (peer time ÷ ours) | note |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.figure} | ${r.ours} | ${r.peer} | ${r.ratio} | ${r.note ?? ''} |`),
  ].join('\n');
  const section = `Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()} with \`${commandLine()}\` (${ROUNDS} rounds, medians; runs alternate with the peer).\n\n${table}`;
  console.log('\n' + table);
  if (!args.noWrite) {
    writeSection(path.join(PROJECT, 'docs', 'benchmarks.md'), args.full ? 'full' : 'default', args.full ? 'Full corpus' : 'Default corpus', section);
    console.log('\nwrote docs/benchmarks.md');
  }
}

(args.catalog ? catalogMain() : args.encryption ? encryptionMain() : args.replication ? replicationMain() : args.chunked ? chunkedMain() : main()).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
