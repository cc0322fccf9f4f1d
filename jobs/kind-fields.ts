import type { z } from 'zod';
import { checkEndpoints, kindFields, type EndpointRole, type KINDS } from '../shared/kinds/registry.js';

/**
 * The kind-specific fields of snapshot and restore jobs, derived from the kind registrations
 * (`shared/kinds/<kind>/index.ts`): flat in job data, as in every `v: 1` job so far. Each field's
 * description names the kinds it belongs to; `checkKindFields` refuses a field of another kind.
 */

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type Kind = (typeof KINDS)[number];

/** Every kind's snapshot-job fields in one shape (a field of several kinds appears once). */
export type SourceFieldsShape = UnionToIntersection<Kind['sourceParams']>;
/** Every kind's restore-job fields in one shape. */
export type TargetFieldsShape = UnionToIntersection<Kind['targetParams']>;

/**
 * The job's own fields (`jobFields`) followed by the kinds' fields of `role`, each described as
 * `<kinds> <role>s: <description>`.
 * @throws Error (at start, a programming error) when a kind declares a field the job has already.
 */
export function withKindFields<J extends z.ZodRawShape>(jobFields: J, role: 'source'): J & SourceFieldsShape;
export function withKindFields<J extends z.ZodRawShape>(jobFields: J, role: 'target'): J & TargetFieldsShape;
export function withKindFields(jobFields: z.ZodRawShape, role: EndpointRole): z.ZodRawShape {
  const shape: Record<string, z.core.$ZodType> = { ...jobFields };
  for (const [name, field] of kindFields(role)) {
    if (Object.hasOwn(jobFields, name)) throw new Error(`kinds: ${field.kinds.join(', ')} declare the ${role} field ${name}, a job field snapworker has already; rename it`);
    const schema = field.schema as z.ZodType;
    shape[name] = schema.describe(`${field.kinds.join(', ')} ${role}s: ${schema.description ?? name}`);
  }
  return shape;
}

/**
 * A refinement for a job object whose URIs are in `uriField`: the URIs are checked as the worker
 * will open them (scheme, no credentials, one kind, one URI unless the kind takes several), and
 * a field of another kind is refused instead of being ignored (`include` with a `nats://` source).
 */
export function checkKindFields(role: EndpointRole, uriField: string) {
  const fields = kindFields(role);
  return (data: Record<string, unknown>, ctx: z.RefinementCtx): void => {
    const uris = data[uriField];
    const parsed = checkEndpoints(Array.isArray(uris) ? uris : [uris as string]);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', path: [uriField], message: parsed });
      return;
    }
    const kind = parsed.registration.kind;
    for (const [name, field] of fields) {
      if (data[name] === undefined || field.kinds.includes(kind)) continue;
      ctx.addIssue({ code: 'custom', path: [name], message: `belongs to ${field.kinds.join(' and ')} ${role}s; this job's ${uriField} is ${kind}` });
    }
  };
}
