/**
 * The Redis servers the fleet bench runs on, started here on free ports and stopped by `stop()`:
 * one standalone `redis-server`, and a 3-master Redis Cluster (no replicas: nothing is failed
 * over, and replication would only add work to the two cores). Each can read and reset the
 * servers' own counters, so the figures are the bench's alone, not those of a shared Redis.
 */
import { Redis } from 'ioredis';
import { startRedisServer } from '../../scripts/local-redis.js';
import { startRedisCluster } from '../../test/helpers/redis-cluster.js';

/** What every server of a deployment counted between `reset()` and `read()`, summed. */
export interface RedisWork {
  /** Commands run, those inside Lua scripts included (INFO commandstats, every command). */
  commands: number;
  /** Script calls (EVAL, EVALSHA, FCALL): BullMQ's round trips are mostly these. */
  scriptCalls: number;
  /** CPU-seconds the servers used (INFO cpu: used_cpu_user + used_cpu_sys). */
  cpuSeconds: number;
}

export interface RedisUnderTest {
  /** `standalone` or `cluster`, as the figures name it. */
  kind: string;
  /** The URL workers and producer are given (`redis://` or `redis+cluster://`). */
  url: string;
  /** Resets every server's command counters and notes its CPU time so far. */
  reset(): Promise<void>;
  /** The work done since `reset()`. */
  read(): Promise<RedisWork>;
  stop(): Promise<void>;
}

/** A private standalone `redis-server` on a free port. */
export async function standaloneRedis(): Promise<RedisUnderTest> {
  const server = await startRedisServer();
  return counted('standalone', server.url, [Number(new URL(server.url).port)], () => server.stop());
}

/** A private 3-master Redis Cluster on free ports. */
export async function clusterRedis(): Promise<RedisUnderTest> {
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  return counted('cluster', cluster.url, cluster.nodes.map((n) => n.port), () => cluster.stop());
}

function counted(kind: string, url: string, ports: number[], stopServers: () => Promise<void>): RedisUnderTest {
  // One plain connection per node: CONFIG RESETSTAT and INFO are per server, never routed.
  const nodes = ports.map((port) => new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 }));
  let cpuAtReset = 0;
  const cpuSeconds = async () => (await Promise.all(nodes.map(async (n) => serverCpuSeconds(await n.info('cpu'))))).reduce((a, b) => a + b, 0);
  return {
    kind,
    url,
    async reset() {
      await Promise.all(nodes.map((n) => n.config('RESETSTAT')));
      cpuAtReset = await cpuSeconds();
    },
    async read() {
      const stats = await Promise.all(nodes.map(async (n) => commandCounts(await n.info('commandstats'))));
      const work: RedisWork = { commands: 0, scriptCalls: 0, cpuSeconds: (await cpuSeconds()) - cpuAtReset };
      for (const counts of stats) {
        for (const [command, calls] of counts) {
          // The bench's own INFO and CONFIG calls are not the queue's work.
          if (command === 'info' || command.startsWith('config')) continue;
          work.commands += calls;
          if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(command)) work.scriptCalls += calls;
        }
      }
      return work;
    },
    async stop() {
      nodes.forEach((n) => n.disconnect());
      await stopServers();
    },
  };
}

/** `cmdstat_<name>:calls=N,…` lines of INFO commandstats, as name → calls. */
function commandCounts(info: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts.set(match[1]!, Number(match[2]));
  return counts;
}

function serverCpuSeconds(info: string): number {
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}
