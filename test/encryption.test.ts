/**
 * Encryption at rest (docs/encryption.md): the AEAD blob cipher, age streams that stock `age`
 * reads and writes, encrypted snapshots of both formats through fs and s3rver that leak no file
 * name or content to whoever reads the repository and refuse a flipped byte, and the key envelope with its three kinds of key
 * sources (env, file, KMS through a local double of its API): add, remove, rotate, wrong key,
 * a flipped byte, crypto-shredding.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { AeadBlobCipher } from '../shared/crypto/aead-cipher.js';
import { AgeDecryptStream, AgeEncryptStream } from '../shared/crypto/age-stream.js';
import { parseKeySource, type KeySource } from '../shared/crypto/key-source.js';
import { repositoryCipher } from '../shared/crypto/repository-cipher.js';
import { openRecordNotices } from '../shared/crypto/sealed-notices.js';
import { addRepositoryKey, listRepositoryKeys, removeRepositoryKey, requireUnlocked } from '../shared/crypto/repository-keys.js';
import { loadConfig } from '../shared/config.js';
import { IntegrityError, InvalidInputError } from '../shared/errors.js';
import { newSnapshotId } from '../shared/ids.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { restoreSnapshot, verifySnapshot } from '../shared/pipeline/restore-snapshot.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { S3Driver } from '../shared/storage/s3/s3-driver.js';
import type { StorageDriver } from '../shared/storage/storage-driver.js';
import { startKmsDouble, type KmsDouble } from './helpers/kms-double.js';
import { cli } from './helpers/cli.js';
import { createLogger } from '../shared/logging.js';
import { runCatalogCommand } from '../worker/commands/catalog-commands.js';
import { runKeyCommand } from '../worker/commands/key-commands.js';
import type { CliOptions } from '../worker/commands/flags.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { newChunkedStoreConfig } from '../shared/formats/chunked/store/store-config.js';
import { listEntries } from '../shared/formats/list-entries.js';
import { checkStore } from '../shared/formats/chunked/store/check-store.js';

const signal = new AbortController().signal;
const KNOWN_NAME = 'quarterly-payroll-7f3a.csv';
const KNOWN_CONTENT = 'salary of Jane Q. Public: 123456';

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) found.push(path.join(entry.parentPath, entry.name));
  return found;
}

/** Every byte stored under `dir`, searched for `needle` (as a whole-repository `grep -r` would). */
async function storedContains(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await filesUnder(dir)) if ((await readFile(file)).includes(needle) || file.includes(needle)) hits.push(file);
  return hits;
}

describe('AEAD blob cipher', () => {
  const cipher = new AeadBlobCipher('0123456789abcdef', randomBytes(32), randomBytes(32));
  const aad = Buffer.from('blob 1');

  it('opens what it sealed, and the sealed bytes do not contain the plaintext', () => {
    const plaintext = Buffer.from(KNOWN_CONTENT);
    const sealed = cipher.seal(plaintext, aad);
    assert.ok(!sealed.includes(plaintext));
    assert.deepEqual(cipher.open(sealed, aad), plaintext);
  });

  it('refuses a sealed blob under another aad, with a byte flipped, or under another key', () => {
    const sealed = cipher.seal(Buffer.from('payload'), aad);
    assert.throws(() => cipher.open(sealed, Buffer.from('blob 2')), IntegrityError);
    for (const at of [0, 14, sealed.length - 1]) {
      const flipped = Buffer.from(sealed);
      flipped[at]! ^= 0x01;
      assert.throws(() => cipher.open(flipped, aad), IntegrityError);
    }
    const other = new AeadBlobCipher('fedcba9876543210', randomBytes(32), randomBytes(32));
    assert.throws(() => other.open(sealed, aad), IntegrityError);
    assert.throws(() => cipher.open(sealed.subarray(0, 10), aad), /too short/);
  });

  it('names blobs with an id keyed per repository: equal content, equal id here, another id elsewhere', () => {
    const other = new AeadBlobCipher('fedcba9876543210', randomBytes(32), randomBytes(32));
    const content = Buffer.from('same chunk');
    assert.match(cipher.blobId(content), /^[0-9a-f]{64}$/);
    assert.equal(cipher.blobId(content), cipher.blobId(Buffer.from('same chunk')));
    assert.notEqual(cipher.blobId(content), other.blobId(content));
  });
});

