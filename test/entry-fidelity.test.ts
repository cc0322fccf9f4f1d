import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { EntryHeader, SourceEntry } from '../shared/snapshot/entry.js';
import { parsePaxTime, readArchive } from '../shared/formats/archive/archive-reader.js';
import { writeArchive } from '../shared/formats/archive/archive-writer.js';
import { encodeSumLines, formatSumLine, SumsParser } from '../shared/formats/archive/sha256sums.js';
import { encodeTarHeader, paxTime } from '../shared/formats/archive/tar-encoder.js';
import { UnsafePathError } from '../shared/errors.js';
import { decodeName, encodeName, showName } from '../shared/fsutil/byte-name.js';
import { dirUri } from '../shared/kinds/dir/dir-uri.js';
import { nullProgress } from '../shared/progress.js';
import { createDirSourceFactory } from '../shared/kinds/dir/dir-source.js';
import { nullNotices, type EntryNotice } from '../shared/kinds/notices.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { asAsync, craftArchive, testManifest } from './helpers/archive-fixtures.js';
import { bytesPath } from './helpers/torture-tree.js';
import { cli as runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';

const cli = (args: string[], wrap: string[] = []) => runCli(args, { LOG_LEVEL: 'warn' }, PROJECT_ROOT, wrap);

const context: EndpointContext = { checkPath() {}, stagingDir: os.tmpdir() };
const signal = () => new AbortController().signal;

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'snapworker-fidelity-'));
});
after(() => {
  // GNU rm: the PATH_MAX test leaves a tree deeper than fs.rm can reach by absolute paths.
  spawnSync('rm', ['-rf', scratch]);
});


/** Writes `entries` into an archive and reads it back; the headers as read. */
async function roundTrip(entries: Iterable<SourceEntry> | AsyncIterable<SourceEntry>): Promise<EntryHeader[]> {
  const iterable = Symbol.asyncIterator in entries ? entries : asAsync(entries);
  const { stream, done } = writeArchive({ manifest: testManifest(), entries: iterable, signal: signal(), progress: nullProgress, threads: 0 });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  await done;
  const headers: EntryHeader[] = [];
  await readArchive(Readable.from([Buffer.concat(chunks)]), {
    signal: signal(),
    onEntry: async (header, body) => {
      headers.push(header);
      if (body) for await (const _ of body);
    },
  });
  return headers;
}

describe('names are bytes', () => {
  it('maps every byte string to a string and back unchanged (surrogateescape)', () => {
    const samples = [
      Buffer.from('plain.txt'),
      Buffer.from('café 日本 😀'),
      Buffer.from('caf\xe9.txt', 'latin1'),
      Buffer.from([0xff, 0xfe, 0x80, 0x2f, 0xc3]),
      Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate: invalid UTF-8
      Buffer.from([0xef, 0xbf, 0xbd]), // U+FFFD itself
      Buffer.from([0xf0, 0x9f, 0x92, 0x80, 0xdc]), // 💀 (its UTF-16 low half is U+DC80) then a stray byte
      Buffer.from([0xc0, 0xaf, 0xf5, 0x80]), // overlong and out-of-range sequences
    ];
    for (let byte = 0; byte < 256; byte++) samples.push(Buffer.from([0x61, byte, 0x62]));
    for (const bytes of samples) assert.deepEqual(encodeName(decodeName(bytes)), bytes, bytes.toString('hex'));
    assert.equal(decodeName(Buffer.from('café')), 'café', 'UTF-8 names stay plain strings');
  });

  it('shows names escaped on one line and long ones shortened', () => {
    assert.equal(showName('data/plain.txt'), 'data/plain.txt');
    assert.equal(showName(decodeName(Buffer.from('data/caf\xe9\nx', 'latin1'))), '"data/caf\\xe9\\nx"');
    const long = `data/${'a'.repeat(9000)}/end`;
    const shown = showName(long);
    assert.ok(shown.length < 200, shown);
    assert.match(shown, /^"data\/a+…a+\/end" \(9009 bytes\)$/);
  });

  it('writes SHA256SUMS lines as coreutils does and parses them back', () => {
    const hex = 'a'.repeat(64);
    const names = ['data/plain', 'data/back\\slash', 'data/new\nline', 'data/cr\rx', decodeName(Buffer.from('data/caf\xe9', 'latin1'))];
    const lines = names.map((name) => formatSumLine(hex, name));
    assert.equal(formatSumLine(hex, 'data/back\\slash'), `\\${hex}  data/back\\\\slash\n`);
    assert.equal(formatSumLine(hex, 'data/new\nline'), `\\${hex}  data/new\\nline\n`);
    const parsed: string[] = [];
    const parser = new SumsParser((_hex, name) => parsed.push(name));
    const bytes = encodeSumLines(lines);
    assert.ok(bytes.includes(Buffer.from('data/caf\xe9\n', 'latin1')), 'raw bytes, as sha256sum writes them');
    for (let i = 0; i < bytes.length; i += 7) parser.push(bytes.subarray(i, i + 7));
    parser.end();
    assert.deepEqual(parsed, names);
  });

  it('keeps include and exclude globs working on trees with such names', async () => {
    const root = path.join(scratch, 'globs');
    mkdirSync(bytesPath(root, Buffer.from('d\xff', 'latin1')), { recursive: true });
    writeFileSync(bytesPath(root, Buffer.from('d\xff', 'latin1'), Buffer.from('caf\xe9.txt', 'latin1')), 'x');
    writeFileSync(bytesPath(root, Buffer.from('d\xff', 'latin1'), 'new\nline.log'), 'x');
    writeFileSync(bytesPath(root, 'other.txt'), 'x');
    const source = createDirSourceFactory()([dirUri(root)], { include: ['d*/**'], exclude: ['**/*.log'] }, context);
    const paths: string[] = [];
    for await (const entry of source.entries({ signal: signal(), progress: nullProgress, notices: nullNotices })) paths.push(entry.path);
    assert.deepEqual(paths.map((p) => encodeName(p).toString('latin1')), ['data/d\xff', 'data/d\xff/caf\xe9.txt']);
  });
});

