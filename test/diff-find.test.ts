import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, lstatSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { loadConfig } from '../shared/config.js';
import { inPayloadOrder } from '../shared/browse/entry-order.js';
import { decodeName } from '../shared/fsutil/byte-name.js';
import { setTimesNs } from '../shared/fsutil/native-fs.js';
import { listEntries } from '../shared/formats/list-entries.js';
import { createLogger } from '../shared/logging.js';
import { nullProgress } from '../shared/progress.js';
import { JobRuntime, runJob } from '../worker/job-runner.js';
import { runDiff, runFind } from '../worker/commands/diff-find-commands.js';
import { cli } from './helpers/cli.js';
import { bytesPath, makeTortureTree, type TortureTree } from './helpers/torture-tree.js';

interface JsonChange {
  modifier: string;
  path: string;
  fields?: string[];
}

describe('diff and find over the torture tree', () => {
  let root: string;
  let repo: string;
  let runtime: JobRuntime;
  let tree: TortureTree;
  let a: SnapshotRecord;
  let b: SnapshotRecord;
  const signal = new AbortController().signal;
  /** The changes made between the two snapshots, as `diff --json` must report them. */
  const expected: JsonChange[] = [];

  /** Runs `change` on paths under the tree, then puts back the mtimes of `keep` (parents whose mtime the change moved). */
  function mutate(keep: Buffer[], change: () => void): void {
    const times = keep.map((p) => [p, lstatSync(p, { bigint: true })] as const);
    change();
    for (const [p, stats] of times) setTimesNs(p, stats.atimeNs, stats.mtimeNs, true);
  }

  /** Runs diff or find in this process (a CLI start costs seconds of CPU here), collecting what it prints. */
  async function browse(run: typeof runDiff | typeof runFind, args: string[], options: { json?: boolean; labels?: Record<string, string> } = {}): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    const context = {
      repository: runtime.repository(undefined),
      filter: { labels: options.labels },
      json: options.json ?? false,
      signal,
      sealKeys: {},
      write: async (text: string) => void (stdout += text),
    };
    const code = await (run as (c: typeof context, ...a: string[]) => Promise<number>)(context, ...args);
    return { code, stdout };
  }

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-diff-'));
    repo = path.join(root, 'repo');
    tree = await makeTortureTree(path.join(root, 'src'));
    const config = loadConfig({ SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${repo}` }), SNAPWORKER_ALLOWED_PATHS: root, SNAPWORKER_STAGING_DIR: root });
    runtime = new JobRuntime(config, createLogger('silent'));
    await runtime.repository(undefined).init();
    const snapshot = async () => runJob({ kind: 'snapshot', data: { v: 1, source: `dir://${tree.root}`, name: 'torture' }, signal, progress: nullProgress }, runtime);
    a = await snapshot();

    const at = (...parts: Array<string | Buffer>) => bytesPath(tree.root, ...parts);
    const name = (...parts: Array<string | Buffer>) => `data/${decodeName(Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from('/'), Buffer.from(p)] : [Buffer.from(p)]))))}`;
    const cafe = Buffer.from('café-ü-日本.txt');
    // Content: same mtime, new bytes and size.
    mutate([at('names', cafe)], () => appendFileSync(at('names', cafe), 'more'));
    expected.push({ modifier: 'M', path: name('names', cafe), fields: ['content', 'size'] });
    // Content at the same size: only the SHA-256 tells.
    mutate([at('sparse', 'dense-zeros')], () => {
      const size = Number(lstatSync(at('sparse', 'dense-zeros')).size);
      writeFileSync(at('sparse', 'dense-zeros'), Buffer.alloc(size, 1));
    });
    expected.push({ modifier: 'M', path: name('sparse', 'dense-zeros'), fields: ['content'] });
    // Mode only.
    chmodSync(at('modes', 'group-exec'), 0o600);
    expected.push({ modifier: 'U', path: name('modes', 'group-exec'), fields: ['mode'] });
    // One nanosecond of mtime.
    const whole = lstatSync(at('times', 'whole-second'), { bigint: true });
    setTimesNs(at('times', 'whole-second'), whole.atimeNs, whole.mtimeNs + 1n, true);
    expected.push({ modifier: 'U', path: name('times', 'whole-second'), fields: ['mtime'] });
    // A symlink's target, its own mtime kept.
    mutate([at('links'), at('links', 'dot')], () => {
      unlinkSync(at('links', 'dot'));
      symlinkSync('elsewhere', at('links', 'dot'));
    });
    expected.push({ modifier: 'U', path: name('links', 'dot'), fields: ['linkTarget'] });
    // A file that became a directory.
    mutate([at('times'), at('times', '2040-01-01')], () => {
      unlinkSync(at('times', '2040-01-01'));
      mkdirSync(at('times', '2040-01-01'), { mode: 0o755 });
    });
    expected.push({ modifier: 'T', path: name('times', '2040-01-01'), fields: ['type'] });
    // Removed and added.
    mutate([at('names')], () => {
      rmSync(at('names', '-leading-dash'));
      writeFileSync(at('names', 'added.txt'), 'new');
    });
    expected.push({ modifier: '-', path: name('names', '-leading-dash') }, { modifier: '+', path: name('names', 'added.txt') });
    b = await snapshot();
  });
  after(async () => {
    await runtime?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('lists a snapshot read whole in payload order, each file with the SHA-256 of its content', async () => {
    const repository = runtime.repository(undefined);
    let files = 0;
    // Checked as it streams (no in-memory sort): the archive holds the walk's order.
    for await (const entry of inPayloadOrder(a, listEntries(repository, a, { signal }), 0)) {
      if (entry.type === 'file' && entry.size > 0) assert.match(entry.sha256 ?? '', /^[0-9a-f]{64}$/, entry.path);
      if (entry.type === 'file') files++;
    }
    assert.equal(files, a.stats.files);
  });

  it('reports exactly what changed: content by SHA-256, mode, ns mtime, link target, type, added and removed', async () => {
    const run = await cli(['diff', a.id, b.id, '--repo', `file://${repo}`, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as { a: string; b: string; changes: JsonChange[]; summary: Record<string, unknown> };
    assert.equal(doc.a, a.id);
    const got = doc.changes.map(({ modifier, path: p, fields }) => ({ modifier, path: p, ...(fields ? { fields } : {}) }));
    const byPath = (x: JsonChange, y: JsonChange) => (x.path < y.path ? -1 : 1);
    assert.deepEqual(got.sort(byPath), [...expected].sort(byPath));
    assert.deepEqual(doc.summary.files, { added: 1, removed: 1, changed: 4 });
    assert.deepEqual(doc.summary.others, { added: 0, removed: 0, changed: 1 });
    assert.deepEqual(doc.summary.directories, { added: 0, removed: 0, changed: 1 }, 'the file that became a directory counts as a directory');

    const same = await browse(runDiff, [a.id, a.id]);
    assert.equal(same.code, 0);
    assert.match(same.stdout, /^comparing snapshot \S+ to \S+:\n\nFiles: +0 new, 0 removed, 0 changed\n/);
  });

  it('prints restic-style lines for people, with what changed', async () => {
    const run = await browse(runDiff, [a.id.slice(-8), b.id.slice(-8)]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^U {4}data\/modes\/group-exec {4}\(mode 0710 → 0600\)$/m);
    assert.match(run.stdout, /^U {4}data\/links\/dot {4}\(target \. → elsewhere\)$/m);
    assert.match(run.stdout, /^\+ {4}data\/names\/added\.txt$/m);
    assert.match(run.stdout, /^T {4}data\/times\/2040-01-01 {4}\(file → directory\)$/m);
    assert.match(run.stdout, /^Added: +\S+/m);
  });

  it('find names the snapshots holding a match and the matching paths, by name or by whole path', async () => {
    const byName = await browse(runFind, ['added.*'], { json: true });
    assert.equal(byName.code, 0);
    const found = JSON.parse(byName.stdout) as Array<{ snapshot: { id: string }; matches: Array<{ path: string; type: string; size: number }> }>;
    assert.deepEqual(
      found.map((f) => [f.snapshot.id, f.matches.map((m) => [m.path, m.type, m.size])]),
      [[b.id, [['data/names/added.txt', 'file', 3]]]],
    );
    const byPath = await cli(['find', 'data/times/2040-*', '--repo', `file://${repo}`]);
    assert.equal(byPath.code, 0, byPath.stderr);
    assert.match(byPath.stdout, new RegExp(`snapshot ${a.id} of dir:torture .*:\\n  -\\d{4} .* data/times/2040-01-01\\n`));
    assert.match(byPath.stdout, new RegExp(`snapshot ${b.id} of dir:torture .*:\\n  d\\d{4} .* data/times/2040-01-01\\n`));
    assert.match(byPath.stdout, /2 matches in 2 snapshots searched/);
    // The paths `files` shows (and --include takes) find the same entries as the stored ones.
    for (const shown of ['/times/2040-*', 'times/2040-*']) {
      const same = await browse(runFind, [shown], { json: true });
      const matches = (JSON.parse(same.stdout) as Array<{ matches: Array<{ path: string }> }>).flatMap((f) => f.matches.map((m) => m.path));
      assert.deepEqual(matches, ['data/times/2040-01-01', 'data/times/2040-01-01'], shown);
    }
    const none = await browse(runFind, ['no-such-*'], { labels: { app: 'none' } });
    assert.equal(none.code, 0);
    assert.match(none.stdout, /^0 matches in 0 snapshots searched$/m);
  });

  it('checks a --label beside a snapshot id instead of ignoring it', async () => {
    await assert.rejects(browse(runDiff, [a.id, b.id], { labels: { app: 'other' } }), new RegExp(`snapshot ${a.id} does not match app=other`));
  });
});