describe('age streams', () => {
  let dir: string;
  let identity: string;
  let recipient: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'snapworker-age-'));
    identity = await generateX25519Identity();
    recipient = await identityToRecipient(identity);
    await writeFile(path.join(dir, 'key.txt'), identity + '\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const encryptFile = (from: string, to: string) => pipeline(createReadStream(from), new AgeEncryptStream(recipient, identity), createWriteStream(to));
  const decryptFile = (from: string, to: string, id = identity) => pipeline(createReadStream(from), new AgeDecryptStream(id, 'test file'), createWriteStream(to));

  it('writes files stock age decrypts, and reads files stock age encrypted, at chunk boundaries', async () => {
    for (const size of [0, 1, 65536, 65537, 3 * 65536, 200_001]) {
      const plain = path.join(dir, `plain-${size}`);
      await writeFile(plain, randomBytes(size));
      await encryptFile(plain, `${plain}.age`);
      execFileSync('sh', ['-c', `age -d -i key.txt plain-${size}.age | cmp - plain-${size}`], { cwd: dir });
      execFileSync('age', ['-e', '-r', recipient, '-o', `stock-${size}.age`, `plain-${size}`], { cwd: dir });
      await decryptFile(path.join(dir, `stock-${size}.age`), `${plain}.back`);
      assert.deepEqual(await readFile(`${plain}.back`), await readFile(plain), `size ${size}`);
    }
  });

  // A Writable sees every buffer pushed (an async iterator would read them joined).
  const collect = (into: Buffer[]) => new Writable({ write: (chunk: Buffer, _encoding, done) => (into.push(chunk), done()) });

  it('encrypting passes on one buffer per buffer given, decrypting one per chunk, whatever the sizes read', async () => {
    const plain = randomBytes(3 * (1 << 20) + 21);
    const pieces = [plain.subarray(0, (1 << 20) + 7), plain.subarray((1 << 20) + 7, 2 * (1 << 20) + 14), plain.subarray(2 * (1 << 20) + 14)];
    const sealed: Buffer[] = [];
    await pipeline(Readable.from(pieces), new AgeEncryptStream(recipient, identity), collect(sealed));
    assert.ok(sealed.length <= pieces.length + 2, `${sealed.length} buffers out of ${pieces.length} in (header, one each, the last chunk)`);
    await writeFile(path.join(dir, 'pieces.age'), Buffer.concat(sealed));
    execFileSync('sh', ['-c', 'age -d -i key.txt pieces.age > pieces.out'], { cwd: dir });
    assert.deepEqual(await readFile(path.join(dir, 'pieces.out')), plain);
    const all = Buffer.concat(sealed);
    const stored = [all.subarray(0, 1_000_003), all.subarray(1_000_003, 2_500_000), all.subarray(2_500_000)];
    const opened: Buffer[] = [];
    await pipeline(Readable.from(stored), new AgeDecryptStream(identity, 'pieces'), collect(opened));
    // Decrypting passes on each 64 KiB chunk whole once its tag verified: never split at the pieces read.
    assert.deepEqual(opened.slice(0, -1).map((b) => b.length), new Array(Math.floor(plain.length / 65536)).fill(65536));
    assert.deepEqual(Buffer.concat(opened), plain);
  });

  it('refuses a flipped byte, a truncated file and a file for another identity, naming the file', async () => {
    const plain = path.join(dir, 'plain-200001');
    const sealed = await readFile(`${plain}.age`);
    const flipped = Buffer.from(sealed);
    flipped[sealed.length - 70_000]! ^= 0x80;
    await writeFile(path.join(dir, 'flipped.age'), flipped);
    await assert.rejects(decryptFile(path.join(dir, 'flipped.age'), path.join(dir, 'out')), /test file: age chunk \d+ failed authentication/);
    await writeFile(path.join(dir, 'short.age'), sealed.subarray(0, sealed.length - 65_552));
    await assert.rejects(decryptFile(path.join(dir, 'short.age'), path.join(dir, 'out')), IntegrityError);
    await assert.rejects(decryptFile(`${plain}.age`, path.join(dir, 'out'), await generateX25519Identity()), /encrypted to another key/);
    await writeFile(path.join(dir, 'plain.age'), 'not age at all');
    await assert.rejects(decryptFile(path.join(dir, 'plain.age'), path.join(dir, 'out')), /not an age file/);
  });
});

type Format = 'archive' | 'chunked';

