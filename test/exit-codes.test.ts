import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IntegrityError, InvalidInputError, RepositoryMissingError, UnsafeEntryError, UnsafePathError } from '../shared/errors.js';
import { exitCodeForError } from '../worker/commands/exit-codes.js';

describe('exit codes for errors (README "Exit codes")', () => {
  it('gives 2 for what the caller gave, 1 for a damaged or hostile snapshot, 10 for a missing repository', () => {
    assert.equal(exitCodeForError(new InvalidInputError('bad flag')), 2);
    assert.equal(exitCodeForError(new UnsafePathError('target path /x is outside the allowed paths')), 2);
    assert.equal(exitCodeForError(new UnsafeEntryError('archive: entry ../x: ".." component in path')), 1);
    assert.equal(exitCodeForError(new IntegrityError('archive: entry data/a: sha256 mismatch')), 1);
    assert.equal(exitCodeForError(new RepositoryMissingError('repository x: does not exist')), 10);
  });
});
