import { IntegrityError } from '../../errors.js';
import type { EntryHeader, FileIdentity } from '../../snapshot/entry.js';
import { showPath } from '../archive/safe-path.js';
import { encodeTree, nodeFrom, type FileContent, type TreeNode } from './tree-node.js';

/** Stores one tree object; resolves with its blob id. */
export type SaveTree = (bytes: Buffer) => Promise<string>;

interface OpenDirectory {
  /** Path of the directory ('' for the root), without a trailing slash. */
  path: string;
  /** Its entry; undefined while implied (no entry of its own seen, e.g. `data/`). */
  header: EntryHeader | undefined;
  nodes: TreeNode[];
  /** Names in `nodes`: a second node of one name means the entries were out of tree order. */
  names: Set<string>;
}

/**
 * Turns a snapshot's entries, in the order a source yields them, into tree objects bottom-up:
 * each directory's object is stored when the walk leaves it, so memory holds only the open
 * directories on the current path (restic's tree saver). Entries under one directory must come
 * together (depth first), as every kind yields them; a directory's entry may come before or
 * after its children (before, as sources do). Paths are checked for safety by the caller.
 */
export class TreeBuilder {
  private readonly stack: OpenDirectory[] = [openDirectory('', undefined)];

  constructor(private readonly saveTree: SaveTree) {}

  /** Adds a directory entry: later entries under its path go into its tree. */
  async addDirectory(header: EntryHeader): Promise<void> {
    await this.openParentsOf(header.path);
    const top = this.stack.at(-1)!;
    if (top.path === header.path && top.header === undefined) top.header = header; // implied so far
    else this.stack.push(openDirectory(header.path, header));
  }

  /** Adds any other entry, with a file's content. */
  async addLeaf(header: EntryHeader & { identity?: FileIdentity }, content: FileContent | undefined): Promise<void> {
    await this.openParentsOf(header.path);
    append(this.stack.at(-1)!, nodeFrom(baseName(header.path), header, content ? { content } : {}));
  }

  /** Stores every open directory and the root; resolves with the root tree's id. */
  async finish(): Promise<string> {
    while (this.stack.length > 1) await this.close();
    return this.saveTree(encodeTree(this.stack[0]!.nodes));
  }

  /** Closes directories `path` is not under, then opens implied ones down to its parent. */
  private async openParentsOf(path: string): Promise<void> {
    while (this.stack.length > 1 && !path.startsWith(`${this.stack.at(-1)!.path}/`)) {
      if (path === this.stack.at(-1)!.path) break; // the directory's own entry after its children
      await this.close();
    }
    const parent = parentPath(path);
    const top = this.stack.at(-1)!;
    if (parent === top.path || path === top.path) return;
    // Implied directories between the open one and the entry.
    const rest = parent.slice(top.path === '' ? 0 : top.path.length + 1).split('/');
    let current = top.path;
    for (const component of rest) {
      current = current === '' ? component : `${current}/${component}`;
      this.stack.push(openDirectory(current, undefined));
    }
  }

  private async close(): Promise<void> {
    const directory = this.stack.pop()!;
    const tree = await this.saveTree(encodeTree(directory.nodes));
    const header: EntryHeader = directory.header ?? { path: directory.path, type: 'directory', mode: 0, mtime: new Date(0), mtimeNs: 0n, size: 0 };
    append(this.stack.at(-1)!, nodeFrom(baseName(directory.path), header, { tree, implied: directory.header === undefined }));
  }
}

function openDirectory(path: string, header: EntryHeader | undefined): OpenDirectory {
  return { path, header, nodes: [], names: new Set() };
}

/** Entries under a directory already stored would give it a second node of the same name. */
function append(directory: OpenDirectory, node: TreeNode): void {
  if (directory.names.has(node.name)) {
    const path = directory.path === '' ? node.name : `${directory.path}/${node.name}`;
    throw new IntegrityError(`chunked: entry ${showPath(path)}: a second entry of this path, or entries under it after its directory was stored (entries out of tree order)`);
  }
  directory.names.add(node.name);
  directory.nodes.push(node);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}
