/**
 * Two builds of the worker side by side on small jobs, batch by batch (ABBA order), on one private
 * standalone Redis: the per-job CPU of a change measured under the same load as its base, which is
 * what a shared machine allows (its jobs/s figures are the scheduler's share, not the fleet's).
 *
 *   node --import tsx bench/fleet/fleet-ab.ts <before/dist/worker/cli.js> <after/dist/worker/cli.js> [rounds 3] [jobs 400] [workers 2]
 *
 * Each batch is `measure` of fleet-bench.ts: fresh worker processes, warm-up, then `jobs` small
 * snapshots; prints each batch and the medians of worker CPU per job.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from '../median.js';
import { measure, type Measurement } from './fleet-bench.js';
import { standaloneRedis } from './redis-under-test.js';

const [before, after, rounds = '3', jobs = '400', workers = '2'] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: fleet-ab.ts <before cli.js> <after cli.js> [rounds] [jobs] [workers]');
  process.exit(2);
}
const root = mkdtempSync(path.join(os.tmpdir(), 'snapworker-fleet-ab-'));
const source = path.join(root, 'tiny');
mkdirSync(source);
for (const name of ['a.txt', 'b.txt', 'c.txt']) writeFileSync(path.join(source, name), `${name}\n`.repeat(20));
const redis = await standaloneRedis();
const runs: Record<'before' | 'after', Measurement[]> = { before: [], after: [] };
try {
  for (let round = 0; round < Number(rounds); round++) {
    const order = round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const);
    for (const side of order) {
      const run = await measure({ cli: side === 'before' ? before : after, work: root, rounds: 1, jobs: Number(jobs) }, redis, Number(workers), root, source);
      runs[side].push(run);
      console.log(
        `${side} round ${round + 1}: ${run.jobsPerSecond.toFixed(0)} jobs/s, worker CPU ${(run.workerCpu * 1000).toFixed(2)} ms/job, ` +
          `Redis ${(run.redisCpu * 1000).toFixed(2)} ms/job, ${run.commandsPerJob.toFixed(1)} commands/job (${run.scriptCallsPerJob.toFixed(2)} script calls), ` +
          `others ${run.othersBusy.toFixed(2)} cores${run.violations.length ? `, NOT exactly once: ${run.violations.join('; ')}` : ''}`,
      );
    }
  }
} finally {
  await redis.stop();
  rmSync(root, { recursive: true, force: true });
}
const ms = (side: 'before' | 'after') => (median(runs[side].map((r) => r.workerCpu)) * 1000).toFixed(2);
console.log(`median worker CPU per job: before ${ms('before')} ms, after ${ms('after')} ms`);
