import type { Repository } from '../catalog/repository.js';
import { InvalidInputError } from '../errors.js';
import type { SourceDescriptor } from '../snapshot/manifest.js';

/**
 * Refuses to add a snapshot to a lineage that holds another source's snapshots when the lineage
 * name was derived, not chosen: `/a/src` and `/b/src` both derive `src`, and one lineage holding
 * both would let `latest` restore the wrong tree and a retention policy (`keep-last 1`) remove
 * the only snapshot of the other directory. A name the job gives (`name`, `--name`) is the
 * caller's decision (a directory that moved, a renamed server) and is never refused. restic
 * avoids the same trap by grouping `forget` by host and paths.
 *
 * Reads one lineage of the catalog index.
 * @throws InvalidInputError naming both sources and the way out.
 */
export async function checkDerivedLineage(repository: Repository, descriptor: SourceDescriptor, signal: AbortSignal): Promise<void> {
  const latest = (await repository.index.snapshots({ source: descriptor.name }, { signal })).at(-1);
  if (latest === undefined || sameSource(latest.source.uri, descriptor.uri)) return;
  throw new InvalidInputError(
    `snapshot: lineage "${descriptor.name}" (named after the source) already holds snapshots of ${latest.source.uri}, not ${descriptor.uri}; ` +
      `give this source a lineage of its own with --name (job field "name"), or --name ${descriptor.name} to add it to that lineage on purpose`,
  );
}

/**
 * Whether two recorded source URIs name the same thing, however the job spelled them: a trailing
 * slash and percent-escapes do not make another directory (`dir:///a/src/` is `dir:///a/src`),
 * and the query only says how to reach it (`?profile=` picks credentials, which rotate).
 * Several URIs (SQLite's several databases) are compared one by one.
 */
function sameSource(a: string, b: string): boolean {
  const canonical = (uris: string) => uris.split(' ').map(canonicalUri).join(' ');
  return canonical(a) === canonical(b);
}

function canonicalUri(text: string): string {
  try {
    const url = new URL(text);
    const pathname = decodeURIComponent(url.pathname);
    return `${url.protocol}//${url.host}${pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname}`;
  } catch {
    return text;
  }
}
