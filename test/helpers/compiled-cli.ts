/**
 * The command that runs the `snapworker` CLI in a child process, from JavaScript compiled out of
 * this checkout's sources.
 *
 * Why not `node --import tsx worker/cli.ts`: tsx's loader hooks cost every child process about
 * 1.5 CPU-seconds (each of the hundreds of modules it loads crosses into the hooks' thread), and
 * the suite starts a few hundred CLIs and workers. tsx itself compiles with esbuild file by file;
 * this does the same once for the whole tree, so the children run the same code, minus the hooks
 * (and closer to what ships: `dist/`, compiled by tsc).
 *
 * The build lives in `.tmp/test-build/<hash>/` (ignored by git), at the same depth as `dist/`, so
 * paths the code finds relative to itself (package.json, `build/Release`) resolve as in `dist/`.
 * The hash covers every source file's path, size and mtime, so an edit makes a new build; test
 * processes running side by side build into private folders and the first rename wins.
 * `SNAPWORKER_TEST_TSX=1` runs the sources through tsx instead.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/** The checkout (not imported from worker-fixture.ts, which imports this). */
const PROJECT_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The source folders the CLI is made of. */
const SOURCE_DIRS = ['worker', 'shared', 'jobs'];
const BUILDS = path.join(PROJECT_ROOT, '.tmp', 'test-build');
/** Builds older than this are removed when a new one is made (a run in progress uses its own for minutes). */
const STALE_MS = 24 * 3600_000;

let built: string | undefined;

/** Node's arguments that run the CLI with `cliArgs`: `spawn(process.execPath, snapworkerArgs('ls'))`. */
export function snapworkerArgs(...cliArgs: string[]): string[] {
  if (process.env.SNAPWORKER_TEST_TSX) return ['--import', 'tsx', path.join(PROJECT_ROOT, 'worker', 'cli.ts'), ...cliArgs];
  built ??= buildOnce();
  return [path.join(built, 'worker', 'cli.js'), ...cliArgs];
}

/** The whole command line, `[node, ...snapworkerArgs(...cliArgs)]`, for wrappers that run it. */
export function snapworkerCommand(...cliArgs: string[]): string[] {
  return [process.execPath, ...snapworkerArgs(...cliArgs)];
}

function buildOnce(): string {
  const sources = SOURCE_DIRS.flatMap((dir) => typeScriptFiles(path.join(PROJECT_ROOT, dir)));
  const hash = createHash('sha256');
  for (const file of [...sources, path.join(PROJECT_ROOT, 'package.json')]) {
    const stat = statSync(file);
    hash.update(`${path.relative(PROJECT_ROOT, file)}\0${stat.size}\0${stat.mtimeMs}\n`);
  }
  const final = path.join(BUILDS, hash.digest('hex').slice(0, 16));
  if (existsSync(path.join(final, 'worker', 'cli.js'))) return final;

  const scratch = `${final}.tmp-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  // Same settings as tsx's per-file transform: ESM for Node 20, each file on its own (no bundle).
  buildSync({ entryPoints: sources, outdir: scratch, outbase: PROJECT_ROOT, format: 'esm', platform: 'node', target: 'node20', bundle: false, logLevel: 'error' });
  copyFileSync(path.join(PROJECT_ROOT, 'package.json'), path.join(scratch, 'package.json')); // "type": "module", and the version
  try {
    renameSync(scratch, final);
  } catch {
    rmSync(scratch, { recursive: true, force: true }); // another test process renamed its build first
  }
  removeStaleBuilds(final);
  return final;
}

function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return typeScriptFiles(file);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : [];
  });
}

function removeStaleBuilds(keep: string): void {
  mkdirSync(BUILDS, { recursive: true });
  for (const name of readdirSync(BUILDS)) {
    const dir = path.join(BUILDS, name);
    if (dir !== keep && Date.now() - statSync(dir).mtimeMs > STALE_MS) rmSync(dir, { recursive: true, force: true });
  }
}
