import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KINDS } from '../shared/kinds/registry.js';
import { KIND_FIXTURES } from './helpers/kind-fixtures/index.js';
import { runKindConformanceSuite } from './helpers/kind-suite.js';

describe('every registered kind has a conformance fixture', () => {
  it('one fixture per kind in shared/kinds/registry.ts, none for a kind not registered', () => {
    assert.deepEqual(
      KIND_FIXTURES.map((f) => f.kind).sort(),
      KINDS.map((k) => k.kind).sort(),
      'add a fixture to test/helpers/kind-fixtures/ for each kind (docs/kinds.md)',
    );
  });
});

for (const registration of KINDS) {
  const fixture = KIND_FIXTURES.find((f) => f.kind === registration.kind);
  if (fixture) runKindConformanceSuite(fixture);
}
