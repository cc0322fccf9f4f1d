/**
 * A PostgreSQL database through snapworker's `postgres:` kind, beside plain `pg_dump -Fc` and
 * `pg_restore`, in the same run, alternating who goes first, medians of several rounds.
 *
 *   node --import tsx bench/postgres.ts [--size-mib=1024] [--rounds=3] [--work=<dir>] [--keep]
 *
 * Needs the server at 127.0.0.1:5432 (user postgres, trust auth; override with PGHOST/PGPORT)
 * and the client tools. Generates `snapworker_bench_pg` once (kept for later runs with --keep):
 * four tables of rows with a key, an index on it, and a body half random hex, half repeated
 * text, filled until `pg_database_size` reaches --size-mib. Then per round:
 * - snapshot: `snapworker snapshot postgres://… --local` into a file repository (pg_dump -Fd -j 2
 *   -Z0 staged, tar + zstd -3 + SHA-256, record) against `pg_dump -Fc -f peer.dump` (gzip -6);
 * - restore: `snapworker restore latest postgres://…/<new db> --local` (archive verified,
 *   staged, pg_restore -j 2 into a scratch database, checked, renamed) against
 *   `createdb` + `pg_restore -d` of peer.dump.
 * Our side runs through tsx (about 1 s of start-up included). Peak RSS: GNU time's max RSS of
 * the snapworker process (pg_dump and pg_restore are children it waits for, counted apart).
 * Benchmarks are not tests: nothing here asserts a time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const PROJECT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'snapworker-bench-pg') },
    keep: { type: 'boolean', default: false },
  },
});
const SIZE_MIB = Number(args['size-mib']);
const ROUNDS = Number(args.rounds);
const WORK = path.resolve(args.work!);
const HOST = process.env['PGHOST'] ?? '127.0.0.1';
const PORT = process.env['PGPORT'] ?? '5432';
const DB = 'snapworker_bench_pg';
const PG_ENV = { ...process.env, PGHOST: HOST, PGPORT: PORT, PGUSER: 'postgres' };
const MiB = 2 ** 20;

function psql(database: string, sql: string): string {
  return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `--dbname=${database}`, '-c', sql], { env: PG_ENV, encoding: 'utf8' }).trim();
}

/** The bench database, generated unless one of the right size is there. */
function generate(): number {
  const marker = `snapworker bench ${SIZE_MIB} MiB`;
  const exists = psql('postgres', `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '${DB}'`);
  if (exists === marker) return Number(psql(DB, 'SELECT pg_database_size(current_database())'));
  psql('postgres', `DROP DATABASE IF EXISTS ${DB}`);
  psql('postgres', `CREATE DATABASE ${DB}`);
  const tables = ['orders', 'events', 'customers', 'audit'];
  for (const table of tables) psql(DB, `CREATE TABLE ${table} (id bigint PRIMARY KEY, key text NOT NULL, body text NOT NULL)`);
  let next = 1;
  for (;;) {
    const size = Number(psql(DB, 'SELECT pg_database_size(current_database())'));
    console.log(`  generating: ${(size / MiB).toFixed(0)} of ${SIZE_MIB} MiB`);
    if (size >= SIZE_MIB * MiB) break;
    for (const table of tables) {
      psql(
        DB,
        `INSERT INTO ${table} SELECT g, md5(g::text), md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || repeat('order line of fairly compressible text ', 5)
           FROM generate_series(${next}, ${next + 24_999}) g`,
      );
    }
    next += 25_000;
  }
  for (const table of tables) psql(DB, `CREATE INDEX ON ${table} (key)`);
  psql(DB, `VACUUM ANALYZE`);
  psql('postgres', `COMMENT ON DATABASE ${DB} IS '${marker}'`);
  return Number(psql(DB, 'SELECT pg_database_size(current_database())'));
}

interface Run {
  seconds: number;
  peakRssMiB: number;
}

/** Runs argv under GNU time: wall seconds and the max RSS of the process itself. */
function timed(argv: string[], env: NodeJS.ProcessEnv = {}): Run {
  const out = path.join(WORK, 'time.out');
  const result = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', out, ...argv], { env: { ...PG_ENV, ...env }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} exited ${result.status}: ${result.stderr.slice(-2000)}`);
  const [seconds, kib] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds: seconds!, peakRssMiB: kib! / 1024 };
}

const CLI = [process.execPath, '--import', 'tsx', path.join(PROJECT, 'worker', 'cli.ts')];
const repo = () => `file://${path.join(WORK, 'repo')}`;
const OUR_ENV = {
  SNAPWORKER_POSTGRES_PROFILES: JSON.stringify({ bench: { user: 'postgres' } }),
  SNAPWORKER_STAGING_DIR: path.join(WORK, 'staging'),
  SNAPWORKER_ALLOWED_PATHS: WORK,
};
const uri = (database: string) => `postgres://${HOST}:${PORT}/${database}?profile=bench`;

