/**
 * Snapshots one SQLite database through the sqlite source in its own process, so a test can run
 * it as another user (`setpriv --reuid`), as a worker that does not own the application's files.
 *
 *   node --import tsx test/helpers/sqlite-snapshot-child.ts <db path> <staging dir> <copy path>
 *
 * Writes the archived copy to `<copy path>` and prints `ok`, or prints the error's message and
 * whether it is retryable (`error retryable=<bool> <message>`) and exits 1.
 */
import { writeFile } from 'node:fs/promises';
import { errorMessage, isRetryable } from '../../shared/errors.js';
import { nullProgress } from '../../shared/progress.js';
import { nullNotices } from '../../shared/kinds/notices.js';
import { createSqliteSource } from '../../shared/kinds/sqlite/sqlite-source.js';

const [dbPath, stagingDir, copyPath] = process.argv.slice(2);
if (!dbPath || !stagingDir || !copyPath) {
  process.stderr.write('usage: sqlite-snapshot-child.ts <db path> <staging dir> <copy path>\n');
  process.exit(2);
}
const source = createSqliteSource([new URL(`sqlite://${dbPath}`)], {}, { checkPath: () => {}, stagingDir });
try {
  for await (const entry of source.entries({ signal: new AbortController().signal, progress: nullProgress, notices: nullNotices })) {
    const chunks: Buffer[] = [];
    for await (const chunk of await entry.open!()) chunks.push(chunk as Buffer);
    await writeFile(copyPath, Buffer.concat(chunks));
  }
  process.stdout.write('ok\n');
} catch (err) {
  process.stdout.write(`error retryable=${isRetryable(err)} ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
