/**
 * The notebook runner (`npm run test:notebooks`): for every notebook in notebooks/ (or the given
 * files/folders)
 *   1. checks that it is committed clean (no outputs, no execution counts, tslab kernel);
 *   2. type-checks its code cells with the project's strict settings (notebook-typecheck.ts);
 *   3. executes it through the tslab kernel in quick mode (SOFTMOE_QUICK=1), two at a time on
 *      two cores, writing the executed copy and its HTML rendering to build/notebooks/;
 * and fails if any step fails, naming the notebook, the cell and the real error message.
 *
 * Usage: npm run test:notebooks -- [notebooks or folders…] [--out DIR] [--jobs N] [--full]
 *          [--cell-timeout S] [--no-html] [--skip-clean] [--skip-types] [--skip-exec] [--strip]
 *   --full   run without quick mode (the notebooks' real training sizes)
 *   --strip  only remove outputs and execution counts from the given notebooks
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { QUICK_ENV } from '../plot/notebook.js';
import { BUILD_DIR, NOTEBOOKS_DIR, ROOT } from './jupyter.js';
import { checkClean, listNotebooks, stripOutputs, type CleanProblem } from './notebook-files.js';
import { executeNotebook, type NotebookResult } from './notebook-exec.js';
import { formatDiagnostic, typecheckNotebooks, type CellDiagnostic } from './notebook-typecheck.js';
import { formatDuration, terminalProgress } from '../plot/terminal-progress.js';
import { SetupError, ensureBuild, ensureJupyter, ensureKernel, isMain } from './setup.js';

export interface RunOptions {
  /** Notebooks or folders. Default notebooks/. */
  paths?: string[];
  /** Where executed copies and HTML go. Default build/notebooks. */
  out?: string;
  /** Notebooks executed at once. Default min(2, CPU count). */
  jobs?: number;
  /** Quick mode (SOFTMOE_QUICK=1). Default true. */
  quick?: boolean;
  cellTimeout?: number;
  html?: boolean;
  clean?: boolean;
  types?: boolean;
  execute?: boolean;
  /** Print progress and results. Default true. */
  verbose?: boolean;
}

export interface RunReport {
  ok: boolean;
  notebooks: string[];
  clean: CleanProblem[];
  types: CellDiagnostic[];
  results: NotebookResult[];
  seconds: number;
}

const rel = (p: string) => path.relative(ROOT, p) || '.';

function indent(text: string, prefix = '    '): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

/** A failing notebook as the runner prints it: where, which code, what error. */
export function formatFailure(r: NotebookResult): string {
  const f = r.failure;
  if (!f) return `${rel(r.notebook)}: passed`;
  const where = f.index == null ? '' : ` cell ${f.index}`;
  const source = f.source.trim().split('\n');
  const shown = source.length > 8 ? [...source.slice(0, 8), `… (${source.length - 8} more lines)`] : source;
  return (
    `${rel(r.notebook)}${where} failed (${f.kind}):\n` +
    (f.source.trim() ? `  code:\n${indent(shown.join('\n'))}\n` : '') +
    `  error:\n${indent(f.message || '(no message)')}\n` +
    `  executed copy: ${rel(r.executed)}${r.html ? `, rendering: ${rel(r.html)}` : ''}`
  );
}

