/**
 * Stopping a long-running child (the Jupyter server of `npm start`) on any signal without
 * leaving its children behind.
 *
 * Why this is needed: `npm start` runs npm → sh → tsx → node (start.ts) → Jupyter, all in one
 * process group, and Jupyter starts each kernel in a session of its own (jupyter_client
 * `launch_kernel`: `start_new_session=True`). A SIGTERM to the group reached Jupyter twice (from
 * the group and forwarded by start.ts); its shutdown was cut short and the tslab kernel was left
 * running with PPID 1. So: the server runs in its own process group (`detached`), the signal is
 * forwarded to it once, we wait for its own shutdown (it stops its kernels), and only then kill,
 * as a last resort, the process groups of any descendant that is still alive.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Parent pid of every process (Linux /proc); empty elsewhere. */
function parentPids(): Map<number, number> {
  const out = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces or parentheses.
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(e), Number(fields[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Every descendant of `pid` alive now (children, grandchildren, …). */
export function descendants(pid: number): number[] {
  const parents = parentPids();
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const [child, parent] of parents) {
      if (parent === p && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Send `signal` to the process group of `pid` (and to `pid` itself); ignore ones already gone. */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
    } catch {
      // gone, or not a group leader
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SuperviseOptions {
  /** How long the server may take to shut down by itself after the forwarded signal. Default 15 s. */
  graceMs?: number;
  /** Log line for what is being done (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Supervise `child` (spawned with `detached: true`): the first SIGINT, SIGTERM or SIGHUP is
 * forwarded to it once as SIGTERM (repeats are ignored while it shuts down); when it has exited,
 * or after `graceMs`, any of its descendants still alive (kernels) get SIGTERM and then SIGKILL
 * on their process groups; then this process exits with the child's code (128 + signal number
 * when it was stopped by a signal).
 */
export function superviseChild(child: ChildProcess, options: SuperviseOptions = {}): void {
  const graceMs = options.graceMs ?? 15000;
  const log = options.log ?? ((line: string) => console.error(line));
  const pid = child.pid;
  let stopping = false;
  let tracked: number[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );

  const finish = async (code: number) => {
    // Descendants seen while the server ran, plus any still attached now.
    const leftovers = [...new Set([...tracked, ...(pid != null ? descendants(pid) : [])])].filter(isAlive);
    if (leftovers.length > 0) {
      log(`stopping ${leftovers.length} process(es) the server left behind: ${leftovers.join(', ')}`);
      for (const p of leftovers) killGroup(p, 'SIGTERM');
      for (let i = 0; i < 30 && leftovers.some(isAlive); i++) await sleep(100);
      for (const p of leftovers.filter(isAlive)) killGroup(p, 'SIGKILL');
    }
    process.exit(code);
  };

  // Keep the list of the server's descendants fresh: once it exits they are reparented to pid 1.
  const poll = setInterval(() => {
    if (pid != null && !stopping) tracked = descendants(pid);
  }, 1000);
  poll.unref();

  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return; // the group signal and tsx's relay arrive together: forward once
    stopping = true;
    if (pid != null) tracked = [...new Set([...tracked, ...descendants(pid)])];
    log(`${sig}: stopping the server (pid ${pid}) and its kernels …`);
    try {
      if (pid != null) process.kill(-pid, 'SIGTERM');
    } catch {
      child.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      log(`the server did not stop within ${graceMs / 1000} s: killing it`);
      if (pid != null) killGroup(pid, 'SIGKILL');
    }, graceMs);
    timer.unref();
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));

  void exited.then(({ code, signal }) => {
    clearInterval(poll);
    const numbers: Partial<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
    void finish(code ?? (signal ? 128 + (numbers[signal] ?? 0) : 0));
  });
}
