import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RepeatingErrorLog } from '../shared/lifecycle/repeating-error-log.js';

function capture(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines: () => lines.map((line) => JSON.parse(line)) };
}

describe('a repeating error log', () => {
  it('logs an error once per state, with how often it repeated, and the recovery, without stacks', async () => {
    const { logger, lines } = capture();
    const log = new RepeatingErrorLog(logger, 'redis connection');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 50; i++) log.error(refused);
    log.error(new Error('NOAUTH Authentication required'));
    log.error(new Error('NOAUTH Authentication required'));
    log.recovered();
    log.recovered();
    log.error(refused);
    await new Promise((resolve) => setImmediate(resolve));
    const got = lines().map(({ level, msg, previousCount }) => ({ level, msg, previousCount }));
    assert.deepEqual(got, [
      { level: 40, msg: 'redis connection: connect ECONNREFUSED 127.0.0.1:6379 (logged once until it changes)', previousCount: undefined },
      { level: 40, msg: 'redis connection: NOAUTH Authentication required (logged once until it changes)', previousCount: 50 },
      { level: 30, msg: 'redis connection: recovered after 2 error(s)', previousCount: 2 },
      { level: 40, msg: 'redis connection: connect ECONNREFUSED 127.0.0.1:6379 (logged once until it changes)', previousCount: undefined },
    ]);
    assert.doesNotMatch(JSON.stringify(lines()), /\s+at /, 'no stack traces');
  });
});
