import type { PayloadLayout } from '../payload-layout.js';
import { refuseEntry } from '../payload-rules.js';

/** A directory snapshot: `data` (a directory: the restored root) and everything below `data/`. */
export function dirPayload(): PayloadLayout {
  return {
    check(header) {
      if (header.path === 'data') {
        if (header.type !== 'directory') refuseEntry('dir', header, 'data/ as a directory');
      } else if (!header.path.startsWith('data/')) {
        refuseEntry('dir', header, 'entries under data/');
      }
    },
    end() {},
  };
}
