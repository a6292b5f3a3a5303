/**
 * Progress for long work, wherever it runs: in a notebook cell, one output line that updates in
 * place (a Jupyter display with a display_id); elsewhere, the terminal bar of ./terminal-progress.ts.
 *
 *   const bar = progress(steps, 'train');
 *   for (let step = 0; step < steps; step++) { …; bar.update(step + 1, `loss ${loss.toFixed(3)}`); }
 *   bar.finish();
 */
import { randomBytes } from 'node:crypto';
import { formatProgress, progressHandle, terminalProgress, type Progress } from './terminal-progress.js';
import { displayBundle, inNotebook } from './notebook.js';

export type { Progress } from './terminal-progress.js';

/** Minimum time between two updates of the notebook line (each is a message to the front end). */
const NOTEBOOK_INTERVAL_MS = 250;

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A progress line in the running notebook cell (null outside a notebook). */
export function notebookProgress(total: number, label = ''): Progress | null {
  if (!Number.isInteger(total) || total < 1)
    throw new Error(`progress total must be an integer ≥ 1, got ${String(total)}`);
  if (!inNotebook()) return null;
  const displayId = `softmoe-progress-${randomBytes(6).toString('hex')}`;
  const start = Date.now();
  let sent = false;
  let lastSent = -Infinity;

  const send = (done: number, _final: boolean, note?: string) => {
    const state = { label: '', done, total, elapsedMs: Date.now() - start, note };
    const line = formatProgress({ ...state, label });
    const html =
      `<div style="font-family: monospace; white-space: pre">${label ? `${escapeHtml(label)} ` : ''}` +
      `<progress value="${done}" max="${total}" style="width: 16em; vertical-align: middle"></progress> ` +
      `${escapeHtml(formatProgress(state, 0))}</div>`;
    displayBundle({ 'text/plain': line, 'text/html': html }, { displayId, update: sent });
    sent = true;
    lastSent = Date.now();
  };
  return progressHandle(total, send, () => !sent || Date.now() - lastSent >= NOTEBOOK_INTERVAL_MS);
}

/** A progress line in a notebook, else a progress bar on stderr. */
export function progress(total: number, label = ''): Progress {
  return notebookProgress(total, label) ?? terminalProgress({ total, label });
}
