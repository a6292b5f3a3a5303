// Driving the workbook's JupyterLab (lib/jupyterlab) in a browser page, as a user does: open a
// notebook, Run All from the Run menu, save from the File menu. What happened is read from the
// kernel's own messages (the page's websocket frames), so success is decided as the notebook
// runner decides it (every execute_reply has status "ok"), not from what the page shows.
import type { Page } from 'playwright-core';
import { cellSource, readNotebook } from '../../lib/cli/notebook-files.js';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

/** One kernel message seen on the page's websocket. */
export interface KernelMessage {
  channel: string;
  msgType: string;
  content: Record<string, unknown>;
}

/**
 * Decode a kernel websocket frame: JSON text (Jupyter's original protocol) or the binary
 * `v1.kernel.websocket.jupyter.org` layout (jupyter_server's serialize_msg_to_ws_v1: a count n,
 * n little-endian uint64 offsets, then the channel, header, parent header, metadata, content).
 */
export function decodeKernelFrame(payload: string | Buffer): KernelMessage | null {
  try {
    if (typeof payload === 'string') {
      const msg = JSON.parse(payload) as {
        channel?: string;
        header?: { msg_type?: string };
        content?: Record<string, unknown>;
      };
      return { channel: msg.channel ?? '', msgType: msg.header?.msg_type ?? '', content: msg.content ?? {} };
    }
    const n = Number(payload.readBigUInt64LE(0));
    if (n < 6 || 8 * (n + 1) > payload.length) return null;
    const offsets = Array.from({ length: n }, (_, i) => Number(payload.readBigUInt64LE(8 * (i + 1))));
    const part = (i: number) => payload.subarray(offsets[i], offsets[i + 1]).toString('utf8');
    const header = JSON.parse(part(1)) as { msg_type?: string };
    return {
      channel: part(0),
      msgType: header.msg_type ?? '',
      content: JSON.parse(part(4)) as Record<string, unknown>,
    };
  } catch {
    return null;
  }
}

/** What a page hears from kernels: kernel_info replies seen, execute replies in order. */
export interface KernelWatch {
  kernelInfos: number;
  replies: { status: string; count: number | null }[];
}

/** Collects the kernel messages a page receives (call before the page opens a notebook). */
export function watchKernel(page: Page): KernelWatch {
  const state: KernelWatch = { kernelInfos: 0, replies: [] };
  page.on('websocket', (ws) => {
    ws.on('framereceived', (frame) => {
      const msg = decodeKernelFrame(frame.payload);
      if (msg?.msgType === 'kernel_info_reply') state.kernelInfos += 1;
      if (msg?.msgType !== 'execute_reply') return;
      state.replies.push({
        status: String(msg.content.status),
        count: typeof msg.content.execution_count === 'number' ? msg.content.execution_count : null,
      });
    });
  });
  return state;
}

/**
 * Open a notebook in JupyterLab (`url`: /lab/tree/NAME) and wait until its kernel has answered
 * kernel_info and is idle; then focus the notebook (menu commands act on the focused one).
 */
export async function openNotebook(page: Page, url: string, watch: KernelWatch): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('body[data-softmoe-lab-ready]', { state: 'attached', timeout: 90000 });
  const panel = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)');
  await panel.waitFor({ timeout: 60000 });
  const deadline = Date.now() + 90000;
  while (watch.kernelInfos === 0 && Date.now() < deadline) await page.waitForTimeout(250);
  if (watch.kernelInfos === 0) throw new Error(`no kernel answered within 90 s after opening ${url}`);
  // The status bar says "<kernel> | Idle" only once the session's kernel is connected and idle;
  // Run All before that clears the cells and sends nothing.
  await page
    .locator('#jp-main-statusbar')
    .getByText(/\| Idle\b/)
    .first()
    .waitFor({ timeout: 90000 });
  await panel.locator('.jp-Cell .jp-InputPrompt').first().click();
}

