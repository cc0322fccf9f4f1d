import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cli } from './helpers/cli.js';

/**
 * A server that speaks just enough of the PostgreSQL protocol to ask for a cleartext password and
 * record what it is sent: the way a hostile server a job names would collect one.
 */
async function passwordCollector(): Promise<{ port: number; received: string[]; close: () => Promise<void> }> {
  const received: string[] = [];
  const server = net.createServer((socket) => {
    let startup = true;
    socket.on('data', (data) => {
      if (startup) {
        // SSLRequest (8 bytes, code 80877103): answer "no TLS"; then the startup message.
        if (data.length === 8 && data.readInt32BE(4) === 80877103) return void socket.write('N');
        if (data.length === 8 && data.readInt32BE(4) === 80877104) return void socket.write('N');
        startup = false;
        const ask = Buffer.alloc(9);
        ask.write('R', 0);
        ask.writeInt32BE(8, 1);
        ask.writeInt32BE(3, 5); // AuthenticationCleartextPassword
        return void socket.write(ask);
      }
      if (data[0] === 'p'.charCodeAt(0)) received.push(data.subarray(5).toString('utf8').replace(/\0$/, ''));
      socket.destroy();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('PostgreSQL credentials', () => {
  it("never sends a password from the worker's ~/.pgpass or pg_service.conf to a server a job names", async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'snapworker-pghome-'));
    const collector = await passwordCollector();
    try {
      await writeFile(path.join(home, '.pgpass'), '*:*:*:*:leaked-pgpass-secret\n', { mode: 0o600 });
      await writeFile(path.join(home, '.pg_service.conf'), '[x]\npassword=leaked-service-secret\n', { mode: 0o600 });
      const env = { HOME: home, SNAPWORKER_POSTGRES_PROFILES: '{"plain":{"user":"postgres"}}' };
      for (const uri of [`postgres://127.0.0.1:${collector.port}/anydb?profile=plain`, `postgres://127.0.0.1:${collector.port}/anydb`]) {
        const run = await cli(['snapshot', uri, '--repo', `file://${home}/repo`, '--local'], env);
        assert.notEqual(run.code, 0, run.stderr);
        assert.doesNotMatch(run.stderr, /leaked/);
      }
      assert.deepEqual(collector.received, [], 'no password was sent');
    } finally {
      await collector.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});
