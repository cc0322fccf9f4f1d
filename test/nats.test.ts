import assert from 'node:assert/strict';
import { nullNotices } from '../shared/kinds/notices.js';
import { manifestFor } from './helpers/archive-fixtures.js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, StorageType, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Readable } from 'node:stream';
import type { EntryHeader } from '../shared/formats/archive/archive-entry.js';
import type { Manifest } from '../shared/formats/archive/manifest.js';
import { InvalidInputError, NotFoundError, SnapworkerError } from '../shared/errors.js';
import { nullProgress, type ProgressSink } from '../shared/progress.js';
import { createNatsSource, natsSourceFactory } from '../shared/kinds/nats/nats-source.js';
import type { EndpointContext, Source, SourceFactory, SourceParams } from '../shared/kinds/source.js';
import { createNatsTarget, natsTargetFactory } from '../shared/kinds/nats/nats-target.js';
import type { RestoreSession, RestoreTarget, TargetFactory } from '../shared/kinds/restore-target.js';
import type { NatsSourceParams, NatsTargetParams } from '../shared/kinds/nats/index.js';
import { startNatsServer } from './helpers/nats-server.js';

const SHARED_NATS = 'nats://127.0.0.1:4222';

let stagingDir: string;
let nc: NatsConnection;
let jsm: JetStreamManager;
const streamsToDelete = new Set<string>();

function endpointContext(): EndpointContext {
  return { checkPath() {}, stagingDir, profiles: { nats: { local: {} } } };
}

function streamName(): string {
  const name = `SNAPTEST_${randomBytes(5).toString('hex').toUpperCase()}`;
  streamsToDelete.add(name);
  return name;
}


interface StagedEntry extends EntryHeader {
  body: Buffer;
}

/** Runs a source to the end, keeping each entry's bytes (small streams only: tests). */
async function readEntries(source: Source, progress: ProgressSink = nullProgress): Promise<StagedEntry[]> {
  const staged: StagedEntry[] = [];
  for await (const entry of source.entries({ signal: new AbortController().signal, progress, notices: nullNotices })) {
    const chunks: Buffer[] = [];
    for await (const chunk of await entry.open!()) chunks.push(chunk as Buffer);
    const { open: _open, ...header } = entry;
    staged.push({ ...header, body: Buffer.concat(chunks) });
  }
  return staged;
}

/** Feeds entries into a new restore session, as the pipeline does while reading an archive. */
async function beginRestore(
  target: RestoreTarget,
  manifest: Manifest,
  entries: StagedEntry[],
  replace = false,
): Promise<RestoreSession> {
  const session = await target.begin(manifest, { signal: new AbortController().signal, progress: nullProgress, replace });
  try {
    for (const { body, ...header } of entries) {
      assert.equal(body.length, header.size, `${header.path} yields its declared size`);
      await session.write(header, Readable.from([body]));
    }
  } catch (err) {
    await session.abort();
    throw err;
  }
  return session;
}

function natsTarget(uri: string, params: NatsTargetParams = {}, factory: TargetFactory<NatsTargetParams> = createNatsTarget): RestoreTarget {
  return factory([new URL(uri)], params, endpointContext());
}

function natsSource(uri: string, params: SourceParams & NatsSourceParams = {}, factory: SourceFactory<NatsSourceParams> = createNatsSource): Source {
  return factory([new URL(uri)], params, endpointContext());
}

/**
 * Publishes `count` messages with core NATS (no per-message ack, so 100,000 take about a second),
 * then waits until the stream holds them all.
 */
async function publishMessages(
  stream: string,
  count: number,
  subjects: string[],
  payload: (i: number) => Uint8Array,
  client = nc,
): Promise<void> {
  const manager = await jetstreamManager(client);
  const initial = (await manager.streams.info(stream)).state.messages;
  for (let i = 0; i < count; i++) {
    client.publish(subjects[i % subjects.length]!, payload(i));
    if (i % 5_000 === 4_999) await client.flush();
  }
  await client.flush();
  const deadline = Date.now() + 30_000;
  while ((await manager.streams.info(stream)).state.messages < initial + count) {
    if (Date.now() > deadline) throw new Error(`stream ${stream} did not reach ${initial + count} messages`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** SHA-256 over every message's sequence, subject and payload, read with an ordered consumer. */
async function streamDigest(stream: string, lastSeq: number): Promise<{ sha256: string; subjects: Set<string> }> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 5_000 });
  const hash = createHash('sha256');
  const subjects = new Set<string>();
  for await (const msg of messages) {
    hash.update(`${msg.seq} ${msg.subject}\n`);
    hash.update(msg.data);
    subjects.add(msg.subject);
    if (msg.seq >= lastSeq) break;
  }
  await messages.close();
  return { sha256: hash.digest('hex'), subjects };
}