/** An encrypted repository with a small source tree, snapshotted once; shared by the fs and s3rver cases. */
async function encryptedRoundTrip(root: string, driver: () => StorageDriver, sources: KeySource[], repoDir: string | undefined, format: Format = 'archive') {
  const context: EndpointContext = { checkPath: () => {}, stagingDir: root };
  const site = path.join(root, 'site');
  await mkdir(path.join(site, 'reports'), { recursive: true });
  await writeFile(path.join(site, 'reports', KNOWN_NAME), `${KNOWN_CONTENT}\n`.repeat(50));
  await writeFile(path.join(site, 'noise.bin'), randomBytes(300_000));
  // A socket is named in the record's notices, never stored: its name must not be readable either.
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path.join(site, 'reports', `${KNOWN_NAME}.sock`)]);
  const repository = new Repository('enc', driver(), undefined, sources);
  const config = await repository.init(format === 'chunked' ? { signal, snapshotFormat: 'chunked', chunked: { ...newChunkedStoreConfig({ plain: false }) } } : { signal });
  assert.match(config.encryption?.keyId ?? '', /^[0-9a-f]{16}$/);
  const source = createDirSource([new URL(`dir://${site}`)], { name: 'site' }, context);
  const record = await takeSnapshot({ id: newSnapshotId(), source, repository, labels: { app: 'shop' }, compression: 'zstd', signal, progress: nullProgress });
  assert.equal(record.keyId, config.encryption!.keyId);
  assert.equal(record.format ?? 'archive', format);
  if (format === 'archive') assert.match(record.archive!.key, /\/archive\.tar\.zst\.age$/);
  // Read back through a fresh Repository: nothing cached, unlocked from the key objects.
  const reader = new Repository('enc', driver(), undefined, sources);
  const target = path.join(root, 'restored');
  await restoreSnapshot({ repository: reader, record, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, signal, progress: nullProgress });
  assert.equal(await readFile(path.join(target, 'reports', KNOWN_NAME), 'utf8'), `${KNOWN_CONTENT}\n`.repeat(50));
  assert.deepEqual(await readFile(path.join(target, 'noise.bin')), await readFile(path.join(site, 'noise.bin')));
  if (repoDir) {
    assert.deepEqual(await storedContains(repoDir, KNOWN_NAME), [], 'a file name is readable in the repository');
    assert.deepEqual(await storedContains(repoDir, KNOWN_CONTENT), [], 'file content is readable in the repository');
  }
  return { repository, record, context, site };
}

/**
 * Flips one byte at each of `offsets` (negative: from the end) of the stored `file` in turn:
 * verify must throw an IntegrityError, restore must refuse and leave its target unmade. The file
 * is put back after.
 */
async function assertTamperRefused(file: string, offsets: number[], read: () => Repository, record: SnapshotRecord, root: string, context: EndpointContext): Promise<void> {
  const original = await readFile(file);
  const target = path.join(root, 'tampered');
  try {
    for (const offset of offsets) {
      const at = offset < 0 ? original.length + offset : offset;
      const flipped = Buffer.from(original);
      flipped[at]! ^= 0x01;
      await writeFile(file, flipped);
      await assert.rejects(verifySnapshot({ repository: read(), record, signal, progress: nullProgress }), IntegrityError, `verify, byte ${at} of ${file}`);
      await assert.rejects(
        restoreSnapshot({ repository: read(), record, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, signal, progress: nullProgress }),
        IntegrityError,
        `restore, byte ${at} of ${file}`,
      );
      assert.equal(existsSync(target), false, `restore wrote to its target with byte ${at} of ${file} flipped`);
    }
  } finally {
    await writeFile(file, original);
  }
  await verifySnapshot({ repository: read(), record, signal, progress: nullProgress });
}

/** The chunked objects of a repository stored under `dir`: its packs and pack index objects. */
async function chunkedObjects(dir: string): Promise<{ packs: string[]; indexes: string[] }> {
  const files = await filesUnder(dir);
  // s3rver keeps an object's bytes in `<key>._S3rver_object`.
  const packs = files.filter((f) => /\/packs\/[0-9a-f]{2}\/[0-9a-f]{64}(\._S3rver_object)?$/.test(f));
  const indexes = files.filter((f) => /\/pack-index\/[0-9a-f]{64}(\._S3rver_object)?$/.test(f));
  assert.ok(packs.length > 0 && indexes.length > 0, `no packs or pack index objects under ${dir}`);
  return { packs, indexes };
}

