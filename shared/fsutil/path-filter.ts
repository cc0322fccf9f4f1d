import path from 'node:path';
import picomatch from 'picomatch';
import { InvalidInputError } from '../errors.js';

/**
 * Include/exclude selection of paths relative to a tree's root, with picomatch globs
 * (`dot: true`, so `*` and `**` match dot files too; `*` never crosses a `/`).
 *
 * - A path matching any `exclude` pattern is left out, and so is everything under it.
 * - With no `include` patterns everything not excluded is selected. Otherwise a path is selected
 *   when it, or one of its ancestor directories, matches an include pattern (`include: ['conf']`
 *   takes the whole `conf` subtree, `['**\/*.md']` every Markdown file at any depth).
 */
export class PathFilter {
  private readonly isIncludeMatch: ((p: string) => boolean) | undefined;
  private readonly isExcludeMatch: ((p: string) => boolean) | undefined;
  /** Literal leading directories of the include patterns (`src` for `src/**\/*.ts`, '' for `**\/x`). */
  private readonly includeBases: string[];
  private readonly include: readonly string[];
  private memo: { dir: string; included: boolean } | undefined;

  /** @throws InvalidInputError for an empty, absolute or malformed pattern, naming it. */
  constructor(include: readonly string[] = [], exclude: readonly string[] = []) {
    this.isIncludeMatch = compile(include, 'include');
    this.isExcludeMatch = compile(exclude, 'exclude');
    this.includeBases = include.map((pattern) => picomatch.scan(pattern).base);
    this.include = include;
  }

  /**
   * Follows which include patterns match a path of one walk: feed it every selected path (`see`),
   * then `unmatched` lists the patterns that matched none, in the order given. Each path is
   * tested only against the patterns still unmatched, so once all matched it costs nothing.
   */
  trackIncludes(): { see(relPath: string): void; unmatched(): string[] } {
    const pending = new Map(this.include.map((pattern) => [pattern, picomatch(pattern, { dot: true })]));
    return {
      see(relPath) {
        for (const [pattern, isMatch] of pending) if (isMatch(relPath)) pending.delete(pattern);
      },
      unmatched: () => [...pending.keys()],
    };
  }

  isExcluded(relPath: string): boolean {
    return this.isExcludeMatch?.(relPath) ?? false;
  }

  /** Whether the path is selected by the include patterns (itself or through an ancestor). */
  isIncluded(relPath: string): boolean {
    if (!this.isIncludeMatch) return true;
    if (this.isIncludeMatch(relPath)) return true;
    const parent = path.posix.dirname(relPath);
    return parent !== '.' && this.isDirectoryIncluded(parent);
  }

  /** Whether a directory that is not itself included may still hold included paths (so is worth listing). */
  mayContainIncluded(relDir: string): boolean {
    if (!this.isIncludeMatch) return true;
    return this.includeBases.some(
      (base) => base === '' || base === relDir || base.startsWith(`${relDir}/`) || relDir.startsWith(`${base}/`),
    );
  }

  // Siblings share their parent, so one remembered directory answers most ancestor questions.
  private isDirectoryIncluded(relDir: string): boolean {
    if (this.memo?.dir !== relDir) this.memo = { dir: relDir, included: this.isIncluded(relDir) };
    return this.memo.included;
  }
}

function compile(patterns: readonly string[], kind: string): ((p: string) => boolean) | undefined {
  if (patterns.length === 0) return undefined;
  for (const pattern of patterns) {
    if (typeof pattern !== 'string' || pattern.trim() === '') throw new InvalidInputError(`${kind} pattern ${JSON.stringify(pattern)} must be a non-empty glob relative to the root`);
    if (pattern.startsWith('/')) {
      // `files` prints paths with a leading "/": say what to write instead.
      throw new InvalidInputError(`${kind} pattern ${JSON.stringify(pattern)} must be relative to the root: ${JSON.stringify(pattern.replace(/^\/+/, '') || '**')}`);
    }
  }
  try {
    return picomatch([...patterns], { dot: true });
  } catch (cause) {
    throw new InvalidInputError(`${kind} patterns ${JSON.stringify(patterns)} are not valid globs`, { cause });
  }
}