async function stagingIsEmpty(): Promise<void> {
  assert.deepEqual(await readdir(stagingDir), [], 'no staging files left behind');
}

before(async () => {
  stagingDir = await mkdtemp(join(tmpdir(), 'snapworker-nats-test-'));
  nc = await connect({ servers: SHARED_NATS });
  jsm = await jetstreamManager(nc);
});

after(async () => {
  for (const name of streamsToDelete) await jsm.streams.delete(name).catch(() => {});
  await nc.close();
  await rm(stagingDir, { recursive: true, force: true });
});

describe('NATS stream snapshot and restore', () => {
  it('brings back a 100,000-message file stream with its durable consumer after snapshot, delete and restore', async () => {
    const stream = streamName();
    const subjects = [`${stream}.orders`, `${stream}.invoices`, `${stream}.audit.a`, `${stream}.audit.b`];
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
        await publishMessages(stream, 100_000, subjects, (i) => Buffer.from(`message ${i} ${'x'.repeat(i % 50)}`));
    await jsm.consumers.add(stream, { durable_name: 'billing', ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(nc).consumers.get(stream, 'billing');
    let received = 0;
    for await (const msg of await consumer.fetch({ max_messages: 300, expires: 5_000 })) {
      received += 1;
      if (received <= 250) await msg.ackAck();
      if (received === 300) break;
    }
    const before = await jsm.streams.info(stream);
    const consumerBefore = await jsm.consumers.info(stream, 'billing');
    assert.equal(before.state.messages, 100_000);
    assert.equal(consumerBefore.delivered.stream_seq, 300);
    assert.equal(consumerBefore.ack_floor.stream_seq, 250);

    const source = natsSource(`${SHARED_NATS}/${stream}?profile=local`);
    assert.equal(await source.estimateBytes!(new AbortController().signal), before.state.bytes);
    const progressBytes: number[] = [];
    const entries = await readEntries(source, { ...nullProgress, addBytes: (n) => void progressBytes.push(n) });
    await stagingIsEmpty();
    // Read after the snapshot: the ordered consumer reading it would otherwise be in the snapshot.
    const digestBefore = await streamDigest(stream, before.state.last_seq);
    assert.deepEqual(entries.map((e) => e.path), ['backup.json', 'stream.tar.s2']);
    const backup = JSON.parse(entries[0]!.body.toString()) as { config: { name: string }; state: { messages: number } };
    assert.deepEqual(Object.keys(backup), ['config', 'state'], 'backup.json has the layout nats stream backup writes');
    assert.equal(backup.config.name, stream);
    assert.equal(backup.state.messages, 100_000);
    assert.equal(progressBytes.reduce((a, b) => a + b, 0), entries[1]!.size, 'staging progress counts the snapshot bytes');
    assert.deepEqual(source.descriptor, {
      kind: 'nats',
      uri: `${SHARED_NATS}/${stream}?profile=local`,
      name: stream,
      details: {
        stream,
        messages: 100_000,
        bytes: before.state.bytes,
        firstSeq: 1,
        lastSeq: 100_000,
        consumers: 1,
        snapshotBytes: entries[1]!.size,
        snapshotChunks: progressBytes.length,
      },
    });

    await jsm.streams.delete(stream);
    const session = await beginRestore(natsTarget(`${SHARED_NATS}/${stream}`), manifestFor(source), entries);
    const result = await session.commit();
    assert.deepEqual(result, { target: `${SHARED_NATS}/${stream}`, entries: 2, bytes: entries[0]!.size + entries[1]!.size });
    await stagingIsEmpty();

    const restored = await jsm.streams.info(stream);
    assert.equal(restored.state.messages, before.state.messages);
    assert.equal(restored.state.bytes, before.state.bytes);
    assert.equal(restored.state.first_seq, before.state.first_seq);
    assert.equal(restored.state.last_seq, before.state.last_seq);
    const consumerAfter = await jsm.consumers.info(stream, 'billing');
    const positions = (info: typeof consumerBefore) => ({
      delivered: [info.delivered.stream_seq, info.delivered.consumer_seq],
      ackFloor: [info.ack_floor.stream_seq, info.ack_floor.consumer_seq],
      ackPending: info.num_ack_pending,
    });
    assert.deepEqual(positions(consumerAfter), positions(consumerBefore));
    const digestAfter = await streamDigest(stream, restored.state.last_seq);
    assert.deepEqual(digestAfter.subjects, new Set(subjects));
    assert.equal(digestAfter.sha256, digestBefore.sha256, 'every sequence, subject and payload is back');
  });

  it('leaves consumers out when asked to, and runs the server-side message check', async () => {
    const stream = streamName();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    await publishMessages(stream, 100, [`${stream}.a`], (i) => Buffer.from(`m${i}`));
    await jsm.consumers.add(stream, { durable_name: 'skipped', ack_policy: AckPolicy.Explicit });
    const entries = await readEntries(natsSource(`${SHARED_NATS}/${stream}`, { noConsumers: true, checkMessages: true }));
    await jsm.streams.delete(stream);
    const session = await beginRestore(natsTarget(`${SHARED_NATS}/${stream}`), manifestFor(natsSource(`${SHARED_NATS}/${stream}`)), entries);
    await session.commit();
    const info = await jsm.streams.info(stream);
    assert.equal(info.state.messages, 100);
    assert.equal(info.state.consumer_count, 0);
    await stagingIsEmpty();
  });

  it('refuses a memory stream with a clear error', async () => {
    const stream = streamName();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.Memory });
    await assert.rejects(
      readEntries(natsSource(`${SHARED_NATS}/${stream}`)),
      (err: Error) => err instanceof InvalidInputError && /memory streams do not support snapshots/.test(err.message),
    );
    await stagingIsEmpty();
  });

  it('reports a missing stream as not found', async () => {
    const source = natsSource(`${SHARED_NATS}/SNAPTEST_MISSING_${randomBytes(4).toString('hex')}`);
    await assert.rejects(source.estimateBytes!(new AbortController().signal), NotFoundError);
    await assert.rejects(readEntries(source), NotFoundError);
    await stagingIsEmpty();
  });

  it('refuses to restore a stream under another name', async () => {
    const stream = streamName();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    await publishMessages(stream, 10, [`${stream}.a`], (i) => Buffer.from(`m${i}`));
    const source = natsSource(`${SHARED_NATS}/${stream}`);
    const entries = await readEntries(source);
    const other = streamName();
    const nameChange = (err: Error) => err instanceof InvalidInputError && /stream name may not be changed during restore/.test(err.message);
    await assert.rejects(beginRestore(natsTarget(`${SHARED_NATS}/${other}`), manifestFor(source), entries), nameChange);
    // Even when the manifest is silent about the stream, backup.json gives the name away.
    const vague = { ...manifestFor(source), source: { ...source.descriptor, details: {}, uri: `${SHARED_NATS}/${other}` } };
    await assert.rejects(beginRestore(natsTarget(`${SHARED_NATS}/${other}`), vague, entries), nameChange);
    await assert.rejects(jsm.streams.info(other), 'nothing was created');
    await stagingIsEmpty();
  });

  it('refuses an existing stream without replace, and replaces it (with config overrides) when asked', async () => {
    const stream = streamName();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    await publishMessages(stream, 500, [`${stream}.a`, `${stream}.b`], (i) => Buffer.from(`m${i}`));
    const source = natsSource(`${SHARED_NATS}/${stream}`);
    const entries = await readEntries(source);
    await publishMessages(stream, 250, [`${stream}.c`], (i) => Buffer.from(`later ${i}`));
    const target = natsTarget(`${SHARED_NATS}/${stream}`, { streamConfig: { description: 'restored by snapworker', max_msgs: 10_000 } });

    await assert.rejects(
      beginRestore(target, manifestFor(source), entries),
      (err: Error) => err instanceof InvalidInputError && /already exists; replace it with --replace/.test(err.message),
    );
    assert.equal((await jsm.streams.info(stream)).state.messages, 750, 'the existing stream is untouched');

    const session = await beginRestore(target, manifestFor(source), entries, true);
    assert.equal((await jsm.streams.info(stream)).state.messages, 750, 'nothing is deleted before commit');
    await session.commit();
    const info = await jsm.streams.info(stream);
    assert.equal(info.state.messages, 500, 'the stream is back at its snapshot');
    assert.equal(info.config.description, 'restored by snapworker');
    assert.equal(info.config.max_msgs, 10_000);
    await stagingIsEmpty();

    assert.throws(
      () => natsTarget(`${SHARED_NATS}/${stream}`, { streamConfig: { name: 'OTHER' } }),
      (err: Error) => err instanceof InvalidInputError && /may not set name/.test(err.message),
    );
  });

  it('removes staged bytes when a restore is aborted', async () => {
    const stream = streamName();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    await publishMessages(stream, 10, [`${stream}.a`], (i) => Buffer.from(`m${i}`));
    const source = natsSource(`${SHARED_NATS}/${stream}`);
    const entries = await readEntries(source);
    const session = await beginRestore(natsTarget(`${SHARED_NATS}/${stream}`), manifestFor(source), entries, true);
    assert.equal((await readdir(stagingDir)).length, 1, 'the snapshot is staged');
    await session.abort();
    await stagingIsEmpty();
    assert.equal((await jsm.streams.info(stream)).state.messages, 10, 'the stream is untouched');
  });

  it('refuses credentials inside the uri, unknown profiles and more than one uri', () => {
    const refuses = (uris: string[], pattern: RegExp, factory: SourceFactory<NatsSourceParams> | TargetFactory<NatsTargetParams> = createNatsSource) =>
      assert.throws(
        () => factory(uris.map((u) => new URL(u)), {}, endpointContext()),
        (err: Error) => err instanceof InvalidInputError && pattern.test(err.message),
      );
    refuses(['nats://user:secret@127.0.0.1:4222/S'], /credentials/);
    refuses(['nats://sometoken@127.0.0.1:4222/S'], /credentials/, createNatsTarget);
    refuses(['nats://127.0.0.1:4222/S?profile=nope'], /profile "nope" is not configured/);
    refuses(['nats://127.0.0.1:4222/S?user=x'], /unknown query parameter/);
    refuses(['nats://127.0.0.1:4222/S', 'nats://127.0.0.1:4222/T'], /exactly one/);
    refuses(['nats://127.0.0.1:4222/A.B'], /invalid stream name/);
    refuses(['nats://127.0.0.1:4222/'], /expected nats:\/\/host:port\/STREAM/);
    assert.equal(natsSource('nats://127.0.0.1/S?profile=local').descriptor.uri, 'nats://127.0.0.1:4222/S?profile=local');
  });
});

