import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { decodeJobIdToken, encodeJobIdToken } from '../shared/events/job-event-subject.js';
import { nullEventSink, type JobRef } from '../shared/events/job-events.js';
import { createNatsEventSink } from '../shared/events/nats-event-sink.js';
import type { ProgressReport } from '../shared/progress.js';
import { runWatch } from '../worker/commands/watch.js';
import { EVENT_SCHEMA_PATH, freePort, startRestartableNats, waitFor } from './helpers/observability.js';

const SHARED_NATS = 'nats://127.0.0.1:4222';
const REPORT: ProgressReport = { phase: 'reading', bytesDone: 2048, bytesTotal: 4096, entriesDone: 3, bytesPerSecond: 1024, etaSeconds: 2 };

async function eventSchemaValidator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  (addFormats as unknown as (ajv: Ajv2020) => void)(ajv);
  return ajv.compile(JSON.parse(await readFile(EVENT_SCHEMA_PATH, 'utf8')));
}

/** Collects the messages of a subscription until `stop`. */
function collect(connection: NatsConnection, subject: string): { messages: Msg[]; stop(): void } {
  const subscription = connection.subscribe(subject);
  const messages: Msg[] = [];
  void (async () => {
    for await (const message of subscription) messages.push(message);
  })();
  return { messages, stop: () => subscription.unsubscribe() };
}