describe('encrypted archive snapshots in a filesystem repository', () => {
  let root: string;
  let repoDir: string;
  let repository: Repository;
  let record: SnapshotRecord;
  let context: EndpointContext;
  const driver = () => new FsDriver({ root: repoDir });
  const envSource = parseKeySource('env:SNAPWORKER_TEST_KEY_A');

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-enc-fs-'));
    repoDir = path.join(root, 'repo');
    process.env.SNAPWORKER_TEST_KEY_A = randomBytes(32).toString('hex');
    ({ repository, record, context } = await encryptedRoundTrip(root, driver, [envSource], repoDir));
  });
  after(async () => {
    delete process.env.SNAPWORKER_TEST_KEY_A;
    delete process.env.SNAPWORKER_TEST_KEY_B;
    await rm(root, { recursive: true, force: true });
  });

  const restoreInto = (repo: Repository, name: string) =>
    restoreSnapshot({ repository: repo, record, target: createDirTarget([new URL(`dir://${path.join(root, name)}`)], {}, context), replace: false, signal, progress: nullProgress });

  it('is read by stock age, zstd, tar and sha256sum with the exported identity', async () => {
    const key = await requireUnlocked(repository);
    await writeFile(path.join(root, 'key.txt'), `${key.ageIdentity}\n`);
    const out = path.join(root, 'stock');
    await mkdir(out);
    const archive = path.join(repoDir, record.archive!.key);
    const printed = execFileSync('sh', ['-c', `age -d -i ../key.txt '${archive}' | zstd -d | tar -x && sha256sum -c SHA256SUMS`], { cwd: out, encoding: 'utf8' });
    assert.match(printed, new RegExp(`data/reports/${KNOWN_NAME}: OK`));
  });

  it('keeps in the record only what listing needs, and the key id', async () => {
    const stored = JSON.parse(await readFile(path.join(repoDir, 'snapshots', record.id, 'snapshot.json'), 'utf8')) as SnapshotRecord;
    assert.equal(stored.keyId, record.keyId);
    assert.deepEqual(stored.labels, { app: 'shop' });
    // The notices name the socket in the job's result; the stored record holds the names sealed, opened again with the key.
    assert.deepEqual(record.notices?.first.map((n) => n.path), [`data/reports/${KNOWN_NAME}.sock`]);
    assert.deepEqual(stored.notices?.first, []);
    assert.ok(stored.notices?.sealed);
    assert.deepEqual((await openRecordNotices(new Repository('enc', driver(), undefined, [envSource]), stored)).notices, record.notices);
    const config = JSON.parse(await readFile(path.join(repoDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.encryption, { keyId: record.keyId });
  });

  it('refuses a wrong key and a missing key in one line, writing nothing to the target', async () => {
    process.env.SNAPWORKER_TEST_KEY_B = randomBytes(32).toString('hex');
    const wrong = new Repository('enc', driver(), undefined, [parseKeySource('env:SNAPWORKER_TEST_KEY_B')]);
    await assert.rejects(restoreInto(wrong, 'wrong'), (err: Error) => {
      assert.ok(err instanceof InvalidInputError);
      assert.equal(err.message, 'repository enc: none of its 1 keys opens with the configured key sources (env:SNAPWORKER_TEST_KEY_B): wrong key, or its key object was removed');
      return true;
    });
    const missing = new Repository('enc', driver());
    await assert.rejects(restoreInto(missing, 'missing'), /repository enc is encrypted \(key [0-9a-f]{16}\); no key source is configured for it/);
    assert.equal(existsSync(path.join(root, 'wrong')), false);
    assert.equal(existsSync(path.join(root, 'missing')), false);
    const unset = new Repository('enc', driver(), undefined, [parseKeySource('env:SNAPWORKER_TEST_UNSET')]);
    await assert.rejects(verifySnapshot({ repository: unset, record, signal, progress: nullProgress }), /key source env:SNAPWORKER_TEST_UNSET: the variable is not set/);
  });

  it('detects a flipped byte in verify and refuses it in restore, leaving the target untouched', async () => {
    const archive = path.join(repoDir, record.archive!.key);
    const { size } = await stat(archive);
    await assertTamperRefused(archive, [40, Math.floor(size / 2), -5], () => new Repository('enc', driver(), undefined, [envSource]), record, root, context);
    // A record edited to name no key (so a planted plaintext archive would be read) is refused.
    const { keyId: _dropped, ...unkeyed } = record;
    await assert.rejects(
      verifySnapshot({ repository: new Repository('enc', driver(), undefined, [envSource]), record: unkeyed, signal, progress: nullProgress }),
      /its record names no key, but repository enc is encrypted/,
    );
  });

  it('rotates keys: add a passphrase file, read with it alone, remove the old key; the last key goes only on purpose', async () => {
    const secretFile = path.join(root, 'passphrase');
    await writeFile(secretFile, 'correct horse battery staple\n');
    const fileSource = parseKeySource(`file:${secretFile}`);
    const added = await addRepositoryKey(new Repository('enc', driver(), undefined, [envSource]), fileSource, { label: 'ops vault' });
    assert.equal(added.kind, 'passphrase');
    const withFile = new Repository('enc', driver(), undefined, [fileSource]);
    await verifySnapshot({ repository: withFile, record, signal, progress: nullProgress });
    const keys = await listRepositoryKeys(withFile);
    assert.deepEqual(keys.map((key) => key.kind), ['key', 'passphrase']);
    assert.equal(keys[1]!.label, 'ops vault');

    await removeRepositoryKey(withFile, keys[0]!.id);
    await assert.rejects(verifySnapshot({ repository: new Repository('enc', driver(), undefined, [envSource]), record, signal, progress: nullProgress }), /none of its 1 keys opens/);
    await verifySnapshot({ repository: new Repository('enc', driver(), undefined, [fileSource]), record, signal, progress: nullProgress });

    // Crypto-shredding: the last key object goes only with allowLast (`key rm --shred`); then nothing opens.
    await assert.rejects(removeRepositoryKey(withFile, keys[1]!.id), /is its last key; without it no snapshot can ever be read again/);
    await removeRepositoryKey(withFile, keys[1]!.id, { allowLast: true });
    await assert.rejects(restoreInto(new Repository('enc', driver(), undefined, [fileSource]), 'shredded'), /none of its 0 keys opens/);
    assert.equal(existsSync(path.join(root, 'shredded')), false);
  });
});

