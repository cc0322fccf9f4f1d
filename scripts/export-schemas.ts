/**
 * Writes the job data JSON Schemas under docs/schemas/ from the zod schemas, so producers in
 * other languages validate against exactly what the workers accept.
 * Run: node --import tsx scripts/export-schemas.ts  (a test fails when the files are stale)
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jobJsonSchemas } from './job-json-schemas.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'schemas');
mkdirSync(dir, { recursive: true });
for (const [file, schema] of Object.entries(jobJsonSchemas())) {
  writeFileSync(path.join(dir, file), JSON.stringify(schema, null, 2) + '\n');
  console.log(`wrote docs/schemas/${file}`);
}
