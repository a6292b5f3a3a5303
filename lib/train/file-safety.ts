/**
 * Writing files that people rely on (results files, checkpoints) without ever losing one:
 *
 * - every write goes to a fresh temporary file beside the target (created exclusively, so it
 *   never follows or replaces anything) and is renamed over the target only when complete;
 *   a failed write (a full disk: ENOSPC, EFBIG, EIO) removes its temporary file and names the path;
 * - temporary files still being written are tracked, so a signal handler can remove them
 *   (`removePendingTemps`) before the process exits;
 * - a lock file created with O_EXCL (`acquireLock`) lets one process at a time own a target;
 *   a lock whose process is gone (same host) is taken over, a live one is reported with its pid.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  promises as fsp,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import * as os from 'node:os';

const pendingTemps = new Set<string>();

/** A new temporary name beside `path` (pid and random suffix: two writers never share one). */
function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** An Error whose message names the path and the system error (its code kept). */
export function fileError(action: string, path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const out = new Error(`cannot ${action} ${path}: ${err?.message ?? String(e)}`) as NodeJS.ErrnoException;
  if (err?.code) out.code = err.code;
  return out;
}

/** Write `data` to `path` atomically (temporary file, then rename); no temporary file survives an error. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tempName(path);
  pendingTemps.add(tmp);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let at = 0;
      while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw fileError('write', path, e);
  } finally {
    pendingTemps.delete(tmp);
  }
}

/** The asynchronous twin of writeFileAtomicSync (large files such as checkpoints). */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = tempName(path);
  pendingTemps.add(tmp);
  try {
    await fsp.writeFile(tmp, data, { flag: 'wx' });
    await fsp.rename(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw fileError('write', path, e);
  } finally {
    pendingTemps.delete(tmp);
  }
}

/** Remove every temporary file still being written (for signal handlers, before exiting). */
export function removePendingTemps(): void {
  for (const tmp of pendingTemps) removeQuietly(tmp);
  pendingTemps.clear();
}

/** Temporary files being written right now (for tests). */
export function pendingTempCount(): number {
  return pendingTemps.size;
}

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
  token: string;
}

/** A held lock; `release()` removes the lock file if it is still ours. */
export interface FileLock {
  readonly path: string;
  readonly token: string;
  release(): void;
}

function readLock(lockPath: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(lockPath, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take the lock `<target>.lock` (created with O_EXCL). Throws, naming the holder, when another
 * live process holds it; a lock left by a process that no longer exists on this host is removed
 * and taken. `what` describes the holder's work in the message.
 */
export function acquireLock(target: string, what = 'writing'): FileLock {
  const lockPath = `${target}.lock`;
  try {
    mkdirSync(dirname(lockPath), { recursive: true }); // a new results folder (--results-dir) is created
  } catch (e) {
    throw fileError('create the folder of', lockPath, e);
  }
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError('create the lock file', lockPath, e);
      const holder = readLock(lockPath);
      const stale =
        holder != null && holder.host === info.host && Number.isInteger(holder.pid) && !processAlive(holder.pid);
      if (stale && attempt === 0) {
        removeQuietly(lockPath);
        continue;
      }
      const who = holder ? `process ${holder.pid} on ${holder.host}, since ${holder.startedAt}` : 'another process';
      throw new Error(
        `${target} is locked: ${who} is ${what} it (lock file ${lockPath}; remove it only if no such run is alive)`,
      );
    }
    try {
      writeSync(fd, JSON.stringify(info) + '\n');
    } finally {
      closeSync(fd);
    }
    return {
      path: lockPath,
      token: info.token,
      release() {
        if (readLock(lockPath)?.token === info.token) removeQuietly(lockPath);
      },
    };
  }
  throw new Error(`${target}: cannot take the lock ${lockPath}`);
}
