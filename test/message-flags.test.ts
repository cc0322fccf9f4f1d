import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ALL_FLAG_SPECS } from '../worker/commands/commands.js';
import { PROJECT_ROOT } from './helpers/worker-fixture.js';

/** Every `.ts` file under `dir`, recursively. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe('messages that name a flag', () => {
  it('name only flags the command line has (comments may cite other tools)', () => {
    const known = new Set([...ALL_FLAG_SPECS.keys(), 'version']);
    const unknown: string[] = [];
    for (const folder of ['shared', 'worker', 'jobs']) {
      for (const file of sourceFiles(path.join(PROJECT_ROOT, folder))) {
        readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, index) => {
            if (/^\s*(\*|\/\/|\/\*)/.test(line)) return;
            // A flag right after a quote is a whole argument of another tool (`['--format=directory', …]`
            // for pg_dump), not a message naming one of ours.
            for (const [, name] of line.replace(/\/\/ .*$/, '').matchAll(/(?<![\w'"`-])--([a-z][a-z0-9-]*)/g)) {
              if (!known.has(name!)) unknown.push(`${path.relative(PROJECT_ROOT, file)}:${index + 1}: --${name}`);
            }
          });
      }
    }
    assert.deepEqual(unknown, []);
  });
});
