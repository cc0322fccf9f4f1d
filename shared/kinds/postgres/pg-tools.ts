import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { AbortedError, InvalidInputError, NoSpaceError, SnapworkerError, throwIfAborted } from '../../errors.js';

/** The PostgreSQL client programs snapworker runs (Debian package `postgresql-client`). */
export type PgTool = 'pg_dump' | 'pg_restore' | 'psql';

/** Where the client programs are, fixed per worker. */
export interface PgToolOptions {
  /** Directory holding pg_dump, pg_restore and psql. Default: found on `PATH`. */
  binDir?: string;
}

export interface RunPgToolOptions extends PgToolOptions {
  /** From `libpqEnvironment`: connection settings and the password, never argv. */
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Names the operation and the object in every error, e.g. `postgres source postgres://h:5432/app`. */
  what: string;
  /** Called for each line of stdout (pg_restore -l can list millions of entries); without it stdout is collected. */
  onLine?: (line: string) => void;
}

/** Stdout collected without `onLine`: query results and version lines, never bulk data. */
const MAX_STDOUT_BYTES = 1 << 20;
/** The tail of stderr kept for the error message. */
const MAX_STDERR_BYTES = 16 << 10;

/**
 * Process groups of the client programs running now. Each program leads a group of its own, so
 * its parallel workers (`pg_dump -j`, `pg_restore -j` fork them) are signalled with it; any group
 * still running when this process exits (a second Ctrl-C, an error, `process.exit`) is killed
 * then, so no pg_restore outlives the command that started it.
 */
const runningGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

function trackGroup(pid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const group of runningGroups) killGroup(group, 'SIGKILL');
    });
  }
  runningGroups.add(pid);
}

/**
 * Runs one client program to completion and returns its stdout (empty when `onLine` took it).
 * The program and the workers it forks are killed (SIGTERM to its process group) when `signal`
 * fires, and SIGKILLed if this process exits first.
 *
 * @throws AbortedError when `signal` fired; InvalidInputError (never retried) when the program's
 *   own words say another attempt cannot help: an unknown database or role, failed
 *   authentication, a denied permission, a client/server version mismatch; NoSpaceError when a
 *   disk is full (the worker's staging or the server's); SnapworkerError
 *   (retried) for anything else, such as a refused connection. The message is one line: `what`,
 *   the program, and the first error line it printed.
 */
export async function runPgTool(tool: PgTool, args: readonly string[], options: RunPgToolOptions): Promise<string> {
  throwIfAborted(options.signal);
  const program = options.binDir ? path.join(options.binDir, tool) : tool;
  const child = spawn(program, args, { env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const group = child.pid;
  const onAbort = () => {
    if (group !== undefined) killGroup(group, 'SIGTERM');
  };
  if (group !== undefined) {
    trackGroup(group);
    options.signal.addEventListener('abort', onAbort, { once: true });
  }
  let stdout = '';
  let stdoutBytes = 0;
  let stderr = '';
  const lines = options.onLine ? createInterface({ input: child.stdout, crlfDelay: Infinity }) : undefined;
  if (lines) lines.on('line', options.onLine!);
  else {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes <= MAX_STDOUT_BYTES) stdout += chunk;
    });
  }
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-MAX_STDERR_BYTES);
  });
  const outcome = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
    let error: Error | undefined;
    // An abort emits 'error' while the program still runs: wait for it (and pg_dump's parallel
    // workers, which hold its pipes) to exit, so nothing writes into a folder being removed.
    child.once('error', (err) => {
      error = err;
      if (child.pid === undefined) resolve({ code: null, error }); // never started
    });
    child.once('close', (code) => resolve({ code, error }));
  });
  options.signal.removeEventListener('abort', onAbort);
  if (group !== undefined) {
    // The leader is gone; workers it left behind (killed, or failed) go with their group.
    if (options.signal.aborted || outcome.code !== 0) killGroup(group, 'SIGKILL');
    runningGroups.delete(group);
  }
  lines?.close();
  if (options.signal.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new AbortedError(`${options.what}: ${tool}: aborted`);
  if (outcome.error && child.pid === undefined) {
    const code = (outcome.error as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (install postgresql-client on the worker)' : '';
    throw new SnapworkerError(`${options.what}: cannot run ${program}: ${code ?? outcome.error.message}${hint}`, { cause: outcome.error });
  }
  if (outcome.code !== 0) throw toolFailure(tool, outcome.code, stderr, options.what);
  if (stdoutBytes > MAX_STDOUT_BYTES) throw new SnapworkerError(`${options.what}: ${tool}: more than ${MAX_STDOUT_BYTES} bytes of output`);
  return stdout;
}

/**
 * What libpq and the server say when retrying cannot help: the job names something that is not
 * there, or the profile does not let the worker in or read it.
 */
const PERMANENT = [
  /database ".*" does not exist/,
  /role ".*" does not exist/,
  /password authentication failed/,
  /no password supplied/,
  /pg_hba\.conf/,
  /permission denied/,
  /must be owner of/,
  /server version mismatch/,
  /unsupported version .* in file header/,
  /already exists/,
  /is being accessed by other users/,
];

function toolFailure(tool: PgTool, code: number | null, stderr: string, what: string): SnapworkerError {
  const detail = firstErrorLine(stderr) ?? `exited with code ${code}`;
  const message = `${what}: ${tool}: ${detail}`;
  if (/No space left on device|Disk quota exceeded|could not extend file/.test(detail)) return new NoSpaceError(message);
  return PERMANENT.some((pattern) => pattern.test(detail)) ? new InvalidInputError(message) : new SnapworkerError(message);
}

/**
 * The line that says what went wrong, without the program's prefix. libpq puts the server's words
 * after the connection attempt (`connection to server at "h", port 5432 failed: FATAL:  database
 * "x" does not exist`); that part is kept whole.
 */
function firstErrorLine(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const line = lines.find((l) => /\b(error|FATAL|ERROR):/.test(l)) ?? lines.at(-1);
  return line?.replace(/^(pg_dump|pg_restore|psql): (error: )?/, '').replace(/\s+/g, ' ');
}

/** A client program's version: `pg_dump (PostgreSQL) 15.20 (Debian …)` → `{ text: '15.20', major: 15 }`. */
export interface ToolVersion {
  text: string;
  major: number;
}

/**
 * Asks a client program for its version.
 * @throws SnapworkerError when the program cannot run or prints no version.
 */
export async function pgToolVersion(tool: PgTool, options: PgToolOptions & { signal: AbortSignal; what: string }): Promise<ToolVersion> {
  const out = await runPgTool(tool, ['--version'], { ...options, env: process.env });
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(out);
  if (!match) throw new SnapworkerError(`${options.what}: ${tool} --version printed no PostgreSQL version: ${JSON.stringify(out.trim().slice(0, 200))}`);
  return { text: match[2] === undefined ? match[1]! : `${match[1]}.${match[2]}`, major: Number(match[1]) };
}

/** The major version of a `server_version_num` (150020 → 15; 90624 → 9.6 counts as 9). */
export function serverMajor(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}