/** Run the checks and executions; see the file comment. */
export async function runNotebooks(options: RunOptions = {}): Promise<RunReport> {
  const start = Date.now();
  const verbose = options.verbose ?? true;
  const say = (s: string) => {
    if (verbose) console.log(s);
  };
  const notebooks = listNotebooks(options.paths?.length ? options.paths : [NOTEBOOKS_DIR]);
  const out = path.resolve(options.out ?? path.join(BUILD_DIR, 'notebooks'));
  const report: RunReport = { ok: true, notebooks, clean: [], types: [], results: [], seconds: 0 };
  if (notebooks.length === 0) throw new Error(`no notebooks found in ${(options.paths ?? [NOTEBOOKS_DIR]).join(', ')}`);

  if (options.clean ?? true) {
    report.clean = checkClean(notebooks);
    for (const p of report.clean)
      say(
        `✗ ${rel(p.notebook)}${p.cell == null ? '' : ` cell ${p.cell}`} ${p.problem} (committed notebooks carry no outputs; fix: npm run test:notebooks -- --strip ${rel(p.notebook)})`,
      );
    if (report.clean.length === 0) say(`✓ ${notebooks.length} notebook(s) clean: no outputs, no execution counts`);
  }

  const executing = options.execute ?? true;
  const types = options.types ?? true;
  if (executing || types) ensureBuild();

  if (types) {
    const t = Date.now();
    report.types = typecheckNotebooks(notebooks);
    for (const d of report.types) say(`✗ type error: ${formatDiagnostic(d)}`);
    if (report.types.length === 0)
      say(`✓ code cells type-check with the project's strict settings (${formatDuration(Date.now() - t)})`);
  }

  if (executing) {
    const python = ensureJupyter();
    ensureKernel(python);
    const jobs = Math.max(1, Math.min(options.jobs ?? Math.min(2, os.cpus().length), notebooks.length));
    const quick = options.quick ?? true;
    say(
      `executing ${notebooks.length} notebook(s), ${jobs} at a time${quick ? `, quick mode (${QUICK_ENV}=1)` : ', full mode'} → ${rel(out)}/`,
    );
    const bar = verbose ? terminalProgress({ total: notebooks.length, label: 'notebooks' }) : null;
    const queue = notebooks.map((nb, i) => ({ nb, i }));
    const results: NotebookResult[] = new Array(notebooks.length);
    let finished = 0;
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const executed = path.join(out, path.basename(item.nb));
        const env: Record<string, string> = quick ? { [QUICK_ENV]: '1' } : { [QUICK_ENV]: '0' };
        const r = await executeNotebook(item.nb, {
          python,
          executed,
          html: options.html ?? true,
          cellTimeout: options.cellTimeout ?? 900,
          env,
        });
        results[item.i] = r;
        finished += 1;
        bar?.update(finished, `${path.basename(item.nb)} ${r.ok ? 'passed' : 'FAILED'}`);
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
    bar?.finish();
    report.results = results;
    for (const r of results) {
      if (r.ok) {
        const slowest = [...r.cells].sort((a, b) => b.seconds - a.seconds)[0];
        say(
          `✓ ${rel(r.notebook)} ${formatDuration(r.seconds * 1000)}${slowest ? ` (slowest: cell ${slowest.index}, ${formatDuration(slowest.seconds * 1000)})` : ''}`,
        );
        for (const s of r.stderr) say(`  note: cell ${s.index} wrote to stderr: ${s.text.trim().split('\n')[0]}`);
      } else {
        say(`✗ ${formatFailure(r)}`);
      }
      if (r.htmlError) say(`  note: HTML rendering failed: ${r.htmlError.trim().split('\n').pop()}`);
    }
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(
      path.join(out, 'summary.json'),
      `${JSON.stringify({ quick, results: results.map((r) => ({ notebook: rel(r.notebook), ok: r.ok, seconds: r.seconds, cells: r.cells, failure: r.failure })) }, null, 2)}\n`,
    );
  }

  report.ok = report.clean.length === 0 && report.types.length === 0 && report.results.every((r) => r.ok);
  report.seconds = (Date.now() - start) / 1000;
  if (report.clean.length) say(`clean check: ${report.clean.length} problem(s)`);
  if (report.types.length) say(`type check: ${report.types.length} error(s)`);
  say(`time: ${formatDuration(report.seconds * 1000)}`);
  // The closing line alone, in the 'N passed, N failed' form that CI logs are read for; a
  // notebook counts as failed if its clean check or type check failed too.
  const checkFailed = new Set(
    [...report.clean.map((p) => p.notebook), ...report.types.map((d) => d.notebook)].filter((f) =>
      notebooks.includes(f),
    ),
  );
  const failedNotebooks = new Set([...report.results.filter((r) => !r.ok).map((r) => r.notebook), ...checkFailed]);
  const total = executing ? report.results.length : notebooks.length;
  say(`notebooks: ${total - failedNotebooks.size} passed, ${failedNotebooks.size} failed`);
  return report;
}

function parseArgs(argv: string[]): RunOptions & { strip: boolean } {
  const options: RunOptions & { strip: boolean } = { paths: [], strip: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v == null || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') options.out = value(i++, a);
    else if (a === '--jobs') options.jobs = Number(value(i++, a));
    else if (a === '--cell-timeout') options.cellTimeout = Number(value(i++, a));
    else if (a === '--full') options.quick = false;
    else if (a === '--no-html') options.html = false;
    else if (a === '--skip-clean') options.clean = false;
    else if (a === '--skip-types') options.types = false;
    else if (a === '--skip-exec') options.execute = false;
    else if (a === '--strip') options.strip = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else options.paths!.push(a);
  }
  if (options.jobs != null && (!Number.isInteger(options.jobs) || options.jobs < 1))
    throw new Error(`--jobs must be an integer ≥ 1, got ${options.jobs}`);
  if (options.cellTimeout != null && !(options.cellTimeout > 0))
    throw new Error(`--cell-timeout must be a number of seconds > 0, got ${options.cellTimeout}`);
  return options;
}

if (isMain(import.meta.url)) {
  try {
    const options = parseArgs(process.argv.slice(2));
    if (options.strip) {
      for (const file of listNotebooks(options.paths?.length ? options.paths : [NOTEBOOKS_DIR])) {
        console.log(`${stripOutputs(file) ? 'stripped outputs from' : 'already clean:'} ${rel(file)}`);
      }
      process.exit(0);
    }
    const report = await runNotebooks(options);
    process.exit(report.ok ? 0 : 1);
  } catch (e) {
    console.error(e instanceof SetupError ? `setup: ${e.message}` : `run-notebooks: ${(e as Error).message}`);
    process.exit(1);
  }
}
