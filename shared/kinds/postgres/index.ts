import { z } from 'zod';
import { defineKind } from '../kind.js';
import { postgresPayloadLayout } from './dump-layout.js';
import { postgresProfileSchema } from './postgres-profile.js';
import { parsePostgresUri } from './postgres-uri.js';

/** The restore-job fields of PostgreSQL targets (docs/postgres.md, "Open sessions on a replaced database"). */
export const postgresTargetParams = {
  terminateConnections: z
    .boolean()
    .optional()
    .describe('with replace: terminate the sessions connected to the database being replaced instead of refusing to replace it while any is open'),
};

export type PostgresTargetParams = z.infer<z.ZodObject<typeof postgresTargetParams>>;

/** PostgreSQL databases: `postgres://host:5432/dbname?profile=name`, one pg_dump each (docs/postgres.md). */
export const postgresKind = defineKind({
  kind: 'postgres',
  schemes: ['postgres:', 'postgresql:'],
  uriForm: 'postgres://host:5432/dbname?profile=name',
  sourceParams: {},
  targetParams: postgresTargetParams,
  profile: postgresProfileSchema,
  // The whole URI is checked when the job is validated, before anything connects.
  admit(url, role) {
    parsePostgresUri(url, role);
  },
  payload: postgresPayloadLayout,
  source: async () => (await import('./postgres-source.js')).createPostgresSource,
  target: async () => (await import('./postgres-target.js')).createPostgresTarget,
});
