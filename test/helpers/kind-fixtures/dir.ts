import { access } from 'node:fs/promises';
import path from 'node:path';
import { describeTree, dir, file, makeTree, symlink } from '../tree.js';
import type { KindFixture } from './kind-fixture.js';

/** A small tree: nested folders, modes, an empty file, a symlink. */
export const dirFixture: KindFixture = {
  kind: 'dir',
  async createSource(root) {
    const tree = path.join(root, 'source');
    await makeTree(tree, {
      'README.md': file('# app\n', { mode: 0o644 }),
      bin: dir({ run: file('#!/bin/sh\necho hi\n', { mode: 0o755 }) }),
      conf: dir({ 'app.conf': 'port = 8080\n', empty: file(''), current: symlink('app.conf') }, { mode: 0o750 }),
      data: dir({ 'blob.bin': Buffer.alloc(200_000, 7) }),
    });
    return [`dir://${tree}`];
  },
  async freshTarget(root) {
    return [`dir://${path.join(root, 'restored')}`];
  },
  async readContent([uri]) {
    const tree = new URL(uri!).pathname;
    if (!(await access(tree).then(() => true, () => false))) return undefined;
    return Object.fromEntries(await describeTree(tree));
  },
};
