import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** This tool's name and version, written into manifests and records. */
export const TOOL = { name: 'snapworker', version: readVersion() } as const;

function readVersion(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      return (require(candidate) as { version: string }).version;
    } catch {
      // compiled (dist/shared) or source (shared) layout: try the other
    }
  }
  return '0.0.0';
}
