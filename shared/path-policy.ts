import { realpathSync } from 'node:fs';
import path from 'node:path';
import { InvalidInputError, UnsafePathError } from './errors.js';

/** What a checked path is for: a target must lie strictly inside a root, a source may be a root. */
export type PathRole = 'source' | 'target';

/**
 * A directory the worker itself depends on (a file repository, the staging directory): a restore
 * target may never be it or contain it, since replacing the target would delete it; with
 * `noTargetsInside`, a target may not lie inside it either (restoring into a repository's own
 * folders would overwrite its snapshots).
 */
export interface GuardedDir {
  path: string;
  /** How messages call it, e.g. `repository "default"`, `the staging directory`. */
  what: string;
  noTargetsInside: boolean;
}

/**
 * Limits the paths jobs may read and write to the worker's configured roots. A path is allowed
 * when it lies inside a root after resolving symlinks of its nearest existing ancestor, so a link
 * planted inside an allowed root cannot lead a job outside it.
 *
 * A restore target must lie strictly below a root: restoring onto the root itself would replace
 * everything in it, and the staging and old folders a target keeps beside itself would land in
 * the root's parent, outside the allowed paths.
 */
export class PathPolicy {
  private readonly roots: string[];
  private readonly guarded: GuardedDir[];

  /**
   * @param roots absolute directories; each is resolved through symlinks once, here.
   * @param guarded directories restores must never replace (repositories, staging), resolved likewise.
   */
  constructor(roots: readonly string[], guarded: readonly GuardedDir[] = []) {
    if (roots.length === 0) throw new InvalidInputError('path policy: no allowed roots configured');
    this.roots = roots.map((root) => {
      if (!path.isAbsolute(root)) throw new InvalidInputError(`path policy: allowed root ${root} is not absolute`);
      return realExisting(path.resolve(root));
    });
    this.guarded = guarded.map((dir) => ({ ...dir, path: realExisting(path.resolve(dir.path)) }));
  }

  /**
   * Throws unless `absPath` may be used as `role`: inside an allowed root (a source may be a root
   * itself, a target must be strictly below one), symlinks resolved.
   * @throws InvalidInputError for a relative path; UnsafePathError naming the role, the path and the roots.
   */
  check(absPath: string, role: PathRole): void {
    if (!path.isAbsolute(absPath)) throw new InvalidInputError(`${role} path ${absPath} is not absolute`);
    const real = realExisting(path.resolve(absPath));
    if (role === 'target' && this.roots.includes(real)) {
      throw new UnsafePathError(
        `target path ${absPath} is an allowed root itself; restore into a directory inside it (see SNAPWORKER_ALLOWED_PATHS)`,
      );
    }
    if (!this.roots.some((root) => real === root || isBelow(real, root))) {
      throw new UnsafePathError(`${role} path ${absPath} is outside the allowed paths (${this.roots.join(', ')}); see SNAPWORKER_ALLOWED_PATHS`);
    }
    if (role === 'target') this.checkGuarded(absPath, real);
  }

  private checkGuarded(absPath: string, real: string): void {
    for (const dir of this.guarded) {
      if (real === dir.path || isBelow(dir.path, real)) {
        throw new UnsafePathError(`target path ${absPath} holds ${dir.what} (${dir.path}); a restore there would replace it`);
      }
      if (dir.noTargetsInside && isBelow(real, dir.path)) {
        throw new UnsafePathError(`target path ${absPath} lies inside ${dir.what} (${dir.path}); restore somewhere else`);
      }
    }
  }
}

/** Whether `p` lies strictly below the directory `dir` (both resolved). */
function isBelow(p: string, dir: string): boolean {
  return p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

/** Resolves symlinks of the longest existing prefix of `p` and appends the rest unchanged. */
function realExisting(p: string): string {
  const missing: string[] = [];
  let current = p;
  for (;;) {
    try {
      return path.join(realpathSync(current), ...missing.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return p;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}
