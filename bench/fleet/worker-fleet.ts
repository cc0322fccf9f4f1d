/**
 * N worker processes running the compiled CLI (`node dist/worker/cli.js worker`), as a
 * Deployment's pods would: each on its own metrics port, so the bench knows when each is ready
 * (`/readyz`) and what each says it completed (`snapworker_jobs_total`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort, waitFor } from '../../test/helpers/observability.js';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface WorkerFleet {
  /** Sum of the workers' user + system CPU-seconds so far (every thread, zstd's included). */
  cpuSeconds(): number;
  /** Jobs each worker counted as completed and as failed (its `snapworker_jobs_total`). */
  outcomes(): Promise<Array<{ completed: number; failed: number }>>;
  /** SIGTERM to each, waiting for every exit. */
  stop(): Promise<void>;
}

/**
 * Starts `count` workers with `env` (queue, Redis, repositories…) and resolves once every one
 * answers `/readyz`.
 * @throws Error naming the worker and its last log lines when one exits or is not ready in 3 minutes
 * (a loaded 2-core machine took over a minute to start one).
 */
export async function startWorkerFleet(cli: string, count: number, env: NodeJS.ProcessEnv): Promise<WorkerFleet> {
  const workers: Array<{ child: ChildProcess; port: number; logs: () => string }> = [];
  const stop = async () => {
    await Promise.all(
      workers.map(({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        return exited;
      }),
    );
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const child = spawn(process.execPath, [cli, 'worker'], {
        env: { ...process.env, ...env, SNAPWORKER_METRICS_PORT: String(port), SNAPWORKER_METRICS_HOST: '127.0.0.1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let logs = '';
      child.stderr!.on('data', (chunk: Buffer) => (logs = (logs + chunk.toString()).slice(-4000)));
      workers.push({ child, port, logs: () => logs });
    }
    await Promise.all(
      workers.map(({ child, port, logs }, i) =>
        waitFor(
          `worker ${i + 1} of ${count} to answer /readyz`,
          async () => {
            if (child.exitCode !== null) throw new Error(`worker ${i + 1} exited ${child.exitCode}: ${logs().trim()}`);
            return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok ?? false;
          },
          180_000,
        ),
      ),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    cpuSeconds: () => workers.reduce((sum, { child }) => sum + processCpuSeconds(child.pid!), 0),
    outcomes: () =>
      Promise.all(
        workers.map(async ({ port }) => {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const sample = (outcome: string) => Number(new RegExp(`^snapworker_jobs_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
          return { completed: sample('completed'), failed: sample('failed') };
        }),
      ),
    stop,
  };
}

/** utime + stime of a live process, from /proc/<pid>/stat; 0 once it has exited. */
function processCpuSeconds(pid: number): number {
  try {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}
