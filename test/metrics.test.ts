import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { WorkerMetrics } from '../shared/metrics/metrics.js';
import { sampleQueue, startQueueSampler } from '../shared/metrics/queue-sampler.js';
import {
  NON_WORKER_METRICS,
  RULES_PATH,
  RULES_TEST_PATH,
  alertRules,
  dashboardQueries,
  metricNamesIn,
  promtoolBinary,
  run,
  sampleNames,
  waitFor,
} from './helpers/observability.js';

const REDIS = { host: '127.0.0.1', port: 6379 };

/** A registry in which every WorkerMetrics method has been called once. */
function exercisedMetrics(): WorkerMetrics {
  const metrics = new WorkerMetrics({ version: '1.2.3' });
  metrics.jobStarted('snapshot');
  metrics.jobFinished('snapshot', 'completed', 12.5);
  metrics.snapshotSucceeded('orders-db', new Date('2026-01-02T03:04:05Z'));
  metrics.verificationFailed();
  metrics.bytesRead('dir', 1000);
  metrics.bytesWritten('dir', 900);
  metrics.bytesStored('dir', 700, 300);
  metrics.setRepositorySize('default', { packs: 3, packBytes: 48_000_000, indexObjects: 1, indexBytes: 9000 });
  const storage = metrics.storageObserver('fs');
  storage.request('put', 'ok');
  storage.retry('put');
  storage.uploaded(500);
  storage.downloaded(400);
  metrics.eventDropped();
  metrics.setQueueDepth({ waiting: 1, prioritized: 2, delayed: 3, active: 4, failed: 5 });
  metrics.setOldestWaitingAge(7);
  metrics.setSchedules(new Map([['nightly', { lastSuccess: 1767322800, lastFailure: 1767236400, nextRun: 1767409200, interval: 86400 }]]));
  metrics.replication.started('orders');
  metrics.replication.generationStarted('orders');
  metrics.replication.segmentStored('orders', 4096);
  metrics.replication.synced('orders', new Date(), { index: 1, offset: 4152, at: new Date() });
  return metrics;
}

