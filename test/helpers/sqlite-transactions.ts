/** Reads what the numbered-transaction writer (`sqlite-writer.ts`) left in a restored database. */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';

/** Transaction ids in the database at `dbPath`, after checking every one is whole (n rows, seq 0..n-1). */
export function wholeTransactions(dbPath: string): { txns: number[]; times: Map<number, number> } {
  const db = new Database(dbPath, { readonly: true });
  try {
    const groups = db.prepare('SELECT txn, n, count(*) AS c, min(seq) AS lo, max(seq) AS hi FROM rows GROUP BY txn ORDER BY txn').all() as Array<{ txn: number; n: number; c: number; lo: number; hi: number }>;
    for (const g of groups) assert.ok(g.c === g.n && g.lo === 0 && g.hi === g.n - 1, `transaction ${g.txn} is torn (${g.c} of ${g.n} rows)`);
    const times = new Map<number, number>();
    const hasCommits = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'commits'").get();
    if (hasCommits) for (const row of db.prepare('SELECT txn, at_ms FROM commits').all() as Array<{ txn: number; at_ms: number }>) times.set(row.txn, row.at_ms);
    return { txns: groups.map((g) => g.txn), times };
  } finally {
    db.close();
  }
}

export function assertPrefix(txns: number[], count: number): void {
  assert.equal(txns.length, count, `expected transactions 1..${count}, got ${txns.length} (last ${txns.at(-1)})`);
  txns.forEach((txn, i) => assert.equal(txn, i + 1, `transaction ${i + 1} missing`));
}