describe('timestamps', () => {
  it('reads and writes pax times exactly, negative ones as GNU tar does', () => {
    assert.equal(paxTime(-1_500_000_000n), '-1.500000000');
    assert.equal(paxTime(1_795_961_425_919_000_000n), '1795961425.919000000');
    assert.equal(parsePaxTime('-305164799.5'), -305_164_799_500_000_000n);
    assert.equal(parsePaxTime('1795961425.919'), 1_795_961_425_919_000_000n);
    assert.equal(parsePaxTime('12.1234567891'), 12_123_456_789n);
    assert.equal(parsePaxTime('1e5'), undefined);
  });

  it('round-trips nanosecond times before 1970, after 2038 and beyond ustar, and whole seconds without a pax header', async () => {
    const iso = (text: string): bigint => BigInt(Date.parse(text)) * 1_000_000n;
    const times = [iso('1960-05-01T00:00:00Z'), -1_500_000_000n, iso('2040-01-01T00:00:00Z'), iso('2100-06-01T00:00:00.250Z'), 1_795_961_425_919_000_000n, 9_000_000_000_000_000_001n];
    const entries: SourceEntry[] = times.map((mtimeNs, i) => ({ path: `data/t${i}`, type: 'directory', mode: 0o755, mtime: new Date(0), mtimeNs, size: 0 }));
    const headers = await roundTrip(entries);
    assert.deepEqual(headers.map((h) => h.mtimeNs), times);
    assert.equal(headers[3]!.mtime.toISOString(), '2100-06-01T00:00:00.250Z');
    const header = (mtimeNs: bigint) => encodeTarHeader({ name: 'data/a', type: 'file', mode: 0o644, mtimeNs, size: 1 });
    assert.equal(header(1_700_000_000_000_000_000n).length, 512, 'a whole second fits ustar');
    assert.equal(header(1_700_000_000_000_000_001n).length, 1536, 'nanoseconds need a pax header');
    assert.equal(header(-1_000_000_000n).length, 1536, 'so do times before 1970');
  });
});

describe('files that vanish while the snapshot runs', () => {
  /** Snapshots `root` with big files streamed, deleting `victims` just before the writer opens them. */
  async function snapshotDeleting(root: string, victims: string[]): Promise<{ headers: EntryHeader[] | Error; notices: EntryNotice[] }> {
    const notices: EntryNotice[] = [];
    const source = createDirSourceFactory({ smallFileBytes: 1 })([dirUri(root)], {}, context);
    async function* deleting(): AsyncGenerator<SourceEntry> {
      for await (const entry of source.entries({ signal: signal(), progress: nullProgress, notices: { add: (n) => notices.push(n) } })) {
        if (victims.includes(entry.path)) unlinkSync(path.join(root, entry.path.slice('data/'.length)));
        yield entry;
      }
    }
    const headers = await roundTrip(deleting()).catch((err: Error) => err);
    return { headers, notices };
  }

  it('leaves out a big file deleted before it was read, and reports it as vanished', async () => {
    const root = path.join(scratch, 'rotating');
    mkdirSync(root);
    writeFileSync(path.join(root, 'app.log'), 'x'.repeat(5000));
    writeFileSync(path.join(root, 'keep.txt'), 'keep');
    const { headers, notices } = await snapshotDeleting(root, ['data/app.log']);
    assert.ok(Array.isArray(headers), String(headers));
    assert.deepEqual(headers.map((h) => h.path), ['data/keep.txt']);
    assert.deepEqual(notices, [{ kind: 'vanished', path: 'data/app.log', reason: 'removed while the snapshot ran' }]);
  });

  it('stores a hard-linked file under its next name when the first name vanished before it was read', async () => {
    const root = path.join(scratch, 'linked');
    mkdirSync(root);
    writeFileSync(path.join(root, 'a'), 'x'.repeat(5000));
    linkSync(path.join(root, 'a'), path.join(root, 'b'));
    linkSync(path.join(root, 'a'), path.join(root, 'c'));
    const { headers, notices } = await snapshotDeleting(root, ['data/a']);
    assert.ok(Array.isArray(headers), String(headers));
    assert.deepEqual(
      headers.map((h) => [h.path, h.type, h.size, h.linkTarget]),
      [
        ['data/b', 'file', 5000, undefined],
        ['data/c', 'hardlink', 0, 'data/b'],
      ],
    );
    assert.deepEqual(notices.map((n) => [n.kind, n.path]), [['vanished', 'data/a']]);
  });
});

