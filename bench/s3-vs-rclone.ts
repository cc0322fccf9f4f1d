/**
 * snapworker's S3 transfers beside `rclone copy` (Debian's rclone) against the same s3rver, in the
 * same run, alternating, several rounds:
 *
 *   node --import tsx bench/s3-vs-rclone.ts [--size-mib 500] [--rounds 3] [--memory-gib 2] [--part-size-mib 16] [--queue-size 4]
 *
 * Our side is the real CLI as a user runs it, `snapworker snapshot dir://… --local --repo s3://…`
 * and `snapworker restore <id> dir://… --local --repo s3://…`, so it includes walking the tree,
 * tar, zstd (level 3 on incompressible data), hashing and the archive checks on restore; rclone
 * copies the same directory's files as they are. Both use the same part size and parallelism
 * (`--s3-chunk-size`, `--s3-upload-concurrency`, `--multi-thread-streams`). Peak RSS is the
 * child's VmHWM, polled from /proc. `--memory-gib 0` skips the multi-GB upload's memory run.
 *
 * s3rver runs as its own process (single-threaded, MD5 of every byte, writes to disk) and is the
 * bottleneck on a small machine; the figures compare clients against the same bottleneck.
 * Benchmarks are not tests: nothing here asserts a time.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { startS3rverProcess, type S3rverProcess } from './s3.js';
import { median } from './median.js';

const MiB = 1024 * 1024;
const PROJECT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(PROJECT, 'worker', 'cli.ts');
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    'memory-gib': { type: 'string', default: '2' },
    'part-size-mib': { type: 'string', default: '16' },
    'queue-size': { type: 'string', default: '4' },
  },
});
const SIZE_MIB = Number(args['size-mib']);
const ROUNDS = Number(args.rounds);
const MEMORY_GIB = Number(args['memory-gib']);
const PART_MIB = Number(args['part-size-mib']);
const QUEUE = Number(args['queue-size']);

interface Run {
  seconds: number;
  peakRssMiB: number;
  stdout: string;
}

/**
 * Runs `argv`, timing it and polling the child's peak RSS (VmHWM); rejects on a non-zero exit.
 * `env` is laid over this process's environment; a variable set to undefined is removed.
 */
function timed(argv: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const childEnv = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, value]) => value !== undefined));
    const child = spawn(argv[0]!, argv.slice(1), { cwd: PROJECT, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    let stdout = '';
    let stderr = '';
    let peakKiB = 0;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const sample = setInterval(() => {
      readFile(`/proc/${child.pid}/status`, 'utf8').then(
        (status) => (peakKiB = Math.max(peakKiB, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0))),
        () => {}, // exited between samples
      );
    }, 50);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearInterval(sample);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds, peakRssMiB: Math.round(peakKiB / 1024), stdout });
    });
  });
}

/** A directory holding one file of `bytes` incompressible bytes, written in 4 MiB chunks. */
async function randomTree(root: string, name: string, bytes: number): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  const handle = await open(path.join(dir, 'data.bin'), 'w');
  try {
    for (let written = 0; written < bytes; written += 4 * MiB) await handle.write(randomBytes(Math.min(4 * MiB, bytes - written)));
  } finally {
    await handle.close();
  }
  return dir;
}

/** The two clients, configured for the same endpoint, part size and parallelism. */
function clients(s3: S3rverProcess) {
  const repo = (prefix: string) =>
    `s3://${s3.bucket}/${prefix}?endpoint=${s3.endpoint}&forcePathStyle=true&checksum=when_required&region=us-east-1&partSize=${PART_MIB}MiB&queueSize=${QUEUE}`;
  const ourEnv = { ...CREDENTIALS, LOG_LEVEL: 'warn' };
  // rclone reads a remote called "s3rver" from RCLONE_CONFIG_S3RVER_* variables: no config file.
  const rcloneEnv = {
    RCLONE_CONFIG_S3RVER_TYPE: 's3',
    RCLONE_CONFIG_S3RVER_PROVIDER: 'Other',
    RCLONE_CONFIG_S3RVER_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_S3RVER_REGION: 'us-east-1',
    RCLONE_CONFIG_S3RVER_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_S3RVER_ACCESS_KEY_ID: CREDENTIALS.AWS_ACCESS_KEY_ID,
    RCLONE_CONFIG_S3RVER_SECRET_ACCESS_KEY: CREDENTIALS.AWS_SECRET_ACCESS_KEY,
    // rclone's S3 backend refuses to start when AWS_CA_BUNDLE is set ("unable to load custom CA
    // bundle, HTTPClient's transport unsupported type"); the endpoint is plain HTTP anyway.
    AWS_CA_BUNDLE: undefined,
  };
  const rcloneTuning = [
    `--s3-chunk-size=${PART_MIB}M`,
    `--s3-upload-concurrency=${QUEUE}`,
    `--multi-thread-streams=${QUEUE}`,
    `--multi-thread-cutoff=${PART_MIB}M`,
  ];
  return {
    async ourUpload(source: string, prefix: string): Promise<Run & { snapshotId: string }> {
      const result = await timed([process.execPath, '--import', 'tsx', CLI, 'snapshot', `dir://${source}`, '--local', '--json', '--repo', repo(prefix)], ourEnv);
      return { ...result, snapshotId: (JSON.parse(result.stdout) as { id: string }).id };
    },
    ourDownload(snapshotId: string, prefix: string, target: string): Promise<Run> {
      return timed([process.execPath, '--import', 'tsx', CLI, 'restore', snapshotId, `dir://${target}`, '--local', '--json', '--repo', repo(prefix)], ourEnv);
    },
    rcloneUpload(source: string, prefix: string): Promise<Run> {
      return timed(['rclone', 'copy', ...rcloneTuning, source, `s3rver:${s3.bucket}/${prefix}`], rcloneEnv);
    },
    rcloneDownload(prefix: string, target: string): Promise<Run> {
      return timed(['rclone', 'copy', ...rcloneTuning, `s3rver:${s3.bucket}/${prefix}`, target], rcloneEnv);
    },
    /** Start-up cost of our CLI under tsx (part of every run of ours above): `--help`. */
    ourStartup(): Promise<Run> {
      return timed([process.execPath, '--import', 'tsx', CLI, '--help'], ourEnv);
    },
    purge(prefix: string): Promise<Run> {
      return timed(['rclone', 'purge', `s3rver:${s3.bucket}/${prefix}`], rcloneEnv);
    },
  };
}

