import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DASHBOARD_PATH = join(REPO_ROOT, 'helm/snapworker/dashboards/snapworker.json');
export const RULES_PATH = join(REPO_ROOT, 'helm/snapworker/rules/snapworker-alerts.yaml');
export const RULES_TEST_PATH = join(REPO_ROOT, 'helm/snapworker/rules/snapworker-alerts.test.yaml');
export const EVENT_SCHEMA_PATH = join(REPO_ROOT, 'docs/schemas/event.schema.json');

/**
 * Names a query may use that no worker exports: Prometheus's own `up`, and the per-source
 * staleness override operators define as a recording rule (docs/observability.md).
 */
export const NON_WORKER_METRICS = new Set(['up', 'snapworker:source_max_age_seconds', 'snapworker:replication_max_lag_seconds']);

/** Grafana's interval variables, replaced by a fixed window to evaluate panel queries in Prometheus. */
export function substituteGrafanaVariables(expr: string, window = '1m'): string {
  return expr.replaceAll('$__rate_interval', window).replaceAll('$__interval', window).replaceAll('$__range', window);
}

/** Every query of the dashboard, with the panel title for messages. */
export async function dashboardQueries(): Promise<Array<{ panel: string; expr: string }>> {
  const dashboard = JSON.parse(await readFile(DASHBOARD_PATH, 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr?: string }> }>;
  };
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).filter((target) => target.expr).map((target) => ({ panel: panel.title, expr: target.expr! })),
  );
}

/** Every alert of the rules file with its expression. */
export async function alertRules(): Promise<Array<{ alert: string; expr: string }>> {
  const file = parseYaml(await readFile(RULES_PATH, 'utf8')) as {
    groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }>;
  };
  return file.groups.flatMap((group) =>
    group.rules.map((rule) => ({ alert: rule.alert ?? rule.record ?? '?', expr: rule.expr.trim() })),
  );
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. Strips strings, label matchers, ranges, grouping
 * clauses and function calls, then takes the identifiers left. Good for the expressions of this
 * project (tested against them), not a full PromQL parser.
 */
export function metricNamesIn(expr: string): Set<string> {
  const stripped = substituteGrafanaVariables(expr)
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/[A-Za-z_][A-Za-z0-9_]*\s*\(/g, '(');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    if (!PROMQL_WORDS.has(match[0].toLowerCase())) names.add(match[0]);
  }
  return names;
}

/** The sample names (with `_bucket`, `_sum`, `_count` for histograms) in a Prometheus text exposition. */
export function sampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    names.add(line.split(/[{ ]/, 1)[0]!);
  }
  return names;
}

/** The promtool binary; throws (never skips) when it is missing, as CI must install it. */
export function promtoolBinary(): string {
  return requireBinary('promtool');
}

export function prometheusBinary(): string {
  return requireBinary('prometheus');
}

function requireBinary(name: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name} || ls /usr/bin/${name}`], { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    throw new Error(`${name} not found: install the Debian package "prometheus" (apt-get install -y prometheus)`);
  }
}

/** Runs a command with optional stdin; resolves with exit code and output, never rejects on a non-zero exit. */
export function run(command: string, args: string[], options: { input?: string; cwd?: string } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(options.input ?? '');
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` every 50 ms until it is truthy; throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** A child process listening on a fixed port of 127.0.0.1, stoppable and restartable on that port. */
export interface RestartableServer {
  port: number;
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the process and removes its directory. */
  dispose(): Promise<void>;
}

/** A private core NATS server (no JetStream needed for events) on a free port. */
export async function startRestartableNats(): Promise<RestartableServer> {
  const port = await freePort();
  const server = await startRestartable(port, `nats://127.0.0.1:${port}`, () => ({
    command: '/usr/sbin/nats-server',
    args: ['-a', '127.0.0.1', '-p', String(port)],
  }));
  return server;
}

/** A private Prometheus with its own config, rules and storage directory, on a free port. */
export async function startPrometheus(options: { scrapeTargets: string[]; ruleFiles: string[]; intervalSeconds?: number }): Promise<RestartableServer & { dir: string }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'snapworker-prometheus-'));
  const interval = `${options.intervalSeconds ?? 1}s`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles,
    scrape_configs: [{ job_name: 'snapworker', static_configs: [{ targets: options.scrapeTargets }] }],
  };
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config));
  const server = await startRestartable(port, `http://127.0.0.1:${port}`, () => ({
    command: prometheusBinary(),
    args: [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
  }), dir);
  return { ...server, dir };
}

async function startRestartable(
  port: number,
  url: string,
  spec: () => { command: string; args: string[] },
  dir?: string,
): Promise<RestartableServer> {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  const start = async (): Promise<void> => {
    const { command, args } = spec();
    const process = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = process;
    exited = new Promise((resolve) => process.once('exit', () => resolve()));
    const keep = (chunk: Buffer): void => {
      log = (log + chunk.toString()).slice(-4000);
    };
    process.stdout!.on('data', keep);
    process.stderr!.on('data', keep);
    await waitFor(`${command} on port ${port} (log: ${log})`, async () => {
      if (process.exitCode !== null) throw new Error(`${command} exited with ${process.exitCode}: ${log}`);
      return portOpen(port);
    }, 20_000);
  };
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url,
    start,
    stop,
    dispose: async () => {
      await stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

const BINARY_OPERATOR = /^(?:>=|<=|==|!=|>|<|and\b|or\b|unless\b)/;
const OPERATOR_MODIFIER = /^\s*(?:bool\b|(?:on|ignoring|group_left|group_right)\s*\([^)]*\))/;

/**
 * The operands of an alert expression's top-level comparisons and set operations, without
 * number literals, and `absent(x)` as `x`: the series that must have data for the alert to be
 * able to fire. (A whole alert expression is empty while it does not fire.)
 */
export function alertSignals(expr: string): string[] {
  const operands: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let current = '';
  for (let i = 0; i < expr.length; i++) {
    const char = expr[i]!;
    if (quote) {
      current += char;
      if (char === '\\') current += expr[++i] ?? '';
      else if (char === quote) quote = undefined;
      continue;
    }
    if (char === '"' || char === "'") quote = char;
    if ('([{'.includes(char)) depth++;
    if (')]}'.includes(char)) depth--;
    const operator = depth === 0 && /[\s)><=!]/.test(expr[i - 1] ?? ' ') ? BINARY_OPERATOR.exec(expr.slice(i)) : null;
    if (operator) {
      operands.push(current);
      current = '';
      i += operator[0].length;
      let modifier: RegExpExecArray | null;
      while ((modifier = OPERATOR_MODIFIER.exec(expr.slice(i)))) i += modifier[0].length;
      i--;
      continue;
    }
    current += char;
  }
  operands.push(current);
  return operands
    .map((operand) => operand.trim())
    .filter((operand) => operand !== '' && !/^-?[0-9.e+]+$/.test(operand))
    .map((operand) => /^absent\((.*)\)$/s.exec(operand)?.[1]?.trim() ?? operand);
}
