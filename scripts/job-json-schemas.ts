import { z } from 'zod';
import { JOB_SCHEMAS } from '../jobs/schemas.js';
import { JOB_KINDS } from '../shared/job-kind.js';

/** The JSON Schema document of each job kind, by file name (`snapshot-job.schema.json`, ...). */
export function jobJsonSchemas(): Record<string, unknown> {
  const files: Record<string, unknown> = {};
  for (const kind of JOB_KINDS) {
    files[`${kind}-job.schema.json`] = {
      $id: `urn:snapworker:schema:${kind}-job:v1`,
      title: `snapworker ${kind} job data (v1)`,
      description: `Data of a BullMQ job named "${kind}" on the snapworker queue.`,
      ...z.toJSONSchema(JOB_SCHEMAS[kind], { target: 'draft-2020-12', io: 'input' }),
    };
  }
  return files;
}