function summary(label: string, runs: Run[], mib: number) {
  const seconds = median(runs.map((r) => r.seconds));
  return {
    client: label,
    medianSeconds: +seconds.toFixed(2),
    mibPerSecond: +(mib / seconds).toFixed(1),
    peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)),
    runs: runs.map((r) => +r.seconds.toFixed(2)).join(' '),
  };
}

const work = await mkdtemp(path.join(tmpdir(), 'snapworker-bench-rclone-'));
const s3 = await startS3rverProcess('bench');
try {
  const client = clients(s3);
  const source = await randomTree(work, 'source', SIZE_MIB * MiB);
  const runs = { ourUp: [] as Run[], ourDown: [] as Run[], rcloneUp: [] as Run[], rcloneDown: [] as Run[] };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate who goes first, so neither always meets a warmer page cache or a fuller s3rver.
    const ours = async () => {
      const up = await client.ourUpload(source, `ours-${round}`);
      runs.ourUp.push(up);
      runs.ourDown.push(await client.ourDownload(up.snapshotId, `ours-${round}`, path.join(work, `ours-${round}`)));
      await rm(path.join(work, `ours-${round}`), { recursive: true, force: true });
      await client.purge(`ours-${round}`);
    };
    const theirs = async () => {
      runs.rcloneUp.push(await client.rcloneUpload(source, `rclone-${round}`));
      runs.rcloneDown.push(await client.rcloneDownload(`rclone-${round}`, path.join(work, `rclone-${round}`)));
      await rm(path.join(work, `rclone-${round}`), { recursive: true, force: true });
      await client.purge(`rclone-${round}`);
    };
    for (const step of round % 2 === 0 ? [ours, theirs] : [theirs, ours]) await step();
    console.error(`round ${round + 1}/${ROUNDS} done`);
  }
  const table = [
    { phase: 'upload', ...summary('snapworker snapshot --local', runs.ourUp, SIZE_MIB) },
    { phase: 'upload', ...summary('rclone copy', runs.rcloneUp, SIZE_MIB) },
    { phase: 'download', ...summary('snapworker restore --local', runs.ourDown, SIZE_MIB) },
    { phase: 'download', ...summary('rclone copy', runs.rcloneDown, SIZE_MIB) },
  ];
  console.log(`${SIZE_MIB} MiB of incompressible data, ${PART_MIB} MiB parts, ${QUEUE} at once, ${ROUNDS} rounds (medians; runs in seconds)`);
  console.table(table);
  const startups = [];
  for (let i = 0; i < 3; i++) startups.push((await client.ourStartup()).seconds);
  console.log(`snapworker CLI start-up under tsx (included in its runs): ${median(startups).toFixed(2)} s`);

  if (MEMORY_GIB > 0) {
    await rm(source, { recursive: true, force: true });
    const big = await randomTree(work, 'big', MEMORY_GIB * 1024 * MiB);
    const up = await client.ourUpload(big, 'memory');
    console.log(
      `memory: ${MEMORY_GIB} GiB snapshot upload in ${up.seconds.toFixed(1)} s (${((MEMORY_GIB * 1024) / up.seconds).toFixed(1)} MiB/s), peak RSS ${up.peakRssMiB} MiB`,
    );
    await client.purge('memory');
  }
} finally {
  await s3.stop();
  await rm(work, { recursive: true, force: true });
}