describe('NATS transfers against a failing server', () => {
  it('fails a snapshot cleanly when the server is killed mid-transfer, leaving no temp files', async () => {
    const server = await startNatsServer();
    try {
      const client = await connect({ servers: server.url });
      const manager = await jetstreamManager(client);
      await manager.streams.add({ name: 'BIG', subjects: ['big.>'], storage: StorageType.File });
      // Incompressible payloads, so the snapshot outgrows the server's 16 MiB send window.
      const noise = randomBytes(128 * 1024);
      await publishMessages('BIG', 640, ['big.a'], (i) => noise.subarray(i % 1024, (i % 1024) + 60 * 1024), client);
      await client.close();

      let killing: Promise<void> | undefined;
      const source = natsSource(`${server.url}/BIG`, {}, natsSourceFactory({ idleTimeoutMs: 5_000 }));
      await assert.rejects(
        readEntries(source, { ...nullProgress, addBytes: () => void (killing ??= server.kill()) }),
        (err: Error) => err instanceof SnapworkerError && /stream snapshot BIG: connection closed before the snapshot ended/.test(err.message),
      );
      assert.ok(killing, 'the server was killed after the first chunk');
      await stagingIsEmpty();
    } finally {
      await server.stop();
    }
  });

  it('fails a stalled restore with a timeout, leaving no temp files', async () => {
    const server = await startNatsServer();
    try {
      const client = await connect({ servers: server.url });
      const manager = await jetstreamManager(client);
      await manager.streams.add({ name: 'STALL', subjects: ['stall.>'], storage: StorageType.File });
      const noise = randomBytes(64 * 1024);
      await publishMessages('STALL', 100, ['stall.a'], (i) => noise.subarray(i, i + 32 * 1024), client);
      const source = natsSource(`${server.url}/STALL`);
      const entries = await readEntries(source);
      await manager.streams.delete('STALL');
      await client.close();

      // The server stops answering once the upload is under way: the next acknowledgement never comes.
      const makeTarget = natsTargetFactory({
        chunkSize: 16 * 1024,
        chunkTimeoutMs: 1_000,
        onRestoreProgress: (progress) => {
          if (progress.chunks === 2) server.pause();
        },
      });
      const session = await beginRestore(natsTarget(`${server.url}/STALL`, {}, makeTarget), manifestFor(source), entries);
      const started = Date.now();
      await assert.rejects(
        session.commit(),
        (err: Error) => err instanceof SnapworkerError && /stream restore STALL: chunk \d+ not acknowledged: .*TIMEOUT/i.test(err.message),
      );
      assert.ok(Date.now() - started < 10_000, 'the stall is detected within the chunk timeout');
      await stagingIsEmpty();
    } finally {
      server.resume();
      await server.stop();
    }
  });
});
