import { realpathSync } from 'node:fs';
import path from 'node:path';
import { InvalidInputError, UnsafePathError } from './errors.js';

/** What a checked path is for: a target must lie strictly inside a root, a source may be a root. */
export type PathRole = 'source' | 'target';

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

  /** @param roots absolute directories; each is resolved through symlinks once, here. */
  constructor(roots: readonly string[]) {
    if (roots.length === 0) throw new InvalidInputError('path policy: no allowed roots configured');
    this.roots = roots.map((root) => {
      if (!path.isAbsolute(root)) throw new InvalidInputError(`path policy: allowed root ${root} is not absolute`);
      return realExisting(path.resolve(root));
    });
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
    const inside = this.roots.some((root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
    if (!inside) {
      throw new UnsafePathError(`${role} path ${absPath} is outside the allowed paths (${this.roots.join(', ')}); see SNAPWORKER_ALLOWED_PATHS`);
    }
  }
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
