import { z } from 'zod';
import { InvalidInputError } from '../../shared/errors.js';
import { findKind, kindFields, type EndpointRole } from '../../shared/kinds/registry.js';
import type { FlagSpec } from './flags.js';

/**
 * The flags of a kind's job fields, derived from the kind registrations: `noConsumers` is
 * `--no-consumers` on `snapshot` and `schedule add`, `streamConfig` is `--stream-config JSON` on
 * `restore`. Booleans are switches, string arrays repeatable, strings and numbers take a value,
 * objects take JSON. What a flag gives goes into the job as its field; the job schema then checks
 * it and refuses a field of another kind, so a flag never silently does nothing.
 */
export interface KindFlag {
  /** As typed after `--`. */
  name: string;
  /** The job field it sets. */
  field: string;
  /** The kinds that read the field, in registration order. */
  kinds: string[];
  spec: FlagSpec;
  /** The job field's value from what the command line gave (`undefined`: not given). */
  toField(value: unknown): unknown;
}

/** Every kind flag of snapshot jobs (`source`) or restore jobs (`target`). */
export function kindFlags(role: EndpointRole): readonly KindFlag[] {
  return (role === 'source' ? SOURCE_FLAGS : TARGET_FLAGS);
}

function deriveFlags(role: EndpointRole): KindFlag[] {
  return [...kindFields(role)].map(([field, { schema, kinds }]) => {
    const name = field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const type = unwrapOptional(schema as z.ZodType);
    const description = (schema as z.ZodType).description ?? field;
    const value = kinds.map((kind) => findKind(kind)?.flagValues?.[field]).find((v) => v !== undefined);
    if (type instanceof z.ZodBoolean) {
      return { name, field, kinds, spec: { type: 'boolean', description }, toField: (given) => (given === true ? true : undefined) };
    }
    if (type instanceof z.ZodArray && unwrapOptional(type.element as z.ZodType) instanceof z.ZodString) {
      const spec: FlagSpec = { type: 'string', multiple: true, value: value ?? 'VALUE', description: `${description} (repeatable)` };
      return { name, field, kinds, spec, toField: (given) => ((given as string[]).length > 0 ? given : undefined) };
    }
    if (type instanceof z.ZodString || type instanceof z.ZodNumber) {
      const toNumber = type instanceof z.ZodNumber;
      return { name, field, kinds, spec: { type: 'string', value: value ?? 'VALUE', description }, toField: (given) => (given === undefined ? undefined : toNumber ? Number(given) : given) };
    }
    if (type instanceof z.ZodRecord || type instanceof z.ZodObject) {
      return { name, field, kinds, spec: { type: 'string', value: value ?? 'JSON', description }, toField: (given) => parseJsonFlag(name, given as string | undefined) };
    }
    throw new Error(`kinds: ${kinds.join(', ')} ${role} field ${field} has a type no flag can give; make it a boolean, string, number, string array or object`);
  });
}

function unwrapOptional(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodOptional ? unwrapOptional(schema.unwrap() as z.ZodType) : schema;
}

function parseJsonFlag(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`--${name}: not valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
}

const SOURCE_FLAGS = deriveFlags('source');
const TARGET_FLAGS = deriveFlags('target');
