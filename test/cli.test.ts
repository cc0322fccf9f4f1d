import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertTreesEqual, dir, file, makeTree, symlink } from './helpers/tree.js';
import { cli, spawnCli } from './helpers/cli.js';
import { eventually, useTestWorker } from './helpers/worker-fixture.js';
import { parseCommandLine } from '../worker/commands/parse-command-line.js';
import { snapshotJobData } from '../worker/commands/options.js';

describe('kind flags on the command line', () => {
  it('turn into the job fields of the kinds registered, only those given', () => {
    const snapshot = parseCommandLine(['snapshot', 'dir:///srv/app', '--include', 'conf/**', '--include', '*.md', '--skip-unreadable']);
    assert.equal(snapshot.kind, 'run');
    if (snapshot.kind !== 'run') return;
    assert.deepEqual(snapshot.options.kindFields, { include: ['conf/**', '*.md'], skipUnreadable: true });
    assert.deepEqual(snapshotJobData(snapshot.args, snapshot.options), {
      v: 1,
      source: 'dir:///srv/app',
      repo: undefined,
      name: undefined,
      labels: undefined,
      compression: undefined,
      include: ['conf/**', '*.md'],
      skipUnreadable: true,
    });
    const restore = parseCommandLine(['restore', 'latest', 'nats://127.0.0.1:4222/S', '--stream-config', '{"num_replicas":3}', '--replace']);
    assert.ok(restore.kind === 'run');
    if (restore.kind === 'run') assert.deepEqual(restore.options.kindFields, { streamConfig: { num_replicas: 3 } });
  });
});

