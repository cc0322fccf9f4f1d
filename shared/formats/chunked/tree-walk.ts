import type { BlobStore } from './store/blob-store.js';
import { decodeTree, type TreeNode } from './tree-node.js';

/** One node met by `walkTree`, with its full payload path. */
export interface WalkedNode {
  path: string;
  node: TreeNode;
}

/**
 * The nodes of a snapshot's trees depth first, in stored order, a directory before its children;
 * implied directories are descended but not yielded. Loads one tree object at a time (memory:
 * the node lists of the directories on the current path). `descend` may refuse a directory's
 * subtree (then its tree is not loaded). A tree referencing an ancestor cannot loop forever:
 * paths grow with depth and the caller's path check refuses them past PATH_MAX.
 * @throws IntegrityError for a tree object that is missing, damaged or malformed.
 */
export async function* walkTree(
  store: BlobStore,
  root: string,
  options: { signal: AbortSignal; where: string; descend?: (path: string, node: TreeNode) => boolean },
): AsyncGenerator<WalkedNode> {
  const load = async (id: string, path: string) =>
    decodeTree(await store.load(id, { signal: options.signal }), `${options.where}, tree of ${path === '' ? '/' : path}`);
  const stack: Array<{ path: string; nodes: TreeNode[]; next: number }> = [{ path: '', nodes: await load(root, ''), next: 0 }];
  while (stack.length > 0) {
    const top = stack.at(-1)!;
    if (top.next === top.nodes.length) {
      stack.pop();
      continue;
    }
    const node = top.nodes[top.next++]!;
    const path = top.path === '' ? node.name : `${top.path}/${node.name}`;
    if (node.type !== 'implied') yield { path, node };
    if (node.tree !== undefined && (options.descend?.(path, node) ?? true)) {
      stack.push({ path, nodes: await load(node.tree, path), next: 0 });
    }
  }
}
