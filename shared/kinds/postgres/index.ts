import { z } from 'zod';
import { defineKind } from '../kind.js';
import { postgresPayloadLayout } from './dump-layout.js';
import { postgresProfileSchema } from './postgres-profile.js';
import { DEFAULT_POSTGRES_PORT, parsePostgresUri } from './postgres-uri.js';

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
  servers: { defaultPort: DEFAULT_POSTGRES_PORT, defaults: ['127.0.0.1:5432', 'localhost:5432'] },
  // The whole URI, and its server against the worker's allow-list, are checked when the job is
  // validated, before anything connects. `url.hostname` keeps an IPv6 address's brackets.
  admit(url, role, context) {
    const endpoint = parsePostgresUri(url, role);
    context.checkServer?.('postgres', `${url.hostname}:${endpoint.port}`, role);
  },
  payload: postgresPayloadLayout,
  source: async () => (await import('./postgres-source.js')).createPostgresSource,
  target: async () => (await import('./postgres-target.js')).createPostgresTarget,
});
