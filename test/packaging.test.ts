import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BENCH_FLAGS } from '../bench/bench-args.js';
import { quietSdkNodeVersionWarning, SDK_NODE_WARNING_VARIABLE, SUPPORTED_NODE_MAJORS } from '../shared/storage/s3/node-version-warning.js';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in the project root with `env` over this process's environment minus `unset`. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, unset: string[] = []): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of unset) delete childEnv[name];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const SDK_WARNING = /NodeVersionSupportWarning|AWS SDK for JavaScript/;
const NODE_MAJOR = Number.parseInt(process.versions.node, 10);

describe('packaging: Node versions, the AWS SDK warning, the bench command line', () => {
  it('declares in package.json engines the oldest Node major the project supports, and runs on a supported one', async () => {
    const pkg = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(pkg.engines.node, `>=${Math.min(...SUPPORTED_NODE_MAJORS)}`);
    assert.ok(SUPPORTED_NODE_MAJORS.includes(NODE_MAJOR), `tests run on Node ${process.versions.node}, not a supported major`);
  });

  it('switches the AWS SDK Node version warning off only on a supported Node below 22, and never over an operator setting', () => {
    const cases: Array<[string, NodeJS.ProcessEnv, string | undefined]> = [
      ['20.20.2', {}, 'true'],
      ['18.20.8', {}, undefined],
      ['22.12.0', {}, undefined],
      ['24.1.0', {}, undefined],
      ['20.20.2', { [SDK_NODE_WARNING_VARIABLE]: 'false' }, 'false'],
    ];
    for (const [version, env, expected] of cases) {
      quietSdkNodeVersionWarning(env, version);
      assert.equal(env[SDK_NODE_WARNING_VARIABLE], expected, `Node ${version}, env ${JSON.stringify(env)}`);
    }
  });

  describe('S3 commands on this Node', () => {
    let s3: S3rverHandle;
    let repo: string;
    before(async () => {
      s3 = await startS3rver('packaging');
      repo = `s3://${s3.bucket}/repo?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&forcePathStyle=true&checksum=when_required`;
    });
    after(async () => {
      await s3?.stop();
    });

    it('prints no AWS SDK Node version warning from snapworker ls --repo s3://…', async () => {
      const ls = await run(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'worker', 'cli.ts'), 'ls', '--repo', repo], {}, [SDK_NODE_WARNING_VARIABLE]);
      assert.doesNotMatch(ls.stderr + ls.stdout, SDK_WARNING);
      assert.ok(ls.code === 0 || ls.code === 10, `ls answered (exit ${ls.code}): ${ls.stderr}`);
    });

    it('would print the warning on this Node without the switch (the check above can fail)', async (t) => {
      if (NODE_MAJOR >= 22) {
        t.diagnostic(`Node ${process.versions.node}: the SDK does not warn on it, nothing to compare`);
        return;
      }
      const script = "import { S3Client } from '@aws-sdk/client-s3'; new S3Client({ region: 'us-east-1' });";
      const bare = await run(process.execPath, ['--input-type=module', '-e', script], {}, [SDK_NODE_WARNING_VARIABLE]);
      assert.match(bare.stderr, SDK_WARNING);
    });
  });

  it('npm run bench -- --help lists every bench flag and says that a run rewrites docs/benchmarks.md, exit 0', async () => {
    const help = await run('npm', ['run', '--silent', 'bench', '--', '--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const flag of BENCH_FLAGS) assert.match(help.stdout, new RegExp(`${flag}\\b`), `help lists ${flag}`);
    assert.match(help.stdout, /Unless --no-write is given, it then REWRITES its\s+section of docs\/benchmarks\.md/);
    assert.equal(help.stderr, '');
    const page = await readFile(path.join(PROJECT_ROOT, 'docs', 'benchmarks.md'), 'utf8');
    assert.match(page, /rewrites its own section of this page[^.]*unless given `--no-write`/);
    for (const flag of BENCH_FLAGS.filter((f) => f !== '--help')) assert.match(page, new RegExp(`\`${flag}\\b`), `docs/benchmarks.md lists ${flag}`);
  });

  it('npm run bench refuses an unknown flag, a positional argument and bad values with one line and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--lable'], /^bench: Unknown option '--lable' \(see npm run bench -- --help\)\n$/],
      [['extra'], /^bench: Unexpected argument 'extra'/],
      [['--rounds', 'three'], /^bench: --rounds three: must be a whole number of at least 1/],
      [['--rounds', '0'], /^bench: --rounds 0: must be a whole number/],
      [['--memory', '0'], /^bench: --memory 0: must be a number of GiB above 0/],
      [['--memory', '-1'], /^bench: Option '--memory' argument is ambiguous/],
      [['--rounds'], /^bench: Option '--rounds <value>' argument missing/],
      [['--fleet', '--fleet-jobs', '0'], /^bench: --fleet-jobs 0: must be a whole number of at least 1/],
      [['--fleet', '--full'], /^bench: --full does not apply with --fleet/],
      [['--fleet-jobs', '10'], /^bench: --fleet-jobs applies only with --fleet/],
    ];
    for (const [args, message] of cases) {
      const refused = await run(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'run.ts'), ...args]);
      assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.stderr}`);
      assert.match(refused.stderr, message, args.join(' '));
      assert.equal(refused.stderr.trimEnd().split('\n').length, 1, `${args.join(' ')}: one line`);
      assert.equal(refused.stdout, '', `${args.join(' ')}: nothing started`);
    }
  });
});
