import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

/** Debian packages that provide Go, sprig and sigs.k8s.io/yaml for the renderer in this folder. */
export const GO_RENDERER_APT_PACKAGES = [
  'golang-go',
  'golang-github-masterminds-sprig-dev',
  'golang-k8s-sigs-yaml-dev',
] as const;

/** A rendered Kubernetes object, as parsed from the YAML stream. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RenderOptions {
  /** Values files applied over the chart's values.yaml, later ones winning. */
  valuesFiles?: string[];
  /** Values applied last (written to a temporary values file). */
  values?: Record<string, unknown>;
  /** Default `snap`. */
  releaseName?: string;
  /** Default `jobs`. */
  namespace?: string;
}

export interface RenderedChart {
  manifests: Manifest[];
  /** The merged values the templates saw; null with real helm, which checks the schema itself. */
  values: Record<string, unknown> | null;
  /** templates/NOTES.txt rendered; null with real helm (`helm lint` renders it instead). */
  notes: string | null;
}

/** Raised when the chart refuses to render (a `required`/`fail` message, a template error). */
export class ChartRenderError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ChartRenderError';
  }
}

interface ExecFailure {
  stderr?: string;
  code?: string | number;
}

/**
 * Renders a Helm chart into parsed manifests: with the real `helm template` when helm is on
 * PATH, otherwise with the Go text/template + sprig renderer in this folder, built once into a
 * temporary directory. Without helm, Go is required: its absence is an error, never a skip.
 *
 * Call `close()` to remove the build and scratch files.
 */
export class ChartRenderer {
  private constructor(
    readonly engine: 'helm' | 'go',
    private readonly binary: string,
    private readonly scratchDir: string,
  ) {}

  /** Finds helm, or builds the Go renderer. Throws with the apt packages to install when neither works. */
  static async create(): Promise<ChartRenderer> {
    const scratchDir = await mkdtemp(path.join(tmpdir(), 'snapworker-helm-'));
    try {
      if (await commandWorks('helm', ['version', '--short'])) {
        return new ChartRenderer('helm', 'helm', scratchDir);
      }
      const binary = path.join(scratchDir, 'helm-render');
      await buildGoRenderer(binary, scratchDir);
      return new ChartRenderer('go', binary, scratchDir);
    } catch (error) {
      await rm(scratchDir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Renders `chartDir` with the given values.
   * @throws ChartRenderError when the chart refuses the values; its message is the renderer's.
   */
  async render(chartDir: string, options: RenderOptions = {}): Promise<RenderedChart> {
    const releaseName = options.releaseName ?? 'snap';
    const namespace = options.namespace ?? 'jobs';
    const valuesFiles = [...(options.valuesFiles ?? [])];
    const runDir = await mkdtemp(path.join(this.scratchDir, 'render-'));
    try {
      if (options.values) {
        const inlineFile = path.join(runDir, 'inline-values.json');
        await writeFile(inlineFile, JSON.stringify(options.values));
        valuesFiles.push(inlineFile);
      }
      const valueArgs = valuesFiles.flatMap((file) => ['-f', file]);
      if (this.engine === 'helm') {
        const stdout = await this.exec(['template', releaseName, chartDir, '-n', namespace, ...valueArgs]);
        return { manifests: parseManifests(stdout), values: null, notes: null };
      }
      const valuesOut = path.join(runDir, 'values.json');
      const notesOut = path.join(runDir, 'NOTES.txt');
      const stdout = await this.exec([
        '--name', releaseName, '-n', namespace, ...valueArgs,
        '--values-out', valuesOut, '--notes-out', notesOut, chartDir,
      ]);
      return {
        manifests: parseManifests(stdout),
        values: JSON.parse(await readFile(valuesOut, 'utf8')) as Record<string, unknown>,
        notes: await readFile(notesOut, 'utf8'),
      };
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }

  /** `helm lint --strict` with each values file; null when only the Go renderer is available. */
  async lint(chartDir: string, valuesFiles: string[] = []): Promise<string | null> {
    if (this.engine !== 'helm') return null;
    return this.exec(['lint', '--strict', chartDir, ...valuesFiles.flatMap((file) => ['-f', file])]);
  }

  async close(): Promise<void> {
    await rm(this.scratchDir, { recursive: true, force: true });
  }

  private async exec(args: string[]): Promise<string> {
    try {
      const { stdout } = await run(this.binary, args, { maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const stderr = (error as ExecFailure).stderr?.trim();
      throw new ChartRenderError(`${this.engine} render: ${stderr || (error as Error).message}`, { cause: error });
    }
  }
}

/** Parses a multi-document YAML stream, dropping empty documents (comments only). */
export function parseManifests(stream: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const document of parseAllDocuments(stream)) {
    if (document.errors.length > 0) {
      throw new ChartRenderError(`rendered YAML does not parse: ${document.errors[0]!.message}`);
    }
    const value = document.toJS() as Manifest | null;
    if (value !== null) manifests.push(value);
  }
  return manifests;
}

async function commandWorks(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args);
    return true;
  } catch {
    return false;
  }
}

async function buildGoRenderer(binary: string, scratchDir: string): Promise<void> {
  const sourceDir = path.dirname(fileURLToPath(import.meta.url));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Debian installs the Go libraries as a GOPATH tree, not as modules.
    GOPATH: '/usr/share/gocode',
    GO111MODULE: 'off',
    GOFLAGS: '',
  };
  // Go refuses to build without a cache directory; CI containers may have no HOME.
  if (!env.GOCACHE && !env.HOME && !env.XDG_CACHE_HOME) env.GOCACHE = path.join(scratchDir, 'go-cache');
  try {
    await run('go', ['build', '-o', binary, '.'], { cwd: sourceDir, env });
  } catch (error) {
    const failure = error as ExecFailure;
    const reason = failure.code === 'ENOENT' ? 'the go command is not installed' : failure.stderr?.trim();
    throw new Error(
      `build the Go chart renderer (needed because helm is not on PATH): ${reason}. ` +
        `Install: apt-get install -y ${GO_RENDERER_APT_PACKAGES.join(' ')}`,
      { cause: error },
    );
  }
}
