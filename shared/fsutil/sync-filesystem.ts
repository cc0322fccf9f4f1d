import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SnapworkerError } from '../errors.js';
import { errnoCode } from './errno.js';

/**
 * Flushes everything written to the filesystem that holds `absPath` to stable storage, with one
 * `syncfs(2)` (coreutils `sync -f`; Node has no binding for it). Afterwards every file and
 * directory created or changed under `absPath` is as durable as if each had been fsynced, which
 * for a tree of many small files is far cheaper than one fsync per file: the filesystem writes
 * all dirty data and commits its journal once. Since Linux 5.8 syncfs also reports writeback
 * errors of the filesystem, so a failed write does not pass silently. The cost is that it also
 * flushes other processes' dirty data on that filesystem.
 *
 * When `sync` cannot be run (no coreutils in the image), falls back to fsyncing every file and
 * directory under `absPath`, which gives the same guarantee for that tree, only slower.
 *
 * @throws SnapworkerError naming the path when the flush fails.
 */
export async function syncFilesystem(absPath: string): Promise<void> {
  let spawned: boolean;
  try {
    spawned = await runSyncCommand(absPath);
  } catch (cause) {
    throw new SnapworkerError(`sync filesystem of ${absPath}: ${(cause as Error).message}`, { cause });
  }
  if (!spawned) fsyncTree(absPath);
}

/** Runs `sync -f`; false when the command does not exist. */
function runSyncCommand(absPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', ['-f', absPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (err) => (errnoCode(err) === 'ENOENT' ? resolve(false) : reject(err)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(true);
      else reject(new Error(`sync -f exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

/** fsyncs every file and directory of the tree, children before their directory. */
function fsyncTree(absPath: string): void {
  const entries = readdirSync(absPath, { withFileTypes: true });
  for (const entry of entries) {
    const child = path.join(absPath, entry.name);
    if (entry.isDirectory()) fsyncTree(child);
    else if (entry.isFile()) fsyncOne(child);
  }
  fsyncOne(absPath);
}

function fsyncOne(absPath: string): void {
  const fd = openSync(absPath, 'r');
  try {
    fsyncSync(fd);
  } catch (cause) {
    throw new SnapworkerError(`fsync ${absPath}: ${(cause as Error).message}`, { cause });
  } finally {
    closeSync(fd);
  }
}
