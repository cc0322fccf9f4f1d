import type { EntryHeader, FileIdentity } from '../../snapshot/entry.js';
import { entryMtimeNs } from '../../snapshot/entry.js';
import type { UnchangedFiles } from '../../snapshot/unchanged-files.js';
import type { BlobStore } from './store/blob-store.js';
import { decodeTree, type FileContent, type TreeNode } from './tree-node.js';

/**
 * Directories kept decoded at once. The walk is depth first, so the open path and its recent
 * siblings hit; memory is bounded by this many directories' node lists.
 */
const CACHED_DIRECTORIES = 128;

/**
 * The parent snapshot of an incremental snapshot, looked up by entry path (restic's `--parent`):
 * a file whose size, mtime, ctime and inode equal the parent's node is taken as unchanged and its
 * chunk list reused without reading it. The device number is stored but not compared: it changes
 * across reboots, LVM snapshots and container mounts while the file does not (restic's
 * `--ignore-inode` goes further; we do not). Trees are loaded lazily, one directory at a time.
 */
export class ParentTree implements UnchangedFiles {
  private readonly directories = new Map<string, Promise<Map<string, TreeNode> | undefined>>();

  /**
   * @param snapshotId the parent's id, recorded as the new snapshot's `parent`.
   * @param root the parent's root tree id.
   */
  constructor(
    private readonly store: BlobStore,
    readonly snapshotId: string,
    private readonly root: string,
    private readonly signal: AbortSignal,
  ) {}

  async isUnchanged(entry: EntryHeader & { identity?: FileIdentity }): Promise<boolean> {
    return (await this.reusable(entry)) !== undefined;
  }

  /** The parent's content of this file when it is unchanged (see the class comment), else undefined. */
  async reusable(entry: EntryHeader & { identity?: FileIdentity }): Promise<FileContent | undefined> {
    const { identity } = entry;
    if (entry.type !== 'file' || !identity) return undefined;
    const slash = entry.path.lastIndexOf('/');
    const directory = await this.directory(slash === -1 ? '' : entry.path.slice(0, slash));
    const node = directory?.get(entry.path.slice(slash + 1));
    if (
      node?.type !== 'file' ||
      node.size !== entry.size ||
      node.mtimeNs !== entryMtimeNs(entry).toString() ||
      node.ctimeNs !== identity.ctimeNs.toString() ||
      node.inode !== identity.inode.toString()
    ) {
      return undefined;
    }
    return { chunks: node.chunks!, sha256: node.sha256!, ...(node.sparse ? { sparse: node.sparse.map(([offset, length]) => ({ offset, length })) } : {}) };
  }

  /** The nodes of the parent's directory at `path` by name; undefined when the parent has none there. */
  private directory(path: string): Promise<Map<string, TreeNode> | undefined> {
    let found = this.directories.get(path);
    if (found) {
      // Most recently used last: Map keeps insertion order, so the oldest is evicted first.
      this.directories.delete(path);
      this.directories.set(path, found);
      return found;
    }
    found = this.loadDirectory(path);
    found.catch(() => this.directories.delete(path));
    this.directories.set(path, found);
    if (this.directories.size > CACHED_DIRECTORIES) this.directories.delete(this.directories.keys().next().value!);
    return found;
  }

  private async loadDirectory(path: string): Promise<Map<string, TreeNode> | undefined> {
    let tree: string | undefined = this.root;
    if (path !== '') {
      const slash = path.lastIndexOf('/');
      const parent = await this.directory(slash === -1 ? '' : path.slice(0, slash));
      tree = parent?.get(path.slice(slash + 1))?.tree;
    }
    if (tree === undefined) return undefined;
    const nodes = decodeTree(await this.store.load(tree, { signal: this.signal }), `parent snapshot ${this.snapshotId}, tree of ${path || '/'}`);
    return new Map(nodes.map((node) => [node.name, node]));
  }
}
