import { z } from 'zod';
import { defineKind } from '../kind.js';
import { sqlitePayload } from './sqlite-payload.js';

/** The restore-job fields of SQLite targets (docs/sqlite.md, "Replication"). */
export const sqliteTargetParams = {
  replica: z
    .object({
      timestamp: z.iso.datetime({ offset: true }).optional().describe('The transactions committed before this time (ISO 8601)'),
      generation: z.string().regex(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/).optional().describe('This generation (its end, or the end of `index`)'),
      index: z.number().int().min(0).max(0xffffffff).optional().describe('With `generation`: up to the end of this WAL index'),
    })
    .strict()
    .optional()
    .describe('restore from the continuous replica named by `source` instead of a snapshot (`snapshot` must be "latest"); the newest state when empty'),
};

/** SQLite databases: `sqlite:///abs/path/db.sqlite`, several in one consistent snapshot. */
export const sqliteKind = defineKind({
  kind: 'sqlite',
  schemes: ['sqlite:'],
  uriForm: 'sqlite:///abs/path/db.sqlite (several allowed)',
  multipleUris: true,
  sourceParams: {},
  targetParams: sqliteTargetParams,
  payload: sqlitePayload,
  source: async () => (await import('./sqlite-source.js')).createSqliteSource,
  target: async () => (await import('./sqlite-target.js')).createSqliteTarget,
});
