import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { KindFixture } from './kind-fixture.js';

/** Two databases in WAL mode (the kind takes several in one snapshot), with rows still in the WAL. */
export const sqliteFixture: KindFixture = {
  kind: 'sqlite',
  async createSource(root) {
    return ['app.db', 'audit.db'].map((name, n) => {
      const file = path.join(root, name);
      const db = new Database(file);
      db.pragma('journal_mode = wal');
      db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, body BLOB); CREATE INDEX items_name ON items (name)');
      const insert = db.prepare('INSERT INTO items (name, body) VALUES (?, ?)');
      for (let i = 0; i < 500; i++) insert.run(`item ${n}-${i}`, Buffer.alloc(100, i % 256));
      db.close();
      return `sqlite://${file}`;
    });
  },
  async freshTarget(root, source) {
    return source.map((_, i) => `sqlite://${path.join(root, `restored-${i}.db`)}`);
  },
  async readContent(uris) {
    const files = uris.map((uri) => new URL(uri).pathname);
    if (!files.every((file) => existsSync(file))) return undefined;
    return files.map((file) => {
      const db = new Database(file, { readonly: true });
      try {
        return {
          schema: db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all(),
          rows: db.prepare('SELECT id, name, hex(body) AS body FROM items ORDER BY id').all(),
        };
      } finally {
        db.close();
      }
    });
  },
};
