import { z } from 'zod';
import { defineKind } from '../kind.js';
import { natsPayload } from './nats-payload.js';
import { DEFAULT_NATS_PORT } from '../../nats/nats-servers.js';
import { parseNatsUri } from './nats-endpoint.js';
import { natsProfileSchema } from './nats-profile.js';

/** The snapshot-job fields of NATS stream sources (docs/nats.md). */
export const natsSourceParams = {
  noConsumers: z.boolean().optional().describe('leave the stream consumers out'),
  checkMessages: z.boolean().optional().describe('have the server check messages before the snapshot'),
};

export type NatsSourceParams = z.infer<z.ZodObject<typeof natsSourceParams>>;

/** The restore-job fields of NATS stream targets. */
export const natsTargetParams = {
  streamConfig: z.record(z.string(), z.unknown()).optional().describe('stream config fields to override (placement, replicas, limits; never the name)'),
};

export type NatsTargetParams = z.infer<z.ZodObject<typeof natsTargetParams>>;

/** NATS JetStream streams: `nats://host:4222/STREAM[?profile=name]`, as `nats stream backup` keeps them. */
export const natsKind = defineKind({
  kind: 'nats',
  schemes: ['nats:'],
  uriForm: 'nats://host:4222/STREAM',
  sourceParams: natsSourceParams,
  targetParams: natsTargetParams,
  profile: natsProfileSchema,
  // The servers of NATS_URL are allowed too when SNAPWORKER_NATS_ALLOWED_SERVERS is unset (config.ts).
  servers: { defaultPort: DEFAULT_NATS_PORT, defaults: ['127.0.0.1:4222', 'localhost:4222'] },
  // Refused before any connection: jobs may only name the servers the worker allows.
  admit(url, role, context) {
    context.checkServer?.('nats', parseNatsUri(url).server, role);
  },
  payload: natsPayload,
  source: async () => (await import('./nats-source.js')).createNatsSource,
  target: async () => (await import('./nats-target.js')).createNatsTarget,
});