describe('encrypted snapshots beside the other features', () => {
  let root: string;
  const envSource = parseKeySource('env:SNAPWORKER_TEST_KEY_C');
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-enc-more-'));
    process.env.SNAPWORKER_TEST_KEY_C = randomBytes(32).toString('hex');
  });
  after(async () => {
    delete process.env.SNAPWORKER_TEST_KEY_C;
    await rm(root, { recursive: true, force: true });
  });

  it('lists an encrypted archive from its entry index, which is an age file too', async () => {
    const dir = path.join(root, 'listing');
    await mkdir(dir);
    const repoDir = path.join(dir, 'repo');
    const { repository, record } = await encryptedRoundTrip(dir, () => new FsDriver({ root: repoDir }), [envSource], repoDir);
    assert.match(record.archive!.index?.key ?? '', /\.age$/, 'the entry index is stored encrypted');
    assert.equal(record.archive!.seekTable, undefined, 'no seek table is recorded for an age file');
    const paths: string[] = [];
    for await (const entry of listEntries(repository, record, { signal })) paths.push(entry.path);
    assert.ok(paths.includes(`data/reports/${KNOWN_NAME}`), paths.join(', '));
  });

  it('seals every blob of a chunked repository: round trip, no name or content in any stored byte, no id key in config.json', async () => {
    const dir = path.join(root, 'chunked');
    const repoDir = path.join(dir, 'repo');
    const driver = () => new FsDriver({ root: repoDir });
    const { record, context } = await encryptedRoundTrip(dir, driver, [envSource], repoDir, 'chunked');
    const config = JSON.parse(await readFile(path.join(repoDir, 'config.json'), 'utf8')) as { chunked: { idKey?: string } };
    assert.equal(config.chunked.idKey, undefined);
    const read = () => new Repository('enc', driver(), undefined, [envSource]);
    // A blob's bytes (the big file's first blob starts a pack), and the pack index object.
    const { packs, indexes } = await chunkedObjects(repoDir);
    for (const pack of packs) await assertTamperRefused(pack, [20], read, record, dir, context);
    // A pack's sealed header is what `check` reads (restore and verify find blobs through the
    // index, and the blobs they read are intact): check names the pack.
    const pack = packs[0]!;
    const original = await readFile(pack);
    const flipped = Buffer.from(original);
    flipped[flipped.length - 10]! ^= 0x01;
    await writeFile(pack, flipped);
    const report = await checkStore(read(), { cipher: await repositoryCipher(read(), signal), signal });
    assert.ok(report.problems.some((line) => line.includes(path.basename(pack))), report.problems.join('\n'));
    await writeFile(pack, original);
    await assertTamperRefused(indexes[0]!, [0, 30, -1], read, record, dir, context);
    // Without its key, or with another one, nothing opens: one line, nothing written.
    process.env.SNAPWORKER_TEST_KEY_D = randomBytes(32).toString('hex');
    for (const sources of [[], [parseKeySource('env:SNAPWORKER_TEST_KEY_D')]]) {
      const elsewhere = path.join(dir, 'not-restored');
      await assert.rejects(
        restoreSnapshot({ repository: new Repository('enc', driver(), undefined, sources), record, target: createDirTarget([new URL(`dir://${elsewhere}`)], {}, context), replace: false, signal, progress: nullProgress }),
        (err: Error) => err instanceof InvalidInputError && /no key source is configured|none of its 1 keys opens/.test(err.message),
      );
      assert.equal(existsSync(elsewhere), false);
    }
    delete process.env.SNAPWORKER_TEST_KEY_D;
  });
});

