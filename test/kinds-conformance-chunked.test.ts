import { KINDS } from '../shared/kinds/registry.js';
import { KIND_FIXTURES } from './helpers/kind-fixtures/index.js';
import { runKindConformanceSuite } from './helpers/kind-suite.js';

// Every kind's payload goes through the chunked format too (docs/chunked-format.md): the same
// behaviour as in an archive repository.
for (const registration of KINDS) {
  const fixture = KIND_FIXTURES.find((f) => f.kind === registration.kind);
  if (fixture) runKindConformanceSuite(fixture, 'chunked');
}
