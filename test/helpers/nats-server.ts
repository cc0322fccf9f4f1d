import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The Debian package's location, used when `nats-server` is not on PATH. */
const DEBIAN_NATS_SERVER = '/usr/sbin/nats-server';

/** A private nats-server with JetStream, for tests that must kill, pause or restart a server. */
export interface PrivateNatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** SIGKILL: the server vanishes mid-conversation, as in a crash. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server stalls without closing its sockets. */
  pause(): void;
  resume(): void;
  /** Kills the server (if still running) and removes its store directory. */
  stop(): Promise<void>;
}

/** Finds the nats-server binary: on PATH, else the Debian location. */
export function natsServerBinary(): string {
  const candidates = (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'nats-server'));
  for (const candidate of [...candidates, DEBIAN_NATS_SERVER]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('nats-server not found on PATH nor at the Debian location');
}

/**
 * Starts nats-server with JetStream on a free port of 127.0.0.1 and its own store directory.
 * @param extraArgs more nats-server flags, e.g. `['--user', 'u', '--pass', 'p']`.
 */
export async function startNatsServer(extraArgs: readonly string[] = []): Promise<PrivateNatsServer> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'snapworker-nats-'));
  const child = spawn(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port, child, () => log);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  const killChild = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await exited;
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    kill: killChild,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: async () => {
      await killChild();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms: ${log()}`);
}
