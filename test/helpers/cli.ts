/** Runs the `snapworker` command line as a child process, the way a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { snapworkerCommand } from './compiled-cli.js';
import { PROJECT_ROOT } from './worker-fixture.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the CLI (compiled from `worker/cli.ts`: ./compiled-cli.ts) with `args` as a child, with `env` added to this process's environment.
 * `wrap` runs it through another command that takes the command line as its last argument
 * (e.g. `['capsh', '--drop=cap_mknod', '--', '-c']`).
 */
export function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = PROJECT_ROOT,
  wrap: string[] = [],
): { child: ChildProcess; done: Promise<CliRun>; stderr(): string } {
  const command = snapworkerCommand(...args);
  const [file, ...rest] = wrap.length > 0 ? [...wrap, command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')] : command;
  const child = spawn(file!, rest, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliRun>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

/** Runs the command line to its end (arguments as for `spawnCli`). */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = PROJECT_ROOT, wrap: string[] = []): Promise<CliRun> {
  return spawnCli(args, env, cwd, wrap).done;
}