describe('the snapworker command line', () => {
  let root: string;
  let repo: string;
  let source: string;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-cli-'));
    repo = `file://${path.join(root, 'repo')}`;
    source = path.join(root, 'site');
    await makeTree(source, {
      'index.html': '<h1>hi</h1>',
      assets: dir({ 'app.js': file('console.log(1)', { mode: 0o640 }) }),
      'latest.html': symlink('index.html'),
    });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('snapshots, lists, shows, verifies, restores and removes with --local, printing JSON results', async () => {
    const snap = await cli(['snapshot', `dir://${source}`, '--repo', repo, '--label', 'env=test', '--local', '--json']);
    assert.equal(snap.code, 0, snap.stderr);
    const record = JSON.parse(snap.stdout);
    assert.equal(record.source.name, 'site');

    const ls = await cli(['ls', '--repo', repo, '--label', 'env=test', '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(JSON.parse(ls.stdout).map((r: { id: string }) => r.id), [record.id]);

    const human = await cli(['ls', '--repo', repo]);
    const [header, row, count] = human.stdout.trimEnd().split('\n');
    assert.match(header!, /^ID\s+TIME \(UTC\)\s+SOURCE\s+LABELS\s+SIZE\s+ADDED$/);
    assert.match(row!, new RegExp(`^${record.id.split('-')[1]}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+dir:site\\s+env=test\\s+\\d+(\\.\\d)? (B|KiB)\\s+\\d+(\\.\\d)? (B|KiB)$`));
    assert.equal(count, '1 snapshot');

    const show = await cli(['show', 'latest', '--source', 'site', '--repo', repo]);
    assert.equal(JSON.parse(show.stdout).id, record.id);

    const verify = await cli(['verify', record.id, '--repo', repo, '--local']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /verified/);

    const target = path.join(root, 'restored');
    const restore = await cli(['restore', 'latest', `dir://${target}`, '--source', 'site', '--repo', repo, '--local', '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(JSON.parse(restore.stdout).snapshotId, record.id);
    await assertTreesEqual(source, target);

    const again = await cli(['restore', record.id, `dir://${target}`, '--repo', repo, '--local']);
    assert.equal(again.code, 2, 'an existing target is refused without --replace');
    assert.match(again.stderr, /exists/);

    const rm_ = await cli(['rm', record.id, '--repo', repo]);
    assert.equal(rm_.code, 0, rm_.stderr);
    const empty = await cli(['ls', '--repo', repo, '--json']);
    assert.deepEqual(JSON.parse(empty.stdout), []);
  });

  it('reports bad input in one line with exit code 2, without a stack trace', async () => {
    for (const args of [
      ['snapshot', 'ftp://nowhere', '--local', '--repo', repo],
      ['restore', 'not-an-id', `dir://${root}/x`, '--local', '--repo', repo],
      ['frobnicate'],
      ['snapshot', `dir://${source}`, '--local', '--repo', 'file://relative'],
    ]) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^snapworker: /);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }
    const badConfig = await cli(['ls'], { SNAPWORKER_CONCURRENCY: 'many' });
    assert.equal(badConfig.code, 2);
    assert.match(badConfig.stderr, /SNAPWORKER_CONCURRENCY/);
  });

  it('refuses unknown flags, flags of other commands and extra arguments with one line and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['snapshot', `dir://${source}`, '--lable', 'app=x', '--local'], /unknown flag --lable \(did you mean --label\?\)/],
      [['--lable', 'app=x', 'snapshot', `dir://${source}`], /unknown flag --lable \(did you mean --label\?\)/],
      [['ls', '--rpeo', 'file:///x'], /unknown flag --rpeo \(did you mean --repo\?\)/],
      [['verify', 'latest', '--include', 'x'], /verify: --include does not apply to verify/],
      [['verify', 'latest', '--replace'], /verify: --replace does not apply to verify/],
      [['verify', 'latest', '--expires', '1h'], /verify: --expires does not apply to verify/],
      [['ls', 'extra', 'args', '--repo', repo], /ls: unexpected argument "extra" "args"/],
      [['ls', '--help', 'extra'], /ls: unexpected argument "extra"/],
      [['worker', 'now'], /worker: unexpected argument "now" \(usage: snapworker worker\)/],
      [['watch', 'a', 'b'], /watch: unexpected argument "b"/],
      [['help', 'ls', 'extra'], /help: unexpected argument "extra"/],
      [['help', 'job', 'status', 'x'], /help: unexpected argument "x"/],
      [['help', '--repo', repo], /help: --repo does not apply to help/],
      [['--version', 'extra'], /--version takes no arguments and no other flags \(got "extra"\)/],
      [['ls', '--version'], /--version takes no arguments and no other flags \(got "ls"\)/],
      [['--version', '--json'], /--version takes no arguments and no other flags \(got --json\)/],
      [['ls', '--repo', repo, '--repo', 'file:///elsewhere'], /ls: --repo given more than once; it takes one value/],
      [['restore', 'latest', 'dir:///x', '--source=a', '--source', 'b'], /restore: --source given more than once/],
      [['prune', 'keep-last=1', '--tz', 'UTC', '--tz', 'Europe/Prague'], /prune: --tz given more than once/],
      [['restore', 'latest'], /restore: missing arguments: snapworker restore <snapshot> <target>\.\.\. \[flags\]/],
      [['ls', '--repo'], /ls: --repo needs a value/],
      [['ls', '--json=yes', '--repo', repo], /ls: --json takes no value/],
      [['snapshto', `dir://${source}`], /unknown command "snapshto" \(did you mean "snapshot"\?\)/],
      [['snapshot', `dir://${source}`, '--local', '--job-id', 'x'], /--job-id names a queued job; it does not apply to --local/],
      [['snapshot', `dir://${source}`, '--local', '--wait'], /--wait and --local exclude each other/],
      [['ls', '--constructor'], /ls: unknown flag --constructor/],
      [['snapshot', 'nats://127.0.0.1:4222/S', '--include', 'x', '--local'], /invalid snapshot job: field "include": belongs to dir sources; this job's source is nats/],
      [['restore', 'latest', `dir://${root}/x`, '--stream-config', '{', '--local'], /restore: --stream-config: not valid JSON/],
      [['restore', 'latest', `dir://${root}/x`, '--no-consumers'], /restore: --no-consumers does not apply to restore/],
      [['snapshot', `dir://${source}`, '--skip-unreadabel', '--local'], /unknown flag --skip-unreadabel \(did you mean --skip-unreadable\?\)/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.split('\n').length, 2, `one line: ${run.stderr}`);
    }
  });

  it('prints per-command help listing every flag, and the version', async () => {
    for (const args of [['snapshot', '--help'], ['help', 'snapshot']]) {
      const run = await cli(args);
      assert.equal(run.code, 0, run.stderr);
      for (const flag of ['--repo', '--label', '--name', '--include', '--exclude', '--compression', '--no-consumers', '--check-messages', '--wait', '--local', '--json', '--job-id']) {
        assert.match(run.stdout, new RegExp(`^  ${flag}\\b`, 'm'), `${args.join(' ')} lists ${flag}`);
      }
      assert.match(run.stdout, /exit codes: 0 ok, 1 failed, 2 bad input.*, 3 .*skipped, 10 repository does not exist, 130 interrupted/);
    }
    const restore = await cli(['help', 'restore']);
    assert.match(restore.stdout, /^  --replace\b/m);
    // restore's own --include (a partial restore), once; a source-only flag of the dir kind, never.
    assert.equal(restore.stdout.match(/^  --include G +restore only paths matching/gm)?.length, 1);
    assert.doesNotMatch(restore.stdout, /--skip-unreadable/);
    assert.match(restore.stdout, /^nats target flags:\n  --stream-config JSON /m, 'kind flags under their kind');
    const version = await cli(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^snapworker \d+\.\d+\.\d+\n$/);
    const none = await cli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^usage: snapworker <command>/);
  });

  it('never creates a repository on reads; init creates one; writes create one only when allowed', async () => {
    const missing = `file://${path.join(root, 'no', 'such')}`;
    for (const args of [['ls'], ['show', 'latest', '--source', 'x'], ['verify', 'latest', '--source', 'x', '--local']]) {
      const run = await cli([...args, '--repo', missing]);
      assert.equal(run.code, 10, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stderr, `snapworker: repository ${missing}: does not exist ("snapworker init" creates it)\n`);
    }
    await assert.rejects(stat(path.join(root, 'no')), 'nothing was created');

    const fresh = `file://${path.join(root, 'explicit')}`;
    const refused = await cli(['snapshot', `dir://${source}`, '--local', '--repo', fresh], { SNAPWORKER_AUTO_INIT: 'false' });
    assert.equal(refused.code, 10, refused.stderr);
    const init = await cli(['init', '--repo', fresh, '--json']);
    assert.equal(init.code, 0, init.stderr);
    const config = JSON.parse(await readFile(path.join(root, 'explicit', 'config.json'), 'utf8'));
    assert.equal(config.format, 'snapworker-repository');
    assert.equal(config.id, JSON.parse(init.stdout).id);
    const again = await cli(['init', '--repo', fresh]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    const empty = await cli(['ls', '--repo', fresh]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /^ID .*\n0 snapshots\n$/);
    const written = await cli(['snapshot', `dir://${source}`, '--local', '--repo', fresh], { SNAPWORKER_AUTO_INIT: 'false' });
    assert.equal(written.code, 0, written.stderr);
  });

  it('takes a unique prefix of an id or of its hex part wherever an id goes, and refuses an ambiguous one listing the candidates', async () => {
    const prefixed = `file://${path.join(root, 'prefixed')}`;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const snap = await cli(['snapshot', `dir://${source}`, '--local', '--json', '--repo', prefixed]);
      assert.equal(snap.code, 0, snap.stderr);
      ids.push(JSON.parse(snap.stdout).id);
    }
    const [first, second] = ids as [string, string];
    const short = first.split('-')[1]!;
    const show = await cli(['show', short.slice(0, 6), '--repo', prefixed]);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).id, first);
    const verify = await cli(['verify', second.slice(0, 22), '--local', '--json', '--repo', prefixed]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(JSON.parse(verify.stdout).snapshotId, second);
    const target = path.join(root, 'from-prefix');
    const restore = await cli(['restore', short, `dir://${target}`, '--local', '--repo', prefixed]);
    assert.equal(restore.code, 0, restore.stderr);
    await assertTreesEqual(source, target);

    const ambiguous = await cli(['show', first.slice(0, 8), '--repo', prefixed]);
    assert.equal(ambiguous.code, 2, ambiguous.stderr);
    assert.equal(ambiguous.stderr, `snapworker: snapshot id prefix "${first.slice(0, 8)}" is ambiguous: ${first}, ${second}\n`);
    const unknown = await cli(['rm', 'ffffffff', '--repo', prefixed]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no snapshot ffffffff/);
    const rm_ = await cli(['rm', short, '--repo', prefixed]);
    assert.equal(rm_.code, 0, rm_.stderr);
    assert.equal(rm_.stdout, `removed ${first}\n`);
  });

  it('"latest" without a filter takes the one lineage a repository holds, and names the lineages when there are several', async () => {
    const lineages = `file://${path.join(root, 'lineages')}`;
    assert.equal((await cli(['init', '--repo', lineages])).code, 0);
    const empty = await cli(['show', 'latest', '--repo', lineages]);
    assert.equal(empty.code, 1, empty.stderr);
    assert.equal(empty.stderr, `snapworker: repository ${lineages}: holds no snapshot\n`);

    const first = await cli(['snapshot', `dir://${source}`, '--local', '--json', '--repo', lineages]);
    assert.equal(first.code, 0, first.stderr);
    const show = await cli(['show', 'latest', '--repo', lineages]);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).id, JSON.parse(first.stdout).id);

    const other = await cli(['snapshot', `dir://${source}`, '--name', 'other', '--local', '--repo', lineages]);
    assert.equal(other.code, 0, other.stderr);
    const refused = `snapworker: snapshot "latest" is ambiguous: repository ${lineages} holds 2 lineages (other, site); choose one by source (--source) or labels (--label)\n`;
    for (const args of [['show', 'latest'], ['verify', 'latest', '--local'], ['restore', 'latest', `dir://${path.join(root, 'never-restored')}`, '--local']]) {
      const run = await cli([...args, '--repo', lineages]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stderr, refused);
    }
    await assert.rejects(stat(path.join(root, 'never-restored')), 'nothing restored');
    const chosen = await cli(['show', 'latest', '--source', 'site', '--repo', lineages]);
    assert.equal(JSON.parse(chosen.stdout).id, JSON.parse(first.stdout).id);
  });

  it('a source root or target that is not a UTF-8 path is refused in one line; a replaced name is never restored to', async () => {
    const utf8Repo = `file://${path.join(root, 'utf8')}`;
    const notUtf8 = 'names a path that is not valid UTF-8; a source root or target must be a UTF-8 path (names inside a directory tree may be any bytes)';
    for (const [uri, what] of [[`dir://${root}/bad%FF`, 'dir source'], [`sqlite://${root}/bad%FF.db`, 'sqlite source']]) {
      const run = await cli(['snapshot', uri!, '--local', '--repo', utf8Repo]);
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stderr, `snapworker: ${what}: ${uri} ${notUtf8}\n`);
    }
    // What a terminal's raw bytes become on the way in: U+FFFD.
    const replaced = path.join(root, 'bad\uFFFD');
    const missing = await cli(['snapshot', `dir://${replaced}`, '--local', '--repo', utf8Repo]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /does not exist \(its name holds U\+FFFD: if the real name is not valid UTF-8, it cannot be given as a source root or target/);
    const snap = await cli(['snapshot', `dir://${source}`, '--local', '--json', '--repo', utf8Repo]);
    const id = JSON.parse(snap.stdout).id;
    const restore = await cli(['restore', id, `dir://${replaced}`, '--local', '--repo', utf8Repo]);
    assert.equal(restore.code, 2, restore.stderr);
    assert.match(restore.stderr, /^snapworker: dir target: dir:\/\/\S+ holds U\+FFFD, the mark of a name whose bytes were not UTF-8 .*; refused, since the restore would create a file of another name\n$/);
    await assert.rejects(stat(replaced), 'nothing created');
  });

  it('an include pattern that matches nothing is a warning on stderr and in the record, never silent', async () => {
    const included = `file://${path.join(root, 'included')}`;
    const run = await cli(['snapshot', `dir://${source}`, '--include', 'assets', '--include', 'logs/*.log', '--local', '--json', '--repo', included]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, 'snapworker: warning: unmatched include pattern "logs/*.log": no path under the source root matches it\n');
    const record = JSON.parse(run.stdout);
    assert.deepEqual(record.notices, {
      counts: { unmatched: 1 },
      first: [{ kind: 'unmatched', path: 'include pattern "logs/*.log"', reason: 'no path under the source root matches it' }],
      truncated: false,
    });
    assert.equal(record.incomplete, undefined, 'not incomplete: nothing that exists was left out');

    const nothing = await cli(['snapshot', `dir://${source}`, '--include', 'nosuch', '--local', '--repo', included]);
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(nothing.stdout, /: 0 entries, .*; 1 include pattern\(s\) matched nothing\n$/);
    assert.match(nothing.stderr, /warning: unmatched include pattern "nosuch"/);
  });

  it('Ctrl-C stops a --local job: exit 130, one line, no snapshot recorded', async () => {
    const slow = path.join(root, 'slow');
    await mkdir(slow);
    const handle = await open(path.join(slow, 'zeros.bin'), 'w');
    await handle.truncate(64 * 1024 ** 3); // sparse: minutes of reading, no disk
    await handle.close();
    const interruptedRepo = path.join(root, 'interrupted');
    const run = spawnCli(['snapshot', `dir://${slow}`, '--local', '--repo', `file://${interruptedRepo}`]);
    // The repository is created (SNAPWORKER_AUTO_INIT) right before the source is read.
    await eventually('the snapshot to start', () => stat(path.join(interruptedRepo, 'config.json')).then(() => true, () => false), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    run.child.kill('SIGINT');
    const result = await run.done;
    assert.equal(result.code, 130, result.stderr);
    assert.equal(result.stderr, 'snapworker: snapshot interrupted\n');
    const ls = await cli(['ls', '--repo', `file://${interruptedRepo}`, '--json']);
    assert.deepEqual(JSON.parse(ls.stdout), []);
  });

  describe('with a worker', () => {
    const fixture = useTestWorker();

    it('enqueues and prints the job id, or follows the job with --wait until it ends', async () => {
      const { environment } = fixture;
      const src = path.join(environment.root, 'queued');
      await makeTree(src, { 'a.txt': 'a'.repeat(1000) });
      const enqueued = await cli(['snapshot', `dir://${src}`], environment.env);
      assert.equal(enqueued.code, 0, enqueued.stderr);
      const jobId = enqueued.stdout.trim();
      const job = await environment.queue.getJob(jobId);
      assert.ok(job, 'the printed id is a job on the queue');
      await job.waitUntilFinished(environment.events, 60_000);

      const waited = await cli(['snapshot', `dir://${src}`, '--wait', '--json'], environment.env);
      assert.equal(waited.code, 0, waited.stderr);
      assert.equal(JSON.parse(waited.stdout).source.name, 'queued');

      const failed = await cli(['verify', '20200101T000000000Z-00000000', '--wait'], environment.env);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, /failed: .*no snapshot 20200101T000000000Z-00000000/);
      assert.equal(await readFile(path.join(src, 'a.txt'), 'utf8'), 'a'.repeat(1000));
    });
  });
});
