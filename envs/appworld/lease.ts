/**
 * One AppWorld environment server holds one task at a time, so each live episode leases a server URL
 * for its duration. Leases are lock files in the OS temp folder (`horizon-appworld-<hash>.lock`, holding
 * the owner's pid), so worker processes on one machine share a URL list safely; a lock whose process has
 * died is taken over. Workers on different machines need disjoint URL lists.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EnvError } from '../../core/errors.js';

/** Lock file of a URL. */
export function leaseFile(url: string, dir = os.tmpdir()): string {
  return path.join(dir, `horizon-appworld-${createHash('sha256').update(url).digest('hex').slice(0, 16)}.lock`);
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** URLs this process holds (a process never leases the same URL twice). */
const held = new Set<string>();

function tryLock(url: string, dir: string): boolean {
  if (held.has(url)) return false;
  const file = leaseFile(url, dir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(url);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let content: string;
      try {
        content = readFileSync(file, 'utf8').trim();
      } catch {
        continue; // Removed between open and read: try again.
      }
      // An empty file is a lock being written right now; a live owner (this process included) holds it.
      if (content === '' || alive(Number(content))) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

/**
 * Lease a free URL of `urls`, waiting up to `timeoutMs` (polling every 100 ms). Throws an EnvError that
 * names the URLs and the fix when none frees up in time.
 */
export async function acquireServer(urls: readonly string[], timeoutMs: number, dir = os.tmpdir()): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const url of urls) if (tryLock(url, dir)) return url;
    if (Date.now() >= deadline) {
      throw new EnvError(
        `no free AppWorld server among ${urls.length} URL(s) (${urls.join(', ')}) after ${timeoutMs} ms: each live episode needs its own server; ` +
          'give env.options.url at least rollout.groupSize × workers.concurrency URLs per machine',
        { context: { urls } },
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
  }
}

/** Give a leased URL back. */
export function releaseServer(url: string, dir = os.tmpdir()): void {
  if (!held.delete(url)) return;
  rmSync(leaseFile(url, dir), { force: true });
}