function timed(action: () => void): number {
  const start = process.hrtime.bigint();
  action();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

describe('job id subject tokens', () => {
  test('ids with subject metacharacters, spaces and unicode become one legal token and decode back', () => {
    for (const id of ['42', 'nightly.orders', 'a*b>c', 'with space\tand tab', '100%', 'émoji 🐘', '', '%41', 'repeat:abc:1']) {
      const token = encodeJobIdToken(id);
      assert.match(token, /^[A-Za-z0-9_\-:=%]+$/, `token of ${JSON.stringify(id)}: ${token}`);
      assert.equal(decodeJobIdToken(token), id);
    }
    assert.equal(encodeJobIdToken('42'), '42');
    assert.equal(encodeJobIdToken('nightly.db'), 'nightly%2Edb');
    assert.notEqual(encodeJobIdToken('%41'), encodeJobIdToken('A'));
  });
});

describe('NATS event sink', () => {
  let subscriber: NatsConnection;
  let validate: Awaited<ReturnType<typeof eventSchemaValidator>>;

  before(async () => {
    subscriber = await connect({ servers: SHARED_NATS });
    validate = await eventSchemaValidator();
  });

  after(async () => {
    await subscriber.close();
  });

  test('a subscriber to snapworker.jobs.> receives started, progress, completed and failed with schema-valid payloads', async () => {
    const received = collect(subscriber, 'snapworker.jobs.>');
    await subscriber.flush();
    let drops = 0;
    const sink = createNatsEventSink({ url: SHARED_NATS, onDropped: () => drops++ });
    try {
      await waitFor('the sink to connect', () => sink.connected);
      const ok: JobRef = { jobId: `events.${randomUUID()}`, kind: 'snapshot' };
      const bad: JobRef = { jobId: `events ${randomUUID()}`, kind: 'verify' };
      sink.started(ok);
      sink.progress(ok, REPORT);
      sink.completed(ok, { id: '01JSNAP', size: 10 });
      sink.started(bad);
      sink.failed(bad, 'integrity: sums do not match');

      const mine = () => received.messages.filter((message) => message.subject.includes(encodeJobIdToken(ok.jobId)) || message.subject.includes(encodeJobIdToken(bad.jobId)));
      await waitFor('five events', () => mine().length === 5);
      const events = mine().map((message) => ({ subject: message.subject, payload: message.json<Record<string, unknown>>() }));
      for (const { subject, payload } of events) {
        assert.ok(validate(payload), `${subject}: ${JSON.stringify(validate.errors)}`);
        const [, , token, name] = subject.split('.');
        assert.equal(decodeJobIdToken(token!), payload.jobId);
        assert.equal(name, payload.event);
      }
      assert.deepEqual(events.map(({ payload }) => `${payload.kind} ${payload.event}`), [
        'snapshot started',
        'snapshot progress',
        'snapshot completed',
        'verify started',
        'verify failed',
      ]);
      assert.deepEqual(events[1]!.payload, { v: 1, event: 'progress', jobId: ok.jobId, kind: 'snapshot', at: events[1]!.payload.at, ...REPORT });
      assert.deepEqual(events[2]!.payload.result, { id: '01JSNAP', size: 10 });
      assert.equal(events[4]!.payload.error, 'integrity: sums do not match');
      assert.equal(drops, 0);
    } finally {
      received.stop();
      await sink.close();
    }
  });

  test('the schema rejects payloads that break the contract', () => {
    const base = { v: 1, jobId: '1', kind: 'snapshot', at: new Date().toISOString() };
    assert.equal(validate({ ...base, event: 'started' }), true);
    assert.equal(validate({ ...base, event: 'progress' }), false, 'progress without its fields');
    assert.equal(validate({ ...base, event: 'failed' }), false, 'failed without error');
    assert.equal(validate({ ...base, v: 2, event: 'started' }), false, 'unknown version');
    assert.equal(validate({ ...base, kind: 'backup', event: 'started' }), false, 'unknown kind');
    assert.equal(validate({ ...base, at: 'yesterday', event: 'started' }), false, 'bad time');
  });

  test('a result that is not JSON is dropped and counted, and the job goes on', async () => {
    let drops = 0;
    const sink = createNatsEventSink({ url: SHARED_NATS, onDropped: () => drops++ });
    try {
      await waitFor('the sink to connect', () => sink.connected);
      assert.doesNotThrow(() => sink.completed({ jobId: 'bigint', kind: 'snapshot' }, { size: 1n }));
      assert.equal(drops, 1);
    } finally {
      await sink.close();
    }
  });

  test('a sink pointed at a port where no NATS listens never throws or blocks, and counts every event as dropped', async () => {
    let drops = 0;
    const port = await freePort();
    const sink = createNatsEventSink({ url: `nats://127.0.0.1:${port}`, onDropped: () => drops++, reconnectWaitMs: 100 });
    const job: JobRef = { jobId: 'nowhere', kind: 'restore' };
    const elapsed = timed(() => {
      for (let i = 0; i < 1000; i++) {
        sink.started(job);
        sink.progress(job, REPORT);
        sink.completed(job, null);
        sink.failed(job, 'x');
      }
    });
    assert.equal(drops, 4000);
    assert.ok(elapsed < 200, `4000 events took ${elapsed} ms`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sink.connected, false);
    const closeStart = Date.now();
    await sink.close();
    assert.ok(Date.now() - closeStart < 1000, 'close waits for nothing');
    sink.started(job);
    assert.equal(drops, 4001, 'events after close are dropped too');
  });

  test('with its NATS stopped mid-run, publishing goes on without blocking, drops are counted, and events flow again after a restart', async () => {
    const nats = await startRestartableNats();
    let drops = 0;
    const sink = createNatsEventSink({ url: nats.url, onDropped: () => drops++, reconnectWaitMs: 100 });
    const watcher = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const received = collect(watcher, 'snapworker.jobs.>');
    const job: JobRef = { jobId: 'restart', kind: 'snapshot' };
    try {
      await watcher.flush();
      await waitFor('the sink to connect', () => sink.connected);
      sink.started(job);
      await waitFor('the first event', () => received.messages.length === 1);

      await nats.stop();
      await waitFor('the sink to notice', () => !sink.connected);
      let slowest = 0;
      for (let i = 0; i < 200; i++) slowest = Math.max(slowest, timed(() => sink.progress(job, REPORT)));
      assert.equal(drops, 200);
      assert.ok(slowest < 20, `one publish took ${slowest} ms while NATS was down`);

      await nats.start();
      await waitFor('the sink to reconnect', () => sink.connected, 15_000);
      await waitFor('the watcher to reconnect', async () => {
        try {
          await watcher.flush();
          return true;
        } catch {
          return false;
        }
      }, 15_000);
      // The watcher's subscription is re-sent on reconnect; keep publishing until it is in place.
      await waitFor('events after the restart', () => {
        sink.completed(job, { id: 'after-restart' });
        return received.messages.some((message) => message.subject.endsWith('.completed'));
      }, 15_000);
      const payload = received.messages.find((message) => message.subject.endsWith('.completed'))!.json<Record<string, unknown>>();
      assert.ok(validate(payload));
    } finally {
      received.stop();
      await sink.close();
      await watcher.close();
      await nats.dispose();
    }
  });

  test('the null sink accepts everything', async () => {
    const job: JobRef = { jobId: '1', kind: 'prune' };
    nullEventSink.started(job);
    nullEventSink.progress(job, REPORT);
    nullEventSink.completed(job, {});
    nullEventSink.failed(job, 'x');
    await nullEventSink.close();
  });
});

describe('snapworker watch', () => {
  /** Publishes progress until the watcher prints something, then ends the job as given. */
  async function followOneJob(json: boolean, end: 'completed' | 'failed'): Promise<{ code: number; lines: string[] }> {
    const job: JobRef = { jobId: `watch.${randomUUID()}`, kind: 'snapshot' };
    const out = new PassThrough();
    let printed = '';
    out.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const sink = createNatsEventSink({ url: SHARED_NATS });
    try {
      await waitFor('the sink to connect', () => sink.connected);
      const watching = runWatch({ natsUrl: SHARED_NATS, jobId: job.jobId, json, out });
      sink.started({ jobId: 'someone-else', kind: 'verify' });
      await waitFor('the watcher to print', () => {
        sink.progress(job, REPORT);
        return printed.length > 0;
      });
      if (end === 'completed') sink.completed(job, { id: '01JWATCHED' });
      else sink.failed(job, 'source gone');
      const code = await watching;
      return { code, lines: printed.trim().split('\n') };
    } finally {
      await sink.close();
    }
  }

  test('follows one job, prints a readable line per event and exits 0 when it completes', async () => {
    const { code, lines } = await followOneJob(false, 'completed');
    assert.equal(code, 0);
    assert.match(lines[0]!, /snapshot watch\.\S+ progress reading 2\.0 KiB \/ 4\.0 KiB \(50%\) 3 entries 1\.0 KiB\/s eta 2s$/);
    assert.match(lines.at(-1)!, /snapshot watch\.\S+ completed 01JWATCHED$/);
    assert.ok(lines.every((line) => !line.includes('someone-else')));
  });

  test('with --json prints the payloads as JSON lines and exits 1 when the job fails', async () => {
    const { code, lines } = await followOneJob(true, 'failed');
    assert.equal(code, 1);
    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(events.at(-1)!.event, 'failed');
    assert.equal(events.at(-1)!.error, 'source gone');
  });

  test('watching every job stops with exit code 0 when its signal fires', async () => {
    const controller = new AbortController();
    const watching = runWatch({ natsUrl: SHARED_NATS, json: true, signal: controller.signal, out: new PassThrough() });
    setTimeout(() => controller.abort(), 200);
    assert.equal(await watching, 0);
  });

  test('an unreachable NATS is reported with exit code 1', async () => {
    const err = new PassThrough();
    let message = '';
    err.on('data', (chunk: Buffer) => (message += chunk.toString()));
    const code = await runWatch({ natsUrl: `nats://127.0.0.1:${await freePort()}`, json: false, out: new PassThrough(), err });
    assert.equal(code, 1);
    assert.match(message, /connect to nats/);
  });
});
