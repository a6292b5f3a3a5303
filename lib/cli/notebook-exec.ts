/**
 * Execute one notebook through the tslab kernel with nbclient (Debian's Jupyter), headless.
 *
 * nbconvert's own `--execute` stops at the first error without writing the executed copy, and
 * its error line says nothing useful for tslab (the real message — a type error, a thrown
 * Error's stack — is in the cell's stderr output). So a small Python driver (below) runs the
 * cells one by one with nbclient, records each cell's time, writes the executed copy and its
 * HTML rendering (nbconvert's HTMLExporter) even when a cell fails, and prints one JSON line
 * with the outcome. Success is decided by the kernel's execute_reply status, never by stderr:
 * Node may print warnings there (e.g. an ExperimentalWarning) in cells that succeed.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KERNEL_NAME, jupyterEnv } from './jupyter.js';

const DRIVER = String.raw`
import asyncio, json, os, sys, time, traceback
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

src, out_nb, out_html, timeout, kernel = sys.argv[1:6]
nb = nbformat.read(src, as_version=4)
client = NotebookClient(nb, timeout=int(timeout), kernel_name=kernel, allow_errors=False,
                        resources={'metadata': {'path': os.path.dirname(os.path.abspath(src))}})
result = {'ok': True, 'cells': [], 'failure': None, 'stderr': []}

def texts(cell):
    stderr, errors = [], []
    for out in cell.get('outputs', []):
        if out.get('output_type') == 'stream' and out.get('name') == 'stderr':
            stderr.append(out.get('text', ''))
        elif out.get('output_type') == 'error':
            errors.append((out.get('ename', '') + ': ' + out.get('evalue', '')).strip(': '))
    return ''.join(stderr), errors

async def run():
    async with client.async_setup_kernel():
        reply = await client.async_wait_for_reply(client.kc.kernel_info())
        nb.metadata['language_info'] = reply['content']['language_info']
        count = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != 'code' or not cell.source.strip():
                continue
            count += 1
            start = time.time()
            failure = None
            try:
                await client.async_execute_cell(cell, index, execution_count=count)
            except CellExecutionError as e:
                failure = {'kind': 'error', 'detail': str(e)}
            except CellTimeoutError as e:
                failure = {'kind': 'timeout', 'detail': 'cell did not finish within %s s' % timeout}
            except DeadKernelError as e:
                failure = {'kind': 'dead kernel', 'detail': 'the kernel died: %s' % e}
            seconds = time.time() - start
            result['cells'].append({'index': index, 'seconds': round(seconds, 3)})
            stderr, errors = texts(cell)
            if stderr.strip() and failure is None:
                result['stderr'].append({'index': index, 'text': stderr[:2000]})
            if failure is not None:
                failure.update({'index': index, 'source': cell.source, 'stderr': stderr, 'errors': errors})
                result['ok'] = False
                result['failure'] = failure
                return

t0 = time.time()
try:
    asyncio.run(run())
except Exception:
    result['ok'] = False
    result['failure'] = {'kind': 'kernel', 'index': None, 'source': '', 'stderr': '', 'errors': [],
                         'detail': traceback.format_exc()}
result['seconds'] = round(time.time() - t0, 3)
os.makedirs(os.path.dirname(out_nb), exist_ok=True)
nbformat.write(nb, out_nb)
if out_html:
    try:
        from nbconvert import HTMLExporter
        body, _ = HTMLExporter().from_notebook_node(nb)
        with open(out_html, 'w', encoding='utf-8') as f:
            f.write(body)
    except Exception:
        result['html_error'] = traceback.format_exc()[-2000:]
print('@@RESULT@@' + json.dumps(result))
`;

export interface CellTiming {
  index: number;
  seconds: number;
}

export interface NotebookFailure {
  kind: 'error' | 'timeout' | 'dead kernel' | 'kernel' | 'driver';
  /** Index of the failing cell in the notebook's cell list; null when no cell ran. */
  index: number | null;
  source: string;
  /** The real error: the cell's stderr (tslab writes errors there), Node warnings removed. */
  message: string;
  /** nbclient's own account (rarely useful for tslab, kept for the log). */
  detail: string;
}

