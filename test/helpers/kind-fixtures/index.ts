import { dirFixture } from './dir.js';
import type { KindFixture } from './kind-fixture.js';
import { natsFixture } from './nats.js';
import { postgresFixture } from './postgres.js';
import { sqliteFixture } from './sqlite.js';

/** The conformance fixture of each registered kind, one line each (`test/kinds-conformance.test.ts` requires one per kind). */
export const KIND_FIXTURES: readonly KindFixture[] = [dirFixture, sqliteFixture, natsFixture, postgresFixture];

export type { KindFixture } from './kind-fixture.js';