describe('encrypted snapshots in S3 (s3rver)', () => {
  let s3: S3rverHandle;
  let root: string;
  before(async () => {
    s3 = await startS3rver();
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-enc-s3-'));
    process.env.SNAPWORKER_TEST_KEY_S3 = randomBytes(32).toString('base64');
  });
  after(async () => {
    delete process.env.SNAPWORKER_TEST_KEY_S3;
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  });

  for (const format of ['archive', 'chunked'] as const) {
    it(`${format}: round trips, no object in the bucket holds a file name or content, a flipped byte is refused`, async () => {
      const prefix = `enc-${format}-${randomBytes(4).toString('hex')}`;
      const driver = () => new S3Driver({ bucket: s3.bucket, prefix, endpoint: s3.endpoint, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED', maxAttempts: 2 });
      const sources = [parseKeySource('env:SNAPWORKER_TEST_KEY_S3')];
      const dir = path.join(root, format);
      await mkdir(dir);
      const { record, context } = await encryptedRoundTrip(dir, driver, sources, path.join(s3.directory, s3.bucket, prefix), format);
      const read = () => new Repository('enc', driver(), undefined, sources);
      const stored = path.join(s3.directory, s3.bucket, prefix);
      const file = format === 'archive' ? path.join(stored, `${record.archive!.key}._S3rver_object`) : (await chunkedObjects(stored)).packs[0]!;
      await assertTamperRefused(file, [format === 'archive' ? -20 : 20], read, record, dir, context);
    });
  }
});

describe('KMS envelope keys (a local double of the KMS JSON API)', () => {
  let kms: KmsDouble;
  let root: string;
  const saved = { ...process.env };
  before(async () => {
    kms = await startKmsDouble(['alias/tenant-a', 'alias/tenant-b']);
    Object.assign(process.env, { AWS_ENDPOINT_URL_KMS: kms.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-enc-kms-'));
  });
  after(async () => {
    for (const name of ['AWS_ENDPOINT_URL_KMS', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    await kms?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('wraps the keys with KMS, unlocks through KMS, refuses another KMS key, and shreds when the KMS key is disabled', async () => {
    const repoDir = path.join(root, 'repo');
    const driver = () => new FsDriver({ root: repoDir });
    const tenantA = parseKeySource('kms:alias/tenant-a');
    const { record } = await encryptedRoundTrip(root, driver, [tenantA], repoDir);
    assert.ok(kms.calls.includes('Encrypt') && kms.calls.includes('Decrypt'));
    const [object] = await listRepositoryKeys(new Repository('enc', driver()));
    assert.deepEqual({ kind: object!.kind, kmsKeyId: object!.kmsKeyId }, { kind: 'kms', kmsKeyId: 'alias/tenant-a' });

    const other = new Repository('enc', driver(), undefined, [parseKeySource('kms:alias/tenant-b')]);
    await assert.rejects(verifySnapshot({ repository: other, record, signal, progress: nullProgress }), /none of its 1 keys opens .*kms:alias\/tenant-b/);
    const cipher = await repositoryCipher(new Repository('enc', driver(), undefined, [tenantA]));
    assert.equal(cipher.keyId, record.keyId);

    kms.disable('alias/tenant-a');
    await assert.rejects(verifySnapshot({ repository: new Repository('enc', driver(), undefined, [tenantA]), record, signal, progress: nullProgress }), /none of its 1 keys opens/);
  });
});

describe('worker key configuration', () => {
  it('reads SNAPWORKER_REPOSITORY_KEYS per configured repository and names each bad entry', () => {
    const base = { SNAPWORKER_REPOSITORIES: JSON.stringify({ a: 'file:///srv/a', b: 'file:///srv/b' }), SNAPWORKER_DEFAULT_REPOSITORY: 'a' };
    const config = loadConfig({ ...base, SNAPWORKER_REPOSITORY_KEYS: JSON.stringify({ a: ['env:A_KEY', 'file:/run/secrets/a', 'kms:alias/a'] }) }, '/srv');
    assert.deepEqual(config.repositoryKeys.a, [
      { kind: 'env', variable: 'A_KEY' },
      { kind: 'file', path: '/run/secrets/a' },
      { kind: 'kms', keyId: 'alias/a' },
    ]);
    assert.throws(
      () => loadConfig({ ...base, SNAPWORKER_REPOSITORY_KEYS: JSON.stringify({ a: ['vault:x'], c: ['env:C'], b: [] }) }, '/srv'),
      (err: Error) => {
        assert.match(err.message, /SNAPWORKER_REPOSITORY_KEYS\.a\.0: key source "vault:x": expected env:VAR, file:\/abs\/path or kms:KEY-ID/);
        assert.match(err.message, /SNAPWORKER_REPOSITORY_KEYS\.b: list at least one key source/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ ...base, SNAPWORKER_REPOSITORY_KEYS: JSON.stringify({ c: ['env:C'] }) }, '/srv'), /SNAPWORKER_REPOSITORY_KEYS\.c: not one of SNAPWORKER_REPOSITORIES/);
  });

  it('refuses to write unencrypted snapshots into a plain repository that has keys configured', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-enc-plain-'));
    try {
      const repoDir = path.join(root, 'repo');
      await new Repository('plain', new FsDriver({ root: repoDir })).init();
      process.env.SNAPWORKER_TEST_KEY_P = randomBytes(32).toString('hex');
      const repository = new Repository('plain', new FsDriver({ root: repoDir }), undefined, [parseKeySource('env:SNAPWORKER_TEST_KEY_P')]);
      const context: EndpointContext = { checkPath: () => {}, stagingDir: root };
      const source = createDirSource([new URL(`dir://${root}`)], { name: 'x' }, context);
      await assert.rejects(
        takeSnapshot({ id: newSnapshotId(), source, repository, labels: {}, compression: 'zstd', signal, progress: nullProgress }),
        /keys are configured for it .* but it was created without encryption/,
      );
      assert.deepEqual((await readdir(repoDir)).sort(), ['config.json', 'index']);
      assert.equal((await stat(path.join(repoDir, 'config.json'))).isFile(), true);
    } finally {
      delete process.env.SNAPWORKER_TEST_KEY_P;
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('key commands', () => {
  let root: string;
  const env: Record<string, string> = {};
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-enc-cli-'));
    env.SNAPWORKER_REPOSITORIES = JSON.stringify({ vault: `file://${path.join(root, 'repo')}` });
    env.SNAPWORKER_DEFAULT_REPOSITORY = 'vault';
    env.SNAPWORKER_REPOSITORY_KEYS = JSON.stringify({ vault: ['env:SNAPWORKER_TEST_CLI_KEY'] });
    env.SNAPWORKER_TEST_CLI_KEY = randomBytes(32).toString('hex');
    Object.assign(process.env, { SNAPWORKER_TEST_CLI_KEY: env.SNAPWORKER_TEST_CLI_KEY });
  });
  after(async () => {
    delete process.env.SNAPWORKER_TEST_CLI_KEY;
    await rm(root, { recursive: true, force: true });
  });

  /** Runs a command in this process (as worker/cli.ts would), capturing stdout. */
  async function run(command: string, args: string[], flags: Partial<CliOptions>): Promise<string> {
    const options = { label: [], 'key-source': [], replace: false, 'dry-run': false, paused: false, all: false, generations: false, wait: false, local: false, json: false, encrypt: false, shred: false, help: false, kindFields: {}, ...flags } as CliOptions;
    const config = loadConfig({ ...env, SNAPWORKER_ALLOWED_PATHS: '/' }, root);
    const logger = createLogger('silent');
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    // Only our text: the test runner's own messages to its parent go through stdout as bytes.
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? ((out += chunk), true) : write(chunk, ...rest))) as typeof process.stdout.write;
    try {
      if (command.startsWith('key ')) await runKeyCommand(command, args, options, config, logger);
      else await runCatalogCommand(command as 'init', args, options, config, logger);
    } finally {
      process.stdout.write = write;
    }
    return out;
  }

  it('init --encrypt, key add, key ls, key rm; export-age feeds stock age; the last key needs --shred', async () => {
    assert.match(await run('init', [], { encrypt: true, repo: 'vault', 'key-label': 'x' }), /^created encrypted \(key [0-9a-f]{16}, 1 key object\) repository vault \(id [0-9a-f]{16}\)\n$/);
    await assert.rejects(run('init', [], { repo: 'vault' }), /already exists/);
    assert.match(await run('key ls', [], { repo: 'vault' }), /^ID +KIND +KMS KEY +CREATED +LABEL\n[0-9a-f]{16} +key +\S+ \S+ +x$/m);
    const passphrase = path.join(root, 'passphrase');
    await writeFile(passphrase, 'a long enough passphrase\n');
    const added = JSON.parse(await run('key add', [], { repo: 'vault', 'key-source': [`file:${passphrase}`], json: true })) as { id: string; kind: string };
    assert.equal(added.kind, 'passphrase');
    const keys = JSON.parse(await run('key ls', [], { repo: 'vault', json: true })) as Array<{ id: string }>;
    assert.equal(keys.length, 2);
    // Rotation: the workers now get the new source, then the old key goes.
    env.SNAPWORKER_REPOSITORY_KEYS = JSON.stringify({ vault: [`file:${passphrase}`] });
    assert.match(await run('key rm', [keys[0]!.id], { repo: 'vault' }), /^removed key [0-9a-f]{16} from repository vault\n$/);

    const identity = await run('key export-age', [], { repo: 'vault' });
    assert.match(identity, /^# public key: age1[0-9a-z]+\nAGE-SECRET-KEY-1[0-9A-Z]+\n$/m);
    await writeFile(path.join(root, 'key.txt'), identity);
    const key = await requireUnlocked(new Repository('vault', new FsDriver({ root: path.join(root, 'repo') }), undefined, [parseKeySource(`file:${passphrase}`)]));
    execFileSync('sh', ['-c', `printf hello | age -e -r ${key.ageRecipient} | age -d -i key.txt | grep -qx hello`], { cwd: root });

    // The command line itself: one line, exit 2, and the key is still there.
    const refused = await cli(['key', 'rm', added.id, '--repo', 'vault'], env);
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr, `snapworker: repository vault: ${added.id} is its last key; without it no snapshot can ever be read again (give --shred to destroy it on purpose)\n`);
    assert.equal((await listRepositoryKeys(new Repository('vault', new FsDriver({ root: path.join(root, 'repo') })))).length, 1);
  });

  it('a repository encrypted by URI says at init and at first use, in one line, what to configure; configured so, its URI unlocks', async () => {
    const uri = `file://${path.join(root, 'by-uri')}`;
    const kek = path.join(root, 'by-uri.key');
    await writeFile(kek, randomBytes(32), { mode: 0o600 });
    const data = path.join(root, 'by-uri-data');
    await mkdir(data);
    await writeFile(path.join(data, 'a.txt'), 'a\n');
    const bare = { SNAPWORKER_ALLOWED_PATHS: '/' };
    const hint = `name it in SNAPWORKER_REPOSITORIES and list its key sources under that name in SNAPWORKER_REPOSITORY_KEYS, e.g. SNAPWORKER_REPOSITORIES='{"default":"${uri}"}' SNAPWORKER_REPOSITORY_KEYS='{"default":["file:/abs/path/to/key"]}' (then this URI, or its name, unlocks)`;
    const init = await cli(['init', '--repo', uri, '--encrypt', '--key-source', `file:${kek}`], bare);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.stderr, `snapworker: note: later commands unlock repository ${uri} only with a configured key source: ${hint}\n`);
    const refused = await cli(['snapshot', `dir://${data}`, '--repo', uri, '--local'], bare);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^snapworker: repository \S+ is encrypted \(key [0-9a-f]{16}\); no key source is configured for it on this host: /);
    assert.ok(refused.stderr.endsWith(`${hint}\n`) && refused.stderr.split('\n').length === 2, refused.stderr);
    const configured = await cli(['snapshot', `dir://${data}`, '--repo', uri, '--local'], { ...bare, SNAPWORKER_REPOSITORIES: JSON.stringify({ default: uri }), SNAPWORKER_REPOSITORY_KEYS: JSON.stringify({ default: [`file:${kek}`] }) });
    assert.equal(configured.code, 0, configured.stderr);
  });
});
