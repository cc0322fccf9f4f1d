/** Runs the `snapworker` command line as a child process, the way a user would. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from './worker-fixture.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `worker/cli.ts` with `args` to its end. `env` is added to this process's environment.
 * `wrap` runs it through another command that takes the command line as its last argument
 * (e.g. `['capsh', '--drop=cap_mknod', '--', '-c']`).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = PROJECT_ROOT, wrap: string[] = []): Promise<CliRun> {
  return new Promise((resolve) => {
    const command = [process.execPath, '--import', 'tsx', path.join(PROJECT_ROOT, 'worker', 'cli.ts'), ...args];
    const [file, ...rest] = wrap.length > 0 ? [...wrap, command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')] : command;
    const child = spawn(file!, rest, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