async function menu(page: Page, top: string, item: RegExp): Promise<void> {
  await page.locator('.lm-MenuBar-itemLabel', { hasText: new RegExp(`^${top}$`) }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: item }).first().click();
}

/** The result of Run All: one entry per non-empty code cell, in notebook order. */
export interface RunResult {
  codeCells: number;
  replies: { status: string; count: number | null }[];
  /** "cell N (notebook index): status — stderr" for each cell that did not end "ok". */
  failures: string[];
  seconds: number;
}

/**
 * Run All Cells from the Run menu and wait for every code cell's execute_reply (the kernel
 * replies "error" for a failing cell and "abort" for the cells queued after it).
 */
export async function runAll(page: Page, file: string, watched: KernelWatch, timeoutMs: number): Promise<RunResult> {
  const cells = readNotebook(file).cells;
  const codeIndices = cells.flatMap((c, i) => (c.cell_type === 'code' && cellSource(c).trim() !== '' ? [i] : []));
  const before = watched.replies.length;
  const start = Date.now();
  await menu(page, 'Run', /^Run All Cells$/);
  while (watched.replies.length - before < codeIndices.length && Date.now() - start < timeoutMs)
    await page.waitForTimeout(250);
  const replies = watched.replies.slice(before);
  const failures: string[] = [];
  if (replies.length < codeIndices.length)
    failures.push(`only ${replies.length} of ${codeIndices.length} code cells replied within ${timeoutMs / 1000} s`);
  for (const [k, reply] of replies.entries()) {
    if (reply.status === 'ok') continue;
    const index = codeIndices[k]!;
    const stderr = await page
      .locator('.jp-Notebook .jp-Cell')
      .nth(index)
      .locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
      .allTextContents();
    failures.push(
      `cell ${index}: ${reply.status}${stderr.length ? ` — ${stderr.join(' ').trim().slice(0, 400)}` : ''}`,
    );
  }
  return { codeCells: codeIndices.length, replies, failures, seconds: (Date.now() - start) / 1000 };
}

/** Save from the File menu; resolves once the notebook is no longer marked dirty. */
export async function saveNotebook(page: Page): Promise<void> {
  await menu(page, 'File', /^Save( Notebook)?$/);
  await page.waitForFunction("document.querySelector('.jp-mod-current.jp-mod-dirty') == null", null, {
    timeout: 30000,
  });
}

/** Plotly outputs on the page and how many of them plotly has drawn (an SVG inside). */
export async function figureCounts(page: Page): Promise<{ outputs: number; drawn: number }> {
  const outputs = page.locator(`.jp-OutputArea-output[data-mime-type="${PLOTLY_MIME}"]`);
  return { outputs: await outputs.count(), drawn: await outputs.filter({ has: page.locator('.main-svg') }).count() };
}

/** Wait until `expected` plotly outputs are on the page and all are drawn; returns the counts. */
export async function waitForFigures(
  page: Page,
  expected: number,
  timeoutMs = 60000,
): Promise<{ outputs: number; drawn: number }> {
  const deadline = Date.now() + timeoutMs;
  let counts = await figureCounts(page);
  while ((counts.outputs < expected || counts.drawn < counts.outputs) && Date.now() < deadline) {
    await page.waitForTimeout(250);
    counts = await figureCounts(page);
  }
  return counts;
}

/** Typeset equations (MathJax 3 elements) and MathJax's error marks. */
export async function equationCounts(page: Page): Promise<{ typeset: number; errors: number }> {
  await page.locator('mjx-container').first().waitFor({ state: 'attached', timeout: 60000 });
  return { typeset: await page.locator('mjx-container').count(), errors: await page.locator('mjx-merror').count() };
}

/** Plotly outputs in a saved notebook file. */
export function savedFigures(file: string): number {
  return readNotebook(file)
    .cells.flatMap((c) => c.outputs ?? [])
    .filter((o) => JSON.stringify(o).includes(PLOTLY_MIME)).length;
}