/** Value of one sample line, e.g. `snapworker_jobs_total{kind="snapshot",outcome="failed"}`. */
function sampleValue(exposition: string, series: string): number | undefined {
  const line = exposition.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** label name sets per sample name, e.g. jobs_total -> {kind,outcome}. */
function labelSets(exposition: string): Map<string, Set<string>> {
  const sets = new Map<string, Set<string>>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = line.split(/[{ ]/, 1)[0]!;
    const labels = [...line.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((match) => match[1]!);
    const set = sets.get(name) ?? new Set<string>();
    for (const label of labels) set.add(label);
    sets.set(name, set);
  }
  return sets;
}

function seriesCount(exposition: string): number {
  return exposition.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length;
}

describe('worker metrics', () => {
  test('every metric is prefixed snapworker_ and the documented ones carry exactly their labels', async () => {
    const text = await exercisedMetrics().metrics();
    for (const name of sampleNames(text)) assert.ok(name.startsWith('snapworker_'), `${name} lacks the prefix`);
    const labels = labelSets(text);
    const expected: Record<string, string[]> = {
      snapworker_worker_info: ['version'],
      snapworker_active_jobs: ['kind'],
      snapworker_jobs_total: ['kind', 'outcome'],
      snapworker_job_duration_seconds_bucket: ['kind', 'le'],
      snapworker_job_duration_seconds_sum: ['kind'],
      snapworker_job_duration_seconds_count: ['kind'],
      snapworker_last_success_timestamp_seconds: ['source'],
      snapworker_verification_failures_total: [],
      snapworker_source_read_bytes_total: ['source_kind'],
      snapworker_target_written_bytes_total: ['target_kind'],
      snapworker_storage_requests_total: ['driver', 'operation', 'outcome'],
      snapworker_storage_retries_total: ['driver', 'operation'],
      snapworker_storage_uploaded_bytes_total: ['driver'],
      snapworker_storage_downloaded_bytes_total: ['driver'],
      snapworker_events_dropped_total: [],
      snapworker_cleanup_failures_total: ['kind'],
      snapworker_queue_jobs: ['state'],
      snapworker_queue_oldest_waiting_seconds: [],
      snapworker_process_cpu_seconds_total: [],
    };
    for (const [name, labelNames] of Object.entries(expected)) {
      assert.deepEqual([...(labels.get(name) ?? ['<missing>'])].sort(), labelNames.sort(), name);
    }
    assert.equal(sampleValue(text, 'snapworker_worker_info{version="1.2.3"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_last_success_timestamp_seconds{source="orders-db"}'), Date.parse('2026-01-02T03:04:05Z') / 1000);
    assert.equal(sampleValue(text, 'snapworker_queue_jobs{state="prioritized"}'), 2);
  });

  test('records outcomes, durations, bytes and storage activity as counted', async () => {
    const metrics = new WorkerMetrics({ collectDefaultMetrics: false });
    metrics.jobStarted('restore');
    metrics.jobStarted('restore');
    metrics.jobFinished('restore', 'failed', 3);
    const storage = metrics.storageObserver('s3');
    storage.request('upload_part', 'error');
    storage.retry('upload_part');
    storage.uploaded(5 * 1024 * 1024);
    metrics.bytesRead('sqlite', 10);
    metrics.bytesRead('sqlite', 32);
    const text = await metrics.metrics();
    assert.equal(sampleValue(text, 'snapworker_active_jobs{kind="restore"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_jobs_total{kind="restore",outcome="failed"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_jobs_total{kind="restore",outcome="completed"}'), 0);
    assert.equal(sampleValue(text, 'snapworker_job_duration_seconds_bucket{le="2.5",kind="restore"}'), 0);
    assert.equal(sampleValue(text, 'snapworker_job_duration_seconds_bucket{le="5",kind="restore"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_storage_requests_total{driver="s3",operation="upload_part",outcome="error"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_storage_retries_total{driver="s3",operation="upload_part"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_storage_uploaded_bytes_total{driver="s3"}'), 5 * 1024 * 1024);
    assert.equal(sampleValue(text, 'snapworker_source_read_bytes_total{source_kind="sqlite"}'), 42);
  });

  test('label sets stay bounded however many jobs, operations and bad values come', async () => {
    const metrics = exercisedMetrics();
    const before = seriesCount(await metrics.metrics());
    const storage = metrics.storageObserver('fs');
    for (let i = 0; i < 1000; i++) {
      metrics.jobStarted('snapshot');
      metrics.jobFinished('snapshot', i % 2 ? 'completed' : 'failed', i);
      storage.request(`made-up-operation-${i}`, 'ok');
      storage.retry(`made-up-operation-${i}`);
      metrics.bytesRead('dir', -1);
      metrics.bytesWritten('dir', Number.NaN);
    }
    const text = await metrics.metrics();
    // Unknown operations all land in one `other` series per metric and outcome.
    assert.equal(seriesCount(text), before + 2);
    assert.equal(sampleValue(text, 'snapworker_storage_requests_total{driver="fs",operation="other",outcome="ok"}'), 1000);
    assert.equal(sampleValue(text, 'snapworker_source_read_bytes_total{source_kind="dir"}'), 1000);
  });

  test('the last success of a source never moves backwards', async () => {
    const metrics = new WorkerMetrics({ collectDefaultMetrics: false });
    metrics.snapshotSucceeded('web', new Date(2_000_000));
    metrics.snapshotSucceeded('web', new Date(1_000_000));
    assert.equal(sampleValue(await metrics.metrics(), 'snapworker_last_success_timestamp_seconds{source="web"}'), 2000);
  });

  test('two WorkerMetrics in one process do not share counters', async () => {
    const first = new WorkerMetrics({ collectDefaultMetrics: false });
    const second = new WorkerMetrics({ collectDefaultMetrics: false });
    first.verificationFailed();
    assert.equal(sampleValue(await first.metrics(), 'snapworker_verification_failures_total'), 1);
    assert.equal(sampleValue(await second.metrics(), 'snapworker_verification_failures_total'), 0);
  });

  test('the output passes promtool check metrics', async () => {
    const result = await run(promtoolBinary(), ['check', 'metrics'], { input: await exercisedMetrics().metrics() });
    assert.equal(result.code, 0, result.output);
    assert.equal(result.output.trim(), '', result.output);
  });
});

describe('dashboard and alert rules', () => {
  test('every dashboard query and alert expression names only metrics the worker exports', async () => {
    const exported = sampleNames(await exercisedMetrics().metrics());
    const queries = [
      ...(await dashboardQueries()).map((query) => ({ where: `panel "${query.panel}"`, expr: query.expr })),
      ...(await alertRules()).map((rule) => ({ where: `rule ${rule.alert}`, expr: rule.expr })),
    ];
    assert.ok(queries.length >= 20, `only ${queries.length} queries found`);
    for (const { where, expr } of queries) {
      const names = metricNamesIn(expr);
      assert.ok(names.size > 0, `${where}: no metric found in ${expr}`);
      for (const name of names) {
        assert.ok(exported.has(name) || NON_WORKER_METRICS.has(name), `${where}: ${name} is not exported (${expr})`);
      }
    }
  });

  test('the metric name extraction sees through functions, grouping and matchers', () => {
    assert.deepEqual(
      [...metricNamesIn('histogram_quantile(0.95, sum by (kind, le) (rate(a_bucket{state=~"x|y"}[$__rate_interval]))) / on (kind) group_left () b offset 30m > 0.2')],
      ['a_bucket', 'b'],
    );
  });

  test('the rules pass promtool check rules', async () => {
    const result = await run(promtoolBinary(), ['check', 'rules', RULES_PATH]);
    assert.equal(result.code, 0, result.output);
  });

  test('each alert fires and stays quiet as promtool test rules shows', async () => {
    const result = await run(promtoolBinary(), ['test', 'rules', RULES_TEST_PATH], { cwd: dirname(RULES_TEST_PATH) });
    assert.equal(result.code, 0, result.output);
    const tested = await import('node:fs/promises').then((fs) => fs.readFile(RULES_TEST_PATH, 'utf8'));
    for (const rule of await alertRules()) {
      assert.match(tested, new RegExp(`alertname: ${rule.alert}\\n\\s+exp_alerts: \\[\\]`), `${rule.alert} is never shown quiet`);
      assert.match(tested, new RegExp(`alertname: ${rule.alert}\\n\\s+exp_alerts:\\n`), `${rule.alert} is never shown firing`);
    }
  });
});

describe('queue sampler', () => {
  let queue: Queue;

  before(async () => {
    queue = new Queue(`metrics-test-${randomUUID()}`, { connection: REDIS });
  });

  after(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });

  test('reports depth by state and the age of the oldest waiting job from Redis', async () => {
    const oldest = await queue.add('snapshot', { v: 1 });
    await queue.add('snapshot', { v: 1 });
    await queue.add('verify', { v: 1 }, { priority: 5 });
    await queue.add('prune', { v: 1 }, { delay: 60_000 });
    const metrics = new WorkerMetrics({ collectDefaultMetrics: false });

    await sampleQueue(queue, metrics, oldest.timestamp + 4_000);

    const text = await metrics.metrics();
    assert.equal(sampleValue(text, 'snapworker_queue_jobs{state="waiting"}'), 2);
    assert.equal(sampleValue(text, 'snapworker_queue_jobs{state="prioritized"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_queue_jobs{state="delayed"}'), 1);
    assert.equal(sampleValue(text, 'snapworker_queue_jobs{state="active"}'), 0);
    assert.equal(sampleValue(text, 'snapworker_queue_jobs{state="failed"}'), 0);
    assert.equal(sampleValue(text, 'snapworker_queue_oldest_waiting_seconds'), 4);
  });

  test('samples at once and on its interval, and stops cleanly', async () => {
    const metrics = new WorkerMetrics({ collectDefaultMetrics: false });
    const sampler = startQueueSampler(queue, metrics, { intervalMs: 100 });
    try {
      await waitFor('a first sample', async () => sampleValue(await metrics.metrics(), 'snapworker_queue_jobs{state="waiting"}') === 2);
      await queue.add('snapshot', { v: 1 });
      await waitFor('a later sample', async () => sampleValue(await metrics.metrics(), 'snapworker_queue_jobs{state="waiting"}') === 3);
    } finally {
      await sampler.stop();
    }
  });

  test('an empty queue reports zero age', async () => {
    const empty = new Queue(`metrics-test-${randomUUID()}`, { connection: REDIS });
    try {
      const metrics = new WorkerMetrics({ collectDefaultMetrics: false });
      metrics.setOldestWaitingAge(99);
      await sampleQueue(empty, metrics);
      assert.equal(sampleValue(await metrics.metrics(), 'snapworker_queue_oldest_waiting_seconds'), 0);
    } finally {
      await empty.obliterate({ force: true });
      await empty.close();
    }
  });
});
