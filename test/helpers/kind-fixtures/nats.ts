import { createHash, randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import type { KindFixture } from './kind-fixture.js';

const SERVER = '127.0.0.1:4222';

let connection: Promise<{ nc: NatsConnection; jsm: JetStreamManager }> | undefined;
function manager(): Promise<JetStreamManager> {
  connection ??= connect({ servers: SERVER }).then(async (nc) => ({ nc, jsm: await jetstreamManager(nc) }));
  return connection.then((c) => c.jsm);
}

const streamOf = (uri: string) => new URL(uri).pathname.slice(1);

/** A file stream on the shared NATS server with messages on two subjects and a durable consumer. */
export const natsFixture: KindFixture = {
  kind: 'nats',
  env: { SNAPWORKER_NATS_ALLOWED_SERVERS: SERVER },
  async skip() {
    return manager().then(
      () => false,
      (err: Error) => `no NATS server at ${SERVER}: ${err.message}`,
    );
  },
  async createSource() {
    const jsm = await manager();
    const stream = `KINDS_${randomBytes(4).toString('hex').toUpperCase()}`;
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    const { nc } = await connection!;
    const js = jsm.jetstream();
    for (let i = 0; i < 40; i++) await js.publish(`${stream}.${i % 2 ? 'a' : 'b'}`, new TextEncoder().encode(`message ${i}`));
    await jsm.consumers.add(stream, { durable_name: 'reader' });
    await nc.flush();
    return [`nats://${SERVER}/${stream}`];
  },
  // A stream keeps its name on restore (the server cannot rename one): the source makes way.
  async freshTarget(_root, source) {
    await (await manager()).streams.delete(streamOf(source[0]!));
    return source;
  },
  async readContent([uri]) {
    const jsm = await manager();
    const stream = streamOf(uri!);
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (info === undefined) return undefined;
    const hash = createHash('sha256');
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(stream, { seq });
      hash.update(`${message!.seq} ${message!.subject}\n`).update(message!.data);
    }
    const consumers = [];
    for await (const consumer of jsm.consumers.list(stream)) consumers.push(consumer.name);
    return { subjects: info.config.subjects, messages: info.state.messages, digest: hash.digest('hex'), consumers: consumers.sort() };
  },
  async cleanup([uri]) {
    await (await manager()).streams.delete(streamOf(uri!)).catch(() => undefined);
  },
  async close() {
    const opened = connection;
    connection = undefined;
    if (opened) await (await opened).nc.close();
  },
};
