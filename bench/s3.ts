/**
 * S3 driver throughput and memory against s3rver running as a separate process (so its own memory
 * and CPU are not counted as the driver's):
 *
 *   node --import tsx bench/s3.ts [sizeMiB=512] [partSizeMiB=16] [queueSize=4]
 *
 * Uploads a stream of the given size of incompressible bytes with `S3Driver.put`, downloads it
 * with `S3Driver.get` (parallel ranged GETs), checks the SHA-256 of what came back, and prints MiB/s
 * of each phase with the peak RSS of this process during it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { S3Driver } from '../shared/storage/s3/s3-driver.js';

const MiB = 1024 * 1024;
process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

export interface S3rverProcess {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  /** Kills s3rver and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver as a child process on a free port with one bucket, in a fresh temp directory,
 * so that its memory and CPU are not counted as the measured process's. Also used by
 * `bench/s3-vs-rclone.ts`.
 */
export async function startS3rverProcess(bucket: string): Promise<S3rverProcess> {
  const directory = await mkdtemp(join(tmpdir(), 'snapworker-bench-s3-'));
  const port = await freePort();
  const s3rverBin = fileURLToPath(new URL('../node_modules/s3rver/bin/s3rver.js', import.meta.url));
  // s3rver 3.7.1 makes list continuation tokens with single DES, which OpenSSL 3 keeps in its
  // legacy provider: without it every listing of more than 1,000 keys fails with a 500.
  const server = spawn(process.execPath, ['--openssl-legacy-provider', s3rverBin, '-d', directory, '-a', '127.0.0.1', '-p', String(port), '--silent', '--configure-bucket', bucket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((done) => server.once('exit', () => done()));
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill();
    await exited;
    await rm(directory, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((done, fail) => {
      server.once('exit', (code) => fail(new Error(`s3rver exited with ${code}`)));
      server.stdout!.on('data', (text: Buffer) => text.toString().includes('listening') && done());
      setTimeout(done, 3000); // --silent may print nothing
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: `http://127.0.0.1:${port}`, bucket, stop };
}

/** `size` bytes of random-looking data from a 8 MiB random block, streamed, never all in memory. */
function incompressible(total: number): Readable {
  const block = randomBytes(8 * MiB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(1 * MiB, total - sent);
      const offset = sent % block.length;
      const chunk = Buffer.from(block.subarray(offset, Math.min(offset + n, block.length)));
      chunk.writeUInt32LE(sent >>> 0, 0); // no two chunks alike
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/** Samples RSS while `work` runs; returns its result, seconds taken and peak RSS in MiB. */
async function measure<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number; peakRssMiB: number }> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const started = process.hrtime.bigint();
  try {
    const result = await work();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { result, seconds, peakRssMiB: Math.round(Math.max(peak, process.memoryUsage().rss) / MiB) };
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  const [sizeMiB = 512, partSizeMiB = 16, queueSize = 4] = process.argv.slice(2).map(Number);
  const size = sizeMiB * MiB;
  const server = await startS3rverProcess('bench');
  try {
    const driver = new S3Driver({
      bucket: server.bucket,
      prefix: 'bench',
      endpoint: server.endpoint,
      forcePathStyle: true,
      checksumMode: 'WHEN_REQUIRED',
      partSize: partSizeMiB * MiB,
      queueSize,
    });
    const baseline = Math.round(process.memoryUsage().rss / MiB);
    const upload = await measure(() => driver.put('big.bin', incompressible(size)));
    const download = await measure(async () => {
      const hash = createHash('sha256');
      for await (const chunk of await driver.get('big.bin')) hash.update(chunk as Buffer);
      return hash.digest('hex');
    });
    if (download.result !== upload.result.sha256) throw new Error('downloaded bytes differ from uploaded bytes');
    const rate = (seconds: number) => (sizeMiB / seconds).toFixed(1);
    console.log(
      JSON.stringify(
        {
          sizeMiB,
          partSizeMiB,
          queueSize,
          parts: upload.result.parts?.length ?? 1,
          baselineRssMiB: baseline,
          upload: { seconds: +upload.seconds.toFixed(2), mibPerSecond: +rate(upload.seconds), peakRssMiB: upload.peakRssMiB },
          download: { seconds: +download.seconds.toFixed(2), mibPerSecond: +rate(download.seconds), peakRssMiB: download.peakRssMiB },
          verified: true,
        },
        null,
        2,
      ),
    );
    await driver.delete('big.bin');
    await driver.close();
  } finally {
    await server.stop();
  }
}

// Run only as a script; `bench/s3-vs-rclone.ts` imports the s3rver helper from here.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