describe('special entries and limits', () => {
  it('round-trips device numbers up to 12-bit majors and 20-bit minors', async () => {
    const headers = await roundTrip([{ path: 'data/dev', type: 'blockdev', mode: 0o600, mtime: new Date(0), size: 0, devMajor: 4095, devMinor: 1_048_575 }]);
    assert.deepEqual([headers[0]!.type, headers[0]!.devMajor, headers[0]!.devMinor], ['blockdev', 4095, 1_048_575]);
  });

  it('names a path over PATH_MAX in one short line', async () => {
    await assert.rejects(
      craftArchive([{ name: `data/${'x/'.repeat(2600)}f`, data: 'x' }]).then((bytes) => readArchive(Readable.from([bytes]), { signal: signal() })),
      (err: unknown) => {
        assert.ok(err instanceof UnsafePathError);
        assert.match(err.message, /path longer than 4096 bytes/);
        assert.ok(err.message.length < 300, err.message);
        return true;
      },
    );
    const root = path.join(scratch, 'deep');
    mkdirSync(root);
    // Built with relative paths, as an application can; no absolute path to it fits PATH_MAX.
    const made = spawnSync('bash', ['-c', `cd '${root}' && for i in $(seq 25); do mkdir ${'d'.repeat(200)} && cd ${'d'.repeat(200)}; done && touch f`]);
    assert.equal(made.status, 0, made.stderr.toString());
    const snap = await cli(['snapshot', `dir://${root}`, '--repo', `file://${path.join(scratch, 'deep-repo')}`, '--local']);
    assert.notEqual(snap.code, 0);
    const lines = snap.stderr.trim().split('\n');
    assert.ok(lines.every((line) => line.length < 400), `long line: ${lines.find((line) => line.length >= 400)?.length} chars`);
    assert.match(snap.stderr, /ENAMETOOLONG/);
  });

  it('fails a restore of a device without CAP_MKNOD naming the entry and the capability; FIFOs need none', async () => {
    const root = path.join(scratch, 'devices');
    mkdirSync(root);
    spawnSync('mkfifo', [path.join(root, 'pipe')]);
    const repo = `file://${path.join(scratch, 'dev-repo')}`;
    const fifoOnly = JSON.parse((await cli(['snapshot', `dir://${root}`, '--repo', repo, '--local', '--json'])).stdout) as { id: string };
    const restoredFifo = await cli(['restore', fifoOnly.id, `dir://${path.join(scratch, 'fifo-restored')}`, '--repo', repo, '--local'], ['capsh', '--drop=cap_mknod', '--', '-c']);
    assert.equal(restoredFifo.code, 0, restoredFifo.stderr);
    assert.ok(lstatSync(path.join(scratch, 'fifo-restored', 'pipe')).isFIFO());
    if (process.getuid?.() !== 0) return; // creating the device for the snapshot needs root too
    spawnSync('mknod', [path.join(root, 'null-copy'), 'c', '1', '3']);
    const withDevice = JSON.parse((await cli(['snapshot', `dir://${root}`, '--repo', repo, '--local', '--json'])).stdout) as { id: string };
    const target = path.join(scratch, 'dev-restored');
    const refused = await cli(['restore', withDevice.id, `dir://${target}`, '--repo', repo, '--local'], ['capsh', '--drop=cap_mknod', '--', '-c']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /entry data\/null-copy is a character device \(1:3\); creating it needs the CAP_MKNOD capability, which this process lacks: run the worker \(or the --local command\) as root$/m);
    assert.deepEqual(readdirSync(scratch).filter((name) => name.includes('dev-restored')), [], 'nothing left behind');
  });
});
