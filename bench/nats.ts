/**
 * Snapshot and restore throughput of a NATS JetStream stream of several hundred MB, through the
 * same source and target the worker uses, against a private nats-server (own port, own store).
 *
 *   node --import tsx bench/nats.ts [MiB=400] [payloadKiB=16] [chunkKiB=defaults]
 *
 * Payloads are half fresh random bytes, half repeated text, so the snapshot (s2-compressed by
 * the server) is about half the stream's size.
 * Prints one JSON line per phase and a summary.
 */
import { manifestFor } from '../test/helpers/archive-fixtures.js';
import { nullNotices } from '../shared/kinds/notices.js';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageType, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, type Manifest } from '../shared/formats/archive/manifest.js';
import { nullProgress } from '../shared/progress.js';
import { natsSourceFactory } from '../shared/kinds/nats/nats-source.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { natsTargetFactory } from '../shared/kinds/nats/nats-target.js';
import { startNatsServer } from '../test/helpers/nats-server.js';

const MIB = 1024 * 1024;
const totalMiB = Number(process.argv[2] ?? 400);
const payloadKiB = Number(process.argv[3] ?? 16);
const chunkSize = process.argv[4] === undefined ? undefined : Number(process.argv[4]) * 1024;
const STREAM = 'BENCH';

function rate(bytes: number, ms: number): string {
  return `${((bytes / MIB) / (ms / 1000)).toFixed(1)} MiB/s`;
}

const server = await startNatsServer();
const stagingDir = await mkdtemp(join(tmpdir(), 'snapworker-nats-bench-'));
const context: EndpointContext = { checkPath() {}, stagingDir };
try {
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['bench.>'], storage: StorageType.File, max_msg_size: -1 });
  const payloadBytes = payloadKiB * 1024;
  const count = Math.ceil((totalMiB * MIB) / payloadBytes);
  const text = Buffer.alloc(payloadBytes / 2, 'snapworker benchmark payload ');
  let started = Date.now();
  for (let i = 0; i < count; i++) {
    const payload = Buffer.concat([randomBytes(payloadBytes / 2), text]);
    nc.publish(`bench.${i % 8}`, payload);
    if (i % 1_000 === 999) await nc.flush();
  }
  await nc.flush();
  while ((await jsm.streams.info(STREAM)).state.messages < count) await new Promise((r) => setTimeout(r, 100));
  const before = (await jsm.streams.info(STREAM)).state;
  console.log(JSON.stringify({ phase: 'publish', messages: before.messages, bytes: before.bytes, ms: Date.now() - started }));

  // Snapshot: server → staged stream.tar.s2 (entries() stages it, then yields); each entry is then
  // copied into a restore session, as the restore pipeline would from the archive.
  const source = natsSourceFactory({ chunkSize })([new URL(`${server.url}/${STREAM}`)], {}, context);
  started = Date.now();
  let snapshotMs = 0;
  const target = natsTargetFactory({ chunkSize })([new URL(`${server.url}/${STREAM}`)], {}, context);
  const manifest: Manifest = manifestFor(source);
  const session = await target.begin(manifest, { signal: new AbortController().signal, progress: nullProgress, replace: true });
  let snapshotBytes = 0;
  let copyMs = 0;
  for await (const entry of source.entries({ signal: new AbortController().signal, progress: nullProgress, notices: nullNotices })) {
    if (snapshotMs === 0) snapshotMs = Date.now() - started;
    const copyStarted = Date.now();
    const { open, ...header } = entry;
    await session.write(header, await open!());
    copyMs += Date.now() - copyStarted;
    if (entry.path === 'stream.tar.s2') snapshotBytes = entry.size;
  }
  console.log(JSON.stringify({ phase: 'snapshot', snapshotBytes, ms: snapshotMs, rate: rate(snapshotBytes, snapshotMs), streamRate: rate(before.bytes, snapshotMs) }));
  console.log(JSON.stringify({ phase: 'stage-for-restore', ms: copyMs }));

  // Restore: replace deletes the stream, then uploads and waits for the server's rebuild.
  started = Date.now();
  await session.commit();
  const restoreMs = Date.now() - started;
  const after = (await jsm.streams.info(STREAM)).state;
  console.log(JSON.stringify({ phase: 'restore', ms: restoreMs, rate: rate(snapshotBytes, restoreMs), streamRate: rate(before.bytes, restoreMs), messages: after.messages }));
  if (after.messages !== before.messages || after.bytes !== before.bytes) throw new Error('restored stream differs');
  console.log(
    `stream ${(before.bytes / MIB).toFixed(0)} MiB, ${before.messages} msgs, snapshot ${(snapshotBytes / MIB).toFixed(0)} MiB: ` +
      `snapshot ${rate(before.bytes, snapshotMs)} (stream bytes) in ${(snapshotMs / 1000).toFixed(1)} s, ` +
      `restore ${rate(before.bytes, restoreMs)} in ${(restoreMs / 1000).toFixed(1)} s`,
  );
  await nc.close();
} finally {
  await server.stop();
  await rm(stagingDir, { recursive: true, force: true });
}
