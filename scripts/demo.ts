/**
 * `npm run demo`: the main job end to end on embedded defaults. Starts a worker, enqueues a
 * snapshot of a generated directory into a filesystem repository inside the project folder
 * (`.snapworker/`), verifies it, restores it into a new directory and checks the restored tree
 * byte for byte. Redis: REDIS_URL, else 127.0.0.1:6379, else a private redis-server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SnapworkerClient } from '../jobs/client.js';
import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logging.js';
import { formatBytes, ProgressBar } from '../worker/progress-bar.js';
import { startWorker } from '../worker/run-worker.js';
import { findOrStartRedis } from './local-redis.js';

const project = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const home = path.join(project, '.snapworker');
const source = path.join(home, 'demo', 'source');
const restored = path.join(home, 'demo', `restored-${Date.now()}`);

function makeDemoTree(): void {
  // The demo folder is the demo's own: start it afresh (the repository keeps its history).
  rmSync(path.join(home, 'demo'), { recursive: true, force: true });
  mkdirSync(path.join(source, 'config'), { recursive: true });
  mkdirSync(path.join(source, 'data', 'empty-dir'), { recursive: true });
  writeFileSync(path.join(source, 'config', 'app.json'), JSON.stringify({ name: 'demo', replicas: 3 }, null, 2));
  writeFileSync(path.join(source, 'data', 'blob.bin'), randomBytes(48 * 1024 * 1024));
  for (let i = 0; i < 500; i++) writeFileSync(path.join(source, 'data', `record-${i}.txt`), `record ${i}\n`.repeat(i % 50));
  writeFileSync(path.join(source, 'run.sh'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
  symlinkSync('config/app.json', path.join(source, 'current-config'));
}

/** sha256 over every path, type, mode and content of a tree: equal trees, equal digests. */
function treeDigest(root: string): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const st = statSync(full, { throwIfNoEntry: true });
      hash.update(`${path.relative(root, full)}:${st.mode}:${st.isFile() ? st.size : 0}\n`);
      if (st.isDirectory()) walk(full);
      else if (st.isFile()) hash.update(readFileSync(full));
    }
  };
  walk(root);
  return hash.digest('hex');
}

async function main(): Promise<void> {
  const redis = await findOrStartRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  console.log(redis.started ? `started a private Redis at ${redis.url}` : `using Redis at ${redis.url}`);
  makeDemoTree();
  const config = loadConfig(
    {
      ...process.env,
      REDIS_URL: redis.url,
      SNAPWORKER_QUEUE: process.env.SNAPWORKER_QUEUE ?? 'snapworker-demo',
      SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${path.join(home, 'repo')}` }),
      SNAPWORKER_ALLOWED_PATHS: home,
      SNAPWORKER_METRICS_PORT: '0',
      SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '5',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    project,
  );
  const worker = await startWorker(config, createLogger(config.logLevel));
  const client = new SnapworkerClient({ connection: redis.url, queueName: config.queueName });
  const follow = async (kind: 'snapshot' | 'verify' | 'restore', data: Parameters<typeof client.enqueue>[1]) => {
    const job = await client.enqueue(kind, data as never);
    console.log(`enqueued ${kind} job ${job.id}`);
    const bar = new ProgressBar(process.stderr, 1000);
    try {
      return await client.waitForResult(job, { onProgress: (p) => bar.update(p) });
    } finally {
      bar.done();
    }
  };
  try {
    const snapshot = (await follow('snapshot', { v: 1, source: `dir://${source}`, labels: { app: 'demo' } })) as { id: string; archive: { key: string; size: number; checksum: string }; stats: { rawBytes: number; entries: number } };
    console.log(`snapshot ${snapshot.id}: ${snapshot.stats.entries} entries, ${formatBytes(snapshot.stats.rawBytes)} → ${formatBytes(snapshot.archive.size)} (${snapshot.archive.checksum})`);
    await follow('verify', { v: 1, snapshot: snapshot.id });
    console.log(`verified ${snapshot.id}`);
    await follow('restore', { v: 1, snapshot: 'latest', labels: { app: 'demo' }, target: `dir://${restored}` });
    const same = treeDigest(source) === treeDigest(restored);
    console.log(`restored into ${path.relative(project, restored)}: ${same ? 'identical to the source' : 'DIFFERENT from the source'}`);
    console.log(`repository: ${path.relative(project, path.join(home, 'repo', 'snapshots', snapshot.id))}/ (archive.tar.zst, its entry index entries.jsonl.zst, snapshot.json)`);
    if (!same) process.exitCode = 1;
  } finally {
    await client.close();
    await worker.stop();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