const ours = {
  snapshot: () => timed([...CLI, 'snapshot', uri(DB), '--local', '--repo', repo()], OUR_ENV),
  restore: (target: string) => timed([...CLI, 'restore', 'latest', '--source', DB, uri(target), '--local', '--repo', repo()], OUR_ENV),
};
const peers = {
  snapshot: () => timed(['pg_dump', '-Fc', '-f', path.join(WORK, 'peer.dump'), `--dbname=${DB}`]),
  restore: (target: string) => {
    psql('postgres', `CREATE DATABASE ${target}`);
    return timed(['pg_restore', `--dbname=${target}`, path.join(WORK, 'peer.dump')]);
  },
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function du(target: string): number {
  return Number(execFileSync('du', ['-sb', target], { encoding: 'utf8' }).split('\t')[0]);
}

function main(): void {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(path.join(WORK, 'staging'), { recursive: true });
  console.log(`database ${DB}: ${SIZE_MIB} MiB wanted`);
  const size = generate();
  const ourTarget = 'snapworker_bench_pg_ours';
  const peerTarget = 'snapworker_bench_pg_peer';
  const runs = { ourSnap: [] as Run[], peerSnap: [] as Run[], ourRestore: [] as Run[], peerRestore: [] as Run[] };
  let archiveBytes = 0;
  let peerBytes = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      rmSync(path.join(WORK, 'repo'), { recursive: true, force: true });
      rmSync(path.join(WORK, 'peer.dump'), { force: true });
      for (const target of [ourTarget, peerTarget]) psql('postgres', `DROP DATABASE IF EXISTS ${target}`);
      execFileSync('sync');
      // Alternate who goes first, so page-cache warmth does not favour one side.
      const snapshots = [() => runs.ourSnap.push(ours.snapshot()), () => runs.peerSnap.push(peers.snapshot())];
      const restores = [() => runs.ourRestore.push(ours.restore(ourTarget)), () => runs.peerRestore.push(peers.restore(peerTarget))];
      if (round % 2 === 1) (snapshots.reverse(), restores.reverse());
      snapshots.forEach((run) => run());
      archiveBytes = du(path.join(WORK, 'repo'));
      peerBytes = du(path.join(WORK, 'peer.dump'));
      execFileSync('sync');
      restores.forEach((run) => run());
      const same = psql(ourTarget, 'SELECT sum(id) FROM orders') === psql(DB, 'SELECT sum(id) FROM orders');
      if (!same) throw new Error('the restored database differs from the source');
      console.log(
        `  round ${round + 1}: snapshot ${runs.ourSnap.at(-1)!.seconds.toFixed(1)} s vs ${runs.peerSnap.at(-1)!.seconds.toFixed(1)} s, ` +
          `restore ${runs.ourRestore.at(-1)!.seconds.toFixed(1)} s vs ${runs.peerRestore.at(-1)!.seconds.toFixed(1)} s`,
      );
    }
  } finally {
    for (const target of [ourTarget, peerTarget]) psql('postgres', `DROP DATABASE IF EXISTS ${target}`);
    if (!args.keep) psql('postgres', `DROP DATABASE IF EXISTS ${DB}`);
    rmSync(WORK, { recursive: true, force: true });
  }
  const m = (r: Run[]) => median(r.map((x) => x.seconds));
  const ratio = (o: Run[], p: Run[]) => (m(p) / m(o)).toFixed(2);
  const peak = Math.max(...[...runs.ourSnap, ...runs.ourRestore].map((r) => r.peakRssMiB));
  const label = `${(size / MiB).toFixed(0)} MiB database`;
  const server = psql('postgres', 'SHOW server_version').split(' ')[0];
  console.log(
    [
      `\nMeasured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, PostgreSQL ${server}, Node ${process.version} with \`node --import tsx bench/postgres.ts --size-mib=${SIZE_MIB} --rounds=${ROUNDS}\` (medians; runs alternate with the peer).\n`,
      '| figure | snapworker | peer | ratio (peer time ÷ ours) | note |',
      '|---|---|---|---|---|',
      `| snapshot ${label} | ${m(runs.ourSnap).toFixed(1)} s | ${m(runs.peerSnap).toFixed(1)} s (pg_dump -Fc) | ${ratio(runs.ourSnap, runs.peerSnap)} | archive ${(archiveBytes / MiB).toFixed(0)} MiB, peer dump ${(peerBytes / MiB).toFixed(0)} MiB |`,
      `| restore ${label} into a new database | ${m(runs.ourRestore).toFixed(1)} s | ${m(runs.peerRestore).toFixed(1)} s (createdb + pg_restore) | ${ratio(runs.ourRestore, runs.peerRestore)} | ours verifies, stages, checks and renames |`,
      `| peak RSS of snapworker | ${peak.toFixed(0)} MiB | | | |`,
    ].join('\n'),
  );
}

main();