export interface NotebookResult {
  notebook: string;
  ok: boolean;
  seconds: number;
  cells: CellTiming[];
  failure: NotebookFailure | null;
  /** stderr of cells that succeeded (warnings), first 2000 characters each. */
  stderr: { index: number; text: string }[];
  executed: string;
  html: string | null;
  htmlError?: string;
}

/** Node's warnings (not errors): `(node:123) ExperimentalWarning: …` and its follow-up hint. */
const NODE_WARNING = /^\(node:\d+\) \w*Warning: .*$|^\(Use `node --trace-warnings .*\)$/;

/** Stack frames inside Node's vm or tslab's executor: the same in every failure, so noise. */
const KERNEL_FRAME = /^\s+at .*(\(node:[\w/]+:\d+:\d+\)|node:internal|[\\/]tslab[\\/]dist[\\/]|sigintHandlersWrap)/;

/** stderr text without Node's warning lines and without the kernel's own stack frames. */
export function cleanErrorText(text: string): string {
  return text
    .split('\n')
    .filter((line) => !NODE_WARNING.test(line) && !KERNEL_FRAME.test(line))
    .join('\n')
    .trim();
}

export interface ExecuteOptions {
  python: string;
  /** Executed copy (.ipynb) path; the HTML rendering goes beside it unless html is false. */
  executed: string;
  html?: boolean;
  /** Per-cell timeout in seconds. Default 900. */
  cellTimeout?: number;
  /** Extra environment for the kernel (e.g. SOFTMOE_QUICK=1). */
  env?: Record<string, string>;
}

interface DriverFailure {
  kind: NotebookFailure['kind'];
  index: number | null;
  source: string;
  stderr: string;
  errors: string[];
  detail: string;
}

/** Execute `notebook` (see the file comment). Never throws for a failing notebook. */
export function executeNotebook(notebook: string, options: ExecuteOptions): Promise<NotebookResult> {
  const html = options.html === false ? null : options.executed.replace(/\.ipynb$/, '.html');
  fs.mkdirSync(path.dirname(options.executed), { recursive: true });
  const args = ['-c', DRIVER, notebook, options.executed, html ?? '', String(options.cellTimeout ?? 900), KERNEL_NAME];
  return new Promise((resolve) => {
    const child = spawn(options.python, args, {
      cwd: path.dirname(notebook),
      env: jupyterEnv(options.env ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('@@RESULT@@'));
      if (!line) {
        resolve({
          notebook,
          ok: false,
          seconds: 0,
          cells: [],
          failure: {
            kind: 'driver',
            index: null,
            source: '',
            message: `the nbclient driver exited with ${code} without a result:\n${stderr.trim() || stdout.trim()}`,
            detail: '',
          },
          stderr: [],
          executed: options.executed,
          html,
        });
        return;
      }
      const raw = JSON.parse(line.slice('@@RESULT@@'.length)) as {
        ok: boolean;
        seconds: number;
        cells: CellTiming[];
        failure: DriverFailure | null;
        stderr: { index: number; text: string }[];
        html_error?: string;
      };
      let failure: NotebookFailure | null = null;
      if (raw.failure) {
        const f = raw.failure;
        const message =
          [cleanErrorText(f.stderr), ...f.errors.filter((e) => e && e !== 'Error')].filter(Boolean).join('\n') ||
          f.detail.trim();
        failure = { kind: f.kind, index: f.index, source: f.source, message, detail: f.detail };
      }
      const result: NotebookResult = {
        notebook,
        ok: raw.ok,
        seconds: raw.seconds,
        cells: raw.cells,
        failure,
        stderr: raw.stderr,
        executed: options.executed,
        html,
      };
      if (raw.html_error) result.htmlError = raw.html_error;
      resolve(result);
    });
  });
}
