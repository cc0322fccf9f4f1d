import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../shared/config.js';
import { StalledError } from '../shared/errors.js';
import { createLogger } from '../shared/logging.js';
import { StallWatchdog } from '../shared/pipeline/stall-watchdog.js';
import { nullProgress } from '../shared/progress.js';
import { JobRuntime, runJob } from '../worker/job-runner.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { createTestEnvironment, eventually, startTestWorker } from './helpers/worker-fixture.js';

describe('the stall watchdog', () => {
  let s3: S3rverHandle;
  let proxy: FaultProxy;
  let root: string;
  let runtime: JobRuntime;
  let uri: string;

  before(async () => {
    s3 = await startS3rver('stalls');
    // The repository stops answering reads of archives, as a hung S3 endpoint or a dead peer would.
    proxy = await startFaultProxy({
      target: s3.endpoint,
      faultRate: 0,
      faults: ['stall'],
      eligible: (req) => req.method === 'GET' && (req.url ?? '').includes('archive.tar'),
    });
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-stall-'));
    uri = `s3://${s3.bucket}/main?endpoint=${proxy.endpoint}&forcePathStyle=true&checksum=when_required&region=us-east-1`;
    const config = loadConfig({
      SNAPWORKER_REPOSITORIES: JSON.stringify({ default: uri }),
      SNAPWORKER_ALLOWED_PATHS: root,
      SNAPWORKER_STAGING_DIR: root,
      SNAPWORKER_STALL_TIMEOUT_SECONDS: '1',
    });
    runtime = new JobRuntime(config, createLogger('silent'));
  });
  after(async () => {
    await runtime?.close();
    await proxy?.close();
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('fails a verify and a restore whose repository stops answering, naming the phase, within the stall timeout', async () => {
    const source = path.join(root, 'site');
    await mkdir(source);
    await writeFile(path.join(source, 'index.html'), '<h1>hi</h1>');
    const signal = new AbortController().signal;
    const record = await runJob({ kind: 'snapshot', data: { v: 1, source: `dir://${source}`, name: 'site' }, signal, progress: nullProgress }, runtime);

    proxy.setFaultRate(1);
    for (const [kind, data] of [
      ['verify', { v: 1, snapshot: record.id }],
      ['restore', { v: 1, snapshot: record.id, target: `dir://${path.join(root, 'restored')}` }],
    ] as const) {
      const started = Date.now();
      await assert.rejects(
        runJob({ kind, data, signal, progress: nullProgress } as Parameters<typeof runJob>[0], runtime),
        (err: unknown) => {
          assert.ok(err instanceof StalledError, `a StalledError, got ${String(err)}`);
          assert.match(err.message, new RegExp(`^${kind}: no progress for 1 s while (downloading|verifying); stopped \\(SNAPWORKER_STALL_TIMEOUT_SECONDS\\)$`));
          return true;
        },
      );
      assert.ok(Date.now() - started < 5000, `${kind} stopped in ${Date.now() - started} ms`);
    }
    assert.ok(proxy.counts.stall >= 2, `the proxy held the reads: ${JSON.stringify(proxy.counts)}`);
  });

  it('fails a queued verify that stalls, instead of leaving it active with its lock renewed', async () => {
    const environment = await createTestEnvironment({ SNAPWORKER_REPOSITORIES: JSON.stringify({ default: uri }), SNAPWORKER_STALL_TIMEOUT_SECONDS: '1' });
    const { worker } = await startTestWorker(environment);
    try {
      proxy.setFaultRate(0);
      const source = path.join(environment.root, 'queued');
      await mkdir(source);
      await writeFile(path.join(source, 'a.txt'), 'a');
      const snapshot = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'queued' });
      const record = (await snapshot.waitUntilFinished(environment.events, 30_000)) as { id: string };
      proxy.setFaultRate(1);
      const verify = await environment.queue.add('verify', { v: 1, snapshot: record.id }, { attempts: 1 });
      await assert.rejects(verify.waitUntilFinished(environment.events, 30_000), /^Error: verify: no progress for 1 s while (downloading|verifying); stopped/);
      const failed = await eventually('the failed job', async () => ((await verify.getState()) === 'failed' ? verify : undefined));
      assert.ok(failed);
    } finally {
      await worker.stop();
      await environment.cleanup();
    }
  });

  it('leaves a job that keeps making progress alone, and can be turned off with 0', async () => {
    const signal = new AbortController().signal;
    const busy = new StallWatchdog({ signal, progress: nullProgress, timeoutSeconds: 0.2, operation: 'snapshot' });
    const off = new StallWatchdog({ signal, progress: nullProgress, timeoutSeconds: 0, operation: 'snapshot' });
    for (let i = 0; i < 10; i++) {
      busy.progress.addBytes(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(busy.signal.aborted, false);
    assert.equal(off.signal.aborted, false);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(busy.signal.aborted, true);
    assert.match(String((busy.signal.reason as Error).message), /^snapshot: no progress for 0\.2 s while preparing/);
    assert.equal(off.signal.aborted, false);
    busy.stop();
    off.stop();
  });
});
