import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseJob, parseJobData } from '../jobs/validate.js';
import { InvalidInputError } from '../shared/errors.js';
import { jobJsonSchemas } from '../scripts/job-json-schemas.js';
import { snapshotIdForJob, newSnapshotId, isSnapshotId } from '../shared/ids.js';
import type { EntryNoticeKind, PruneJobResult, SnapshotRecordResult } from '../jobs/results.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import type { PruneResult } from '../shared/pipeline/prune-snapshots.js';
import type { NoticeKind } from '../shared/kinds/notices.js';

const docs = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'schemas');

function invalid(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidInputError, `expected InvalidInputError, got ${String(err)}`);
    return err;
  }
  assert.fail('data was accepted');
}

describe('job data contract', () => {
  it('accepts the documented examples', () => {
    parseJobData('snapshot', { v: 1, source: 'dir:///data/app', labels: { app: 'shop' } });
    parseJobData('snapshot', { v: 1, source: ['sqlite:///d/a.db', 'sqlite:///d/b.db'], repo: 'main', compression: 'gzip' });
    parseJobData('restore', { v: 1, snapshot: 'latest', source: 'app', target: 'dir:///restore/app', replace: true });
    parseJobData('verify', { v: 1, snapshot: '20261122T031500123Z-1a2b3c4d' });
    parseJobData('prune', { v: 1, keepLast: 7, keepWithin: '30d' });
  });

  it('names the field that is wrong', () => {
    assert.match(invalid(() => parseJobData('snapshot', { v: 1 })).message, /invalid snapshot job: field "source"/);
    assert.match(invalid(() => parseJobData('snapshot', { v: 2, source: 'dir:///x' })).message, /field "v"/);
    assert.match(invalid(() => parseJobData('restore', { v: 1, snapshot: '../../etc', target: 'dir:///x' })).message, /field "snapshot"/);
    assert.match(invalid(() => parseJobData('snapshot', { v: 1, source: 'dir:///x', labels: { 'bad key!': 'x' } })).message, /field "labels/);
    assert.match(invalid(() => parseJobData('prune', { v: 1, keepWithin: 'forever' })).message, /field "keepWithin"/);
  });

  it('refuses unknown fields, so typos and smuggled credentials do not pass silently', () => {
    assert.match(invalid(() => parseJobData('snapshot', { v: 1, source: 'dir:///x', password: 'x' })).message, /unknown field\(s\) password/);
  });

  it('keeps every v1 job of each kind valid and meaning the same (fields derived from the kind registrations)', () => {
    const jobs: [string, Record<string, unknown>][] = [
      ['snapshot', { v: 1, source: 'dir:///srv/app', name: 'app', include: ['conf/**'], exclude: ['**/*.tmp'], skipUnreadable: true, compression: 'none' }],
      ['snapshot', { v: 1, source: ['sqlite:///d/a.db', 'sqlite:///d/b.db'], name: 'dbs' }],
      ['snapshot', { v: 1, source: 'nats://127.0.0.1:4222/ORDERS?profile=local', noConsumers: true, checkMessages: false }],
      ['restore', { v: 1, snapshot: 'latest', source: 'orders', target: 'nats://127.0.0.1:4222/ORDERS', replace: true, streamConfig: { num_replicas: 3 } }],
      ['restore', { v: 1, snapshot: 'latest', source: 'app', target: 'sqlite:///d/a.db', replica: { timestamp: '2026-11-29T16:15:00Z' } }],
      ['restore', { v: 1, snapshot: '20261122T031500123Z-1a2b3c4d', target: 'dir:///restore/app' }],
    ];
    for (const [kind, data] of jobs) assert.deepEqual(parseJobData(kind as 'snapshot', data), data, JSON.stringify(data));
  });

  it('refuses a field of another kind with one line naming the field and the kind it belongs to', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['snapshot', { v: 1, source: 'nats://127.0.0.1:4222/S', include: ['a'] }, /field "include": belongs to dir sources; this job's source is nats/],
      ['snapshot', { v: 1, source: 'dir:///srv/app', noConsumers: true }, /field "noConsumers": belongs to nats sources; this job's source is dir/],
      ['snapshot', { v: 1, source: 'sqlite:///d/a.db', skipUnreadable: true }, /field "skipUnreadable": belongs to dir sources; this job's source is sqlite/],
      ['restore', { v: 1, snapshot: 'latest', target: 'dir:///r', streamConfig: {} }, /field "streamConfig": belongs to nats targets; this job's target is dir/],
      ['restore', { v: 1, snapshot: 'latest', target: 'nats://127.0.0.1:4222/S', replica: {} }, /field "replica": belongs to sqlite targets; this job's target is nats/],
    ];
    for (const [kind, data, pattern] of cases) {
      const message = invalid(() => parseJobData(kind as 'snapshot', data)).message;
      assert.match(message, pattern);
      assert.equal(message.split('\n').length, 1);
    }
  });

  it('checks URIs as the worker opens them: scheme, credentials, one kind, one URI unless the kind takes several', () => {
    assert.match(invalid(() => parseJobData('snapshot', { v: 1, source: 'ftp://h/x' })).message, /field "source": unsupported scheme "ftp:"/);
    assert.match(invalid(() => parseJobData('snapshot', { v: 1, source: ['dir:///a', 'dir:///b'] })).message, /field "source": dir takes one URI per job/);
    assert.match(invalid(() => parseJobData('snapshot', { v: 1, source: ['dir:///a', 'sqlite:///b'] })).message, /URIs of different kinds in one job \(dir, sqlite\)/);
    assert.match(invalid(() => parseJobData('restore', { v: 1, snapshot: 'latest', target: 'nats://u:p@h/S' })).message, /field "target": credentials are not allowed/);
    assert.match(
      invalid(() => parseJob('snapshot', { v: 1, source: 'dir:///srv', schedule: { name: 'x' }, noConsumers: true })).message,
      /field "noConsumers": belongs to nats sources/,
    );
    // Only SQLite replicates: refused when enqueued, not failed by a worker afterwards.
    assert.match(invalid(() => parseJobData('replicate', { v: 1, source: 'dir:///srv' })).message, /field "source": dir cannot be replicated/);
    assert.match(invalid(() => parseJobData('replicate', { v: 1, source: 'postgres://h:5432/db' })).message, /field "source": postgres cannot be replicated/);
    parseJobData('replicate', { v: 1, source: 'sqlite:///srv/app.db' });
  });

  it('refuses unknown job names', () => {
    assert.match(invalid(() => parseJob('backup', { v: 1 })).message, /unknown job name "backup"/);
  });

  it('publishes JSON Schema files that match the schemas the workers use', () => {
    for (const [file, schema] of Object.entries(jobJsonSchemas())) {
      const committed = JSON.parse(readFileSync(path.join(docs, file), 'utf8'));
      assert.deepEqual(committed, schema, `docs/schemas/${file} is stale: run node --import tsx scripts/export-schemas.ts`);
    }
  });

  it('has JSON Schemas that accept and refuse the same data as the workers', () => {
    const ajv = new Ajv2020({ strict: false });
    const schemas = jobJsonSchemas();
    const validSnapshot = ajv.compile(schemas['snapshot-job.schema.json'] as object);
    assert.equal(validSnapshot({ v: 1, source: 'dir:///data' }), true);
    assert.equal(validSnapshot({ v: 1 }), false);
    assert.equal(validSnapshot({ v: 1, source: 'dir:///data', extra: 1 }), false);
  });
});

describe('the published jobs/ contract', () => {
  it('imports nothing from the worker, the pipeline, the catalog, formats or storage', () => {
    const jobsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'jobs');
    for (const file of readdirSync(jobsDir).filter((f) => f.endsWith('.ts'))) {
      const imports = [...readFileSync(path.join(jobsDir, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) assert.doesNotMatch(spec, /^\.\.\/(worker|shared\/(pipeline|catalog|formats|storage))\//, `jobs/${file} imports ${spec}`);
    }
  });
});

describe('snapshot ids', () => {
  it('sort by time and are safe in paths, S3 keys and NATS subjects', () => {
    const a = newSnapshotId(new Date('2026-01-01T00:00:00Z'));
    const b = newSnapshotId(new Date('2026-01-01T00:00:00.001Z'));
    assert.ok(a < b);
    assert.ok(isSnapshotId(a));
    assert.match(a, /^[0-9A-Za-z-]+$/);
  });

  it('are the same for every attempt of one job and differ between jobs', () => {
    assert.equal(snapshotIdForJob(1700000000000, 'bull:q:1'), snapshotIdForJob(1700000000000, 'bull:q:1'));
    assert.notEqual(snapshotIdForJob(1700000000000, 'bull:q:1'), snapshotIdForJob(1700000000000, 'bull:q:2'));
  });
});

// The published result types are stated in jobs/ (producers import nothing else); the worker's
// own types must stay the same shape, or this file stops compiling (npm run typecheck).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const recordsAgree: Same<SnapshotRecord, SnapshotRecordResult> = true;
export const pruneResultsAgree: Same<PruneResult, PruneJobResult> = true;
export const noticeKindsAgree: Same<NoticeKind, EntryNoticeKind> = true;
