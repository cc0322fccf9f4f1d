/**
 * Private Redis Clusters and Sentinel sets for tests: real `redis-server` processes on free ports
 * in a temp dir, memory only, torn down by `stop()`; and a queue environment on any Redis URL.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SnapworkerClient } from '../../jobs/client.js';
import type { WorkerProcess } from './worker-fixture.js';

const run = promisify(execFile);

export interface RedisProcess {
  port: number;
  /** Kills the server at once (SIGKILL), as a crashed host would. */
  kill(): Promise<void>;
}

export interface TestRedisCluster {
  /** `redis+cluster://` URL with every master as a seed node. */
  url: string;
  nodes: RedisProcess[];
  stop(): Promise<void>;
}

export interface TestRedisSentinels {
  /** `redis+sentinel://` URL naming the Sentinels and the master `snapmaster`. */
  url: string;
  master: RedisProcess;
  replica: RedisProcess;
  stop(): Promise<void>;
}

/** Node timeout of the test clusters and Sentinels: a killed master is failed over in about this. */
export const FAILOVER_AFTER_MS = 1000;

/**
 * Starts `masters` cluster nodes (and `replicasPerMaster` replicas of each) and joins them with
 * `redis-cli --cluster create`; resolves once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(options: { masters?: number; replicasPerMaster?: number } = {}): Promise<TestRedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapworker-cluster-'));
  const nodes: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      // The cluster bus listens on port + 10000: both must be free.
      const port = await freePort((p) => p + 10000 <= 65535 && portIsFree(p + 10000));
      nodes.push(await startServer(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(FAILOVER_AFTER_MS)]));
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    // A replica that has not finished its first sync has no data to take over with, and refuses
    // to fail over: wait for every link to be up too.
    await waitFor(async () => {
      for (const node of nodes) {
        const { stdout } = await run('redis-cli', ['-p', String(node.port), 'cluster', 'info']);
        if (!stdout.includes('cluster_state:ok')) return false;
        const replication = (await run('redis-cli', ['-p', String(node.port), 'info', 'replication'])).stdout;
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
      }
      return true;
    }, 'cluster_state:ok and replicas in sync on every node');
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis+cluster://${nodes.slice(0, masters).map((n) => `127.0.0.1:${n.port}`).join(',')}`, nodes, stop };
}

/** The cluster node that is master of the slot `key` hashes to, as `CLUSTER NODES` says now. */
export async function masterOfKey(cluster: TestRedisCluster, key: string): Promise<RedisProcess> {
  const port = String(cluster.nodes[0]!.port);
  const slot = Number((await run('redis-cli', ['-p', port, 'cluster', 'keyslot', key])).stdout.trim());
  const { stdout } = await run('redis-cli', ['-p', port, 'cluster', 'nodes']);
  for (const line of stdout.trim().split('\n')) {
    const [, address = '', flags = '', , , , , , ...ranges] = line.split(' ');
    if (!flags.includes('master') || flags.includes('fail')) continue;
    const owns = ranges.some((r) => {
      const [from, to = from] = r.split('-').map(Number);
      return slot >= from! && slot <= to!;
    });
    if (owns) return cluster.nodes.find((n) => address.startsWith(`127.0.0.1:${n.port}@`))!;
  }
  throw new Error(`no master owns slot ${slot}`);
}

/** A master, one replica and one Sentinel (quorum 1) watching it under the name `snapmaster`. */
export async function startRedisSentinels(): Promise<TestRedisSentinels> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapworker-sentinel-'));
  const started: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((n) => n.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const master = await startServer(await freePort(), dir, []);
    started.push(master);
    const replica = await startServer(await freePort(), dir, ['--replicaof', '127.0.0.1', String(master.port)]);
    started.push(replica);
    const sentinelPort = await freePort();
    const conf = path.join(dir, `sentinel-${sentinelPort}.conf`);
    await writeFile(
      conf,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `sentinel monitor snapmaster 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds snapmaster ${FAILOVER_AFTER_MS}`,
        'sentinel failover-timeout snapmaster 5000',
        '',
      ].join('\n'),
    );
    started.push(await startProcess(sentinelPort, [conf, '--sentinel']));
    await waitFor(async () => {
      const { stdout } = await run('redis-cli', ['-p', String(sentinelPort), 'sentinel', 'replicas', 'snapmaster']);
      const link = (await run('redis-cli', ['-p', String(replica.port), 'info', 'replication'])).stdout;
      return stdout.includes(String(replica.port)) && link.includes('master_link_status:up');
    }, 'the Sentinel to see the replica, in sync');
    return { url: `redis+sentinel://127.0.0.1:${sentinelPort}/snapmaster`, master, replica, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function startServer(port: number, dir: string, extra: string[]): Promise<RedisProcess> {
  return startProcess(port, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...extra]);
}

async function startProcess(port: number, args: string[]): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(async () => (await run('redis-cli', ['-p', String(port), 'ping'])).stdout.trim() === 'PONG', `redis-server on port ${port}`);
  } catch (err) {
    await kill();
    throw err;
  }
  return { port, kill };
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function freePort(accept: (port: number) => boolean | Promise<boolean> = () => true): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (await accept(port)) return port;
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A queue of its own (random name, random hash-tag prefix, so it works on a cluster too) on the
 * Redis at `redisUrl`, with a temp root for sources, targets and the `default` repository
 * (`<root>/repo`): `env` is what `spawnWorker` gives the worker, `client()` a producer on it.
 */
export interface RedisQueueEnvironment {
  root: string;
  queueName: string;
  prefix: string;
  env: NodeJS.ProcessEnv;
  client(): SnapworkerClient;
  cleanup(): Promise<void>;
}

export async function redisQueueEnvironment(redisUrl: string): Promise<RedisQueueEnvironment> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-cluster-test-'));
  const queueName = `test-${randomBytes(6).toString('hex')}`;
  const prefix = `{snap-${randomBytes(3).toString('hex')}}`;
  return {
    root,
    queueName,
    prefix,
    env: {
      REDIS_URL: redisUrl,
      SNAPWORKER_QUEUE: queueName,
      SNAPWORKER_PREFIX: prefix,
      SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${path.join(root, 'repo')}` }),
      SNAPWORKER_ALLOWED_PATHS: root,
      SNAPWORKER_STAGING_DIR: root,
      SNAPWORKER_METRICS_PORT: '0',
      SNAPWORKER_METRICS_HOST: '127.0.0.1',
      SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '5',
    },
    client: () => new SnapworkerClient({ connection: redisUrl, queueName, prefix }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** SIGTERM (unless it already exited), then waits for the exit. */
export async function stopWorker(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  await worker.exited;
}
