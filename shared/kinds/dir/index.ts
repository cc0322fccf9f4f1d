import { z } from 'zod';
import { defineKind } from '../kind.js';
import { dirPayload } from './dir-payload.js';

const globs = (what: string) => z.array(z.string().min(1).max(1024)).max(256).optional().describe(what);

/** The snapshot-job fields of directory sources (docs/directories.md, "Include and exclude"). */
/** Directory sources' job fields, as the dir source reads them. */
export type DirSourceParams = z.infer<z.ZodObject<typeof dirSourceParams>>;

export const dirSourceParams = {
  include: globs('only paths matching one of these globs (picomatch, relative to the root)'),
  exclude: globs('leave out paths matching these globs'),
  skipUnreadable: z
    .boolean()
    .optional()
    .describe('leave out entries the worker cannot read, name them in the record and mark the snapshot incomplete (CLI exit 3), instead of failing (default false)'),
};

/** Directories and volumes: `dir:///abs/path`, a tree of files as `data/...` entries. */
export const dirKind = defineKind({
  kind: 'dir',
  schemes: ['dir:'],
  uriForm: 'dir:///abs/path',
  sourceParams: dirSourceParams,
  targetParams: {},
  flagValues: { include: 'G', exclude: 'G' },
  payload: dirPayload,
  source: async () => (await import('./dir-source.js')).createDirSource,
  target: async () => (await import('./dir-target.js')).createDirTarget,
});
