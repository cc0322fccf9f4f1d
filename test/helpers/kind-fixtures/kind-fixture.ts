/**
 * What one kind gives the conformance suite (`../kind-suite.ts`): a way to make a small source of
 * that kind with real content, a place to restore it to, and a way to read content back in a
 * comparable form. Test code only; a kind adds one file here and one line in `index.ts`.
 */
export interface KindFixture {
  /** The kind as registered (`shared/kinds/<kind>/index.ts`). */
  kind: string;
  /** Why the suite cannot run on this machine (a service unreachable), or false. Default false. */
  skip?(): Promise<string | false>;
  /** Worker configuration the kind needs besides repository, paths and staging (e.g. allowed servers, profiles). */
  env?: Record<string, string>;
  /**
   * Makes a fresh source with some content. `root` is a private, empty directory inside the
   * worker's allowed paths; anything outside it (streams, databases) gets a unique name.
   * @returns the source's URIs (several where the kind takes several).
   */
  createSource(root: string): Promise<string[]>;
  /**
   * URIs of a target that does not exist yet, shaped like `source` (as many databases, ...). A kind
   * that cannot restore under another name (NATS streams) removes the source and returns its URIs.
   */
  freshTarget(root: string, source: string[]): Promise<string[]>;
  /** The content at `uris` in a form `assert.deepEqual` compares (what a round trip keeps), or undefined when nothing is there. */
  readContent(uris: string[]): Promise<unknown>;
  /** Removes what the fixture made outside `root` under these URIs (streams, databases). */
  cleanup?(uris: string[]): Promise<void>;
  /** Closes connections the fixture opened, after the suite. */
  close?(): Promise<void>;
}
