import { IntegrityError } from '../../errors.js';
import type { PayloadLayout } from '../payload-layout.js';
import { refuseEntry } from '../payload-rules.js';
import { DATABASE_ENTRY_PREFIX } from './sqlite-uri.js';

/** A SQLite snapshot: one or more regular files `databases/<name>`. */
export function sqlitePayload(): PayloadLayout {
  let databases = 0;
  return {
    check(header) {
      const name = header.path.startsWith(DATABASE_ENTRY_PREFIX) ? header.path.slice(DATABASE_ENTRY_PREFIX.length) : '';
      if (header.type !== 'file' || name === '' || name.includes('/')) refuseEntry('sqlite', header, `${DATABASE_ENTRY_PREFIX}<name> files`);
      databases += 1;
    },
    end() {
      if (databases === 0) throw new IntegrityError('a sqlite snapshot needs at least one database, and holds none');
    },
  };
}
