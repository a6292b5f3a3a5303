/**
 * A progress bar for long work run from a terminal (training, benchmarks, the notebook runner).
 *
 *   const bar = terminalProgress({ total: steps, label: 'train' });
 *   for (…) { …; bar.update(step + 1, `loss ${loss.toFixed(3)}`); }
 *   bar.finish();
 *
 * On a TTY the bar redraws one line in place (at most every `intervalMs`, default 100 ms). In a
 * log (CI, a pipe) it prints a full line at most every `intervalMs` (default 5 s) and at the end,
 * so logs stay short but still show that work is going on. It writes to stderr by default, so
 * results printed on stdout stay clean. Notebooks use ./progress.ts, which picks this bar
 * outside a notebook.
 */

export interface ProgressOptions {
  /** Number of units of work (steps, batches, notebooks); an integer ≥ 1. */
  total: number;
  /** Shown before the bar. */
  label?: string;
  /** Where to write. Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Minimum time between two redraws; default 100 ms on a TTY, 5000 ms otherwise. */
  intervalMs?: number;
  /** Clock in ms, for tests. Default Date.now. */
  now?: () => number;
}

/** A progress display: a bar on a terminal, a line in a notebook ({@link progress}). */
export interface Progress {
  /** Set the number of finished units (0 … total) and an optional note (e.g. the loss). */
  update(done: number, note?: string): void;
  /** Add `n` finished units (default 1). */
  tick(n?: number, note?: string): void;
  /** Draw the final state and end the line. Further updates are ignored. */
  finish(note?: string): void;
}

/** State of a progress bar, as drawn by `formatProgress`. */
export interface ProgressState {
  label: string;
  done: number;
  total: number;
  elapsedMs: number;
  note?: string;
}

/** Seconds as `12.3 s`, `4 min 05 s` or `1 h 02 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * One line: `label ███████░░░░░░░ 45/100  45%  12.3 s, ~15.0 s left  note` (no bar when
 * barWidth is 0). The time left is elapsed · (total − done) / done, shown once at least one unit
 * is done and the work is not finished.
 */
export function formatProgress(state: ProgressState, barWidth = 24): string {
  const { label, done, total, elapsedMs, note } = state;
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * barWidth);
  const bar = barWidth > 0 ? `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)} ` : '';
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  let time = formatDuration(elapsedMs);
  if (done > 0 && done < total) time += `, ~${formatDuration((elapsedMs * (total - done)) / done)} left`;
  const width = String(total).length;
  return `${label ? `${label} ` : ''}${bar}${String(done).padStart(width)}/${total} ${percent}  ${time}${note ? `  ${note}` : ''}`;
}

/**
 * The update/tick/finish logic shared by the terminal bar and the notebook line (lib/plot/progress.ts):
 * `due(done)` says whether an update is worth drawing now, `render(done, final, note)` draws it.
 */
export function progressHandle(
  total: number,
  render: (done: number, final: boolean, note?: string) => void,
  due: (done: number) => boolean,
): Progress {
  if (!Number.isInteger(total) || total < 1)
    throw new Error(`progress total must be an integer ≥ 1, got ${String(total)}`);
  let done = 0;
  let finished = false;
  const update = (value: number, note?: string) => {
    if (finished) return;
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`progress value must be a finite number ≥ 0, got ${String(value)}`);
    done = Math.min(total, value);
    if (due(done)) render(done, false, note);
  };
  return {
    update,
    tick: (n = 1, note?: string) => update(done + n, note),
    finish: (note?: string) => {
      if (finished) return;
      finished = true;
      render(done, true, note);
    },
  };
}

/** A progress bar on a terminal or in a log; see the file comment. */
export function terminalProgress(options: ProgressOptions): Progress {
  const { total } = options; // checked by progressHandle below, before anything is drawn
  const stream = options.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY);
  const intervalMs = options.intervalMs ?? (tty ? 100 : 5000);
  const now = options.now ?? Date.now;
  const label = options.label ?? '';
  const start = now();
  let lastDraw = -Infinity;
  let lastLength = 0;

  const draw = (done: number, final: boolean, note?: string) => {
    const line = formatProgress({ label, done, total, elapsedMs: now() - start, note });
    if (tty) {
      const columns = stream.columns ?? 120;
      const shown = line.length > columns - 1 ? line.slice(0, columns - 1) : line;
      const pad = lastLength > shown.length ? ' '.repeat(lastLength - shown.length) : '';
      stream.write(`\r${shown}${pad}${final ? '\n' : ''}`);
      lastLength = shown.length;
    } else {
      stream.write(`${line}\n`);
    }
  };
  const due = (done: number) => {
    const t = now();
    if (t - lastDraw < intervalMs && !(tty && done === total)) return false;
    lastDraw = t;
    return true;
  };
  return progressHandle(total, draw, due);
}
