import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLabels } from '../shared/catalog/label-text.js';
import { describeFilter } from '../shared/catalog/snapshot-filter.js';
import type { SnapshotSummary } from '../shared/catalog/snapshot-summary.js';
import { groupSnapshots } from '../shared/retention/group-snapshots.js';
import { formatSnapshotTable } from '../worker/commands/catalog-commands.js';

function summary(id: string, labels: Record<string, string>): SnapshotSummary {
  return {
    id,
    source: { kind: 'dir', uri: 'dir:///srv/app', name: 'app' },
    labels,
    createdAt: '2026-11-30T01:00:00.000Z',
    completedAt: '2026-11-30T01:00:01.000Z',
    stats: { entries: 1, files: 1, rawBytes: 1, storedBytes: 1, durationSeconds: 1 },
  };
}

describe('labels as text', () => {
  it('leave plain labels as key=value joined by commas', () => {
    assert.equal(formatLabels({ app: 'shop', env: 'prod', expr: 'a=b' }), 'app=shop,env=prod,expr=a=b');
  });

  it('quote a key or value holding a comma, space, quote, backslash or control character, or an empty one', () => {
    assert.equal(formatLabels({ app: 'a,b' }), 'app="a,b"');
    assert.equal(formatLabels({ note: 'two words', q: 'say "hi"', path: 'c:\\x', nl: 'a\nb', empty: '' }), 'note="two words",q="say \\"hi\\"",path="c:\\\\x",nl="a\\nb",empty=""');
    assert.equal(formatLabels({ 'k,1': 'v', 'k=2': 'v' }), '"k,1"=v,"k=2"=v');
  });

  it('make ls tell one label with a comma from two labels', () => {
    const table = formatSnapshotTable([summary('20261130T010000000Z-aaaaaaaa', { a: 'b,c=d' }), summary('20261130T010000000Z-bbbbbbbb', { a: 'b', c: 'd' })]);
    const [one, two] = table.split('\n').slice(1, 3);
    assert.match(one!, /^aaaaaaaa .* a="b,c=d" /);
    assert.match(two!, /^bbbbbbbb .* a=b,c=d /);
  });

  it('keep two label sets in two prune groups and name filters unambiguously', () => {
    const groups = groupSnapshots([summary('s1', { a: 'b,c=d' }), summary('s2', { a: 'b', c: 'd' })], ['labels']);
    assert.deepEqual([...groups.keys()], ['labels=a="b,c=d"', 'labels=a=b,c=d']);
    assert.equal(describeFilter({ source: 'app', labels: { a: 'b,c' } }), 'source app, a="b,c"');
  });
});
