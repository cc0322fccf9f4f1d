import { z } from 'zod';

/**
 * How to authenticate to a NATS server; a worker's `SNAPWORKER_NATS_PROFILES` maps names to these,
 * and a URI picks one with `?profile=<name>`.
 */
export const natsProfileSchema = z
  .object({
    token: z.string().optional(),
    user: z.string().optional(),
    pass: z.string().optional(),
    /** Path to a `.creds` file (JWT + nkey seed). */
    credsFile: z.string().optional(),
    tls: z.object({ caFile: z.string().optional(), certFile: z.string().optional(), keyFile: z.string().optional() }).strict().optional(),
  })
  .strict();

export type NatsProfile = z.infer<typeof natsProfileSchema>;
