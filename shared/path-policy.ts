import { realpathSync } from 'node:fs';
import path from 'node:path';
import { InvalidInputError, UnsafePathError } from './errors.js';

/**
 * Limits the paths jobs may read and write to the worker's configured roots. A path is allowed
 * when it lies inside a root after resolving symlinks of its nearest existing ancestor, so a link
 * planted inside an allowed root cannot lead a job outside it.
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

  /** Throws `UnsafePathError` unless `absPath` is inside an allowed root. */
  check(absPath: string): void {
    if (!path.isAbsolute(absPath)) throw new InvalidInputError(`path ${absPath} is not absolute`);
    const real = realExisting(path.resolve(absPath));
    const inside = this.roots.some((root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
    if (!inside) {
      throw new UnsafePathError(`path ${absPath} is outside the allowed paths (${this.roots.join(', ')}); see SNAPWORKER_ALLOWED_PATHS`);
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
