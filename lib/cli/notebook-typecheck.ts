/**
 * Type-check the code cells of notebooks with the project's strict settings.
 *
 * tslab compiles each cell with its own TypeScript 5.0.4 and `strict` off, so a notebook can
 * run while holding code the library's compiler would reject. Here every notebook becomes one
 * TypeScript module — its code cells in order, which is how tslab shares top-level declarations
 * between cells — and the project's TypeScript (5.9, node_modules/typescript/bin/tsc) checks it
 * with tsconfig.json's options (strict, noUnusedLocals, …). Top-level `await` is valid there
 * (an ES module under NodeNext). Errors are reported against the notebook, the cell index and
 * the line inside the cell.
 *
 * Departures from tslab, on purpose: redeclaring a top-level name in a later cell (which tslab
 * allows) is an error here — wrap scratch cells in `{ … }` — and importing
 * the library's sources (`../lib/…`) is an error, since tslab cannot load them (its rootDir is
 * the notebook's folder): notebooks import the build, `../dist/lib/node.js`.
 *
 * The generated files go to build/notebook-typecheck/run-<pid>/ (kept only when there are
 * errors). Relative import specifiers are rewritten so that they resolve from there exactly as
 * from the notebook's folder.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUILD_DIR, ROOT, TSC } from './jupyter.js';
import { cellSource, readNotebook } from './notebook-files.js';

export interface CellDiagnostic {
  notebook: string;
  /** Index of the cell in the notebook's cell list (0-based), null if outside any cell. */
  cell: number | null;
  /** Line and column inside the cell (1-based). */
  line: number;
  column: number;
  code: string;
  message: string;
}

interface LineOrigin {
  cell: number | null;
  line: number;
}

/** Relative specifiers in import/export/require/import(): group 1 prefix, 2 quote, 3 path. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]*)\2/g;

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

/** One notebook → one module; returns the generated text and where each of its lines came from. */
export function notebookToModule(
  notebookFile: string,
  outFile: string,
): { text: string; origins: LineOrigin[]; problems: CellDiagnostic[] } {
  const nb = readNotebook(notebookFile);
  const fromDir = path.dirname(notebookFile);
  const toDir = path.dirname(outFile);
  const lines: string[] = [
    `// Generated from ${toPosix(path.relative(ROOT, notebookFile))} for type checking; do not edit.`,
    'export {};',
  ];
  const origins: LineOrigin[] = [
    { cell: null, line: 0 },
    { cell: null, line: 0 },
  ];
  const problems: CellDiagnostic[] = [];
  nb.cells.forEach((cell, index) => {
    if (cell.cell_type !== 'code') return;
    lines.push(`// ---- cell ${index}`);
    origins.push({ cell: index, line: 0 });
    cellSource(cell)
      .split('\n')
      .forEach((raw, i) => {
        const line = raw.replace(SPECIFIER, (_m, prefix: string, quote: string, spec: string) => {
          const target = path.resolve(fromDir, spec);
          if (toPosix(path.relative(ROOT, target)).startsWith('lib/')) {
            problems.push({
              notebook: notebookFile,
              cell: index,
              line: i + 1,
              column: raw.indexOf(spec) + 1,
              code: 'notebook',
              message: `'${spec}' imports the library's TypeScript sources, which tslab cannot load (outside its rootDir); import the build, e.g. '../dist/lib/node.js'`,
            });
          }
          let rel = toPosix(path.relative(toDir, target));
          if (!rel.startsWith('.')) rel = `./${rel}`;
          return `${prefix}${quote}${rel}${quote}`;
        });
        lines.push(line);
        origins.push({ cell: index, line: i + 1 });
      });
  });
  return { text: `${lines.join('\n')}\n`, origins, problems };
}

/** Type-check the notebooks; returns every diagnostic mapped back to its cell (empty = pass). */
export function typecheckNotebooks(
  files: string[],
  workDir = path.join(BUILD_DIR, 'notebook-typecheck', `run-${process.pid}`),
): CellDiagnostic[] {
  // A folder per process: several runners may share one checkout (e.g. in parallel sessions).
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  const diagnostics: CellDiagnostic[] = [];
  const modules = new Map<string, { notebook: string; origins: LineOrigin[] }>();
  const used = new Set<string>();
  for (const file of files) {
    let base = path.basename(file, '.ipynb').replace(/[^A-Za-z0-9_.-]/g, '_');
    while (used.has(base)) base += '_';
    used.add(base);
    const out = path.join(workDir, `${base}.ts`);
    const { text, origins, problems } = notebookToModule(file, out);
    fs.writeFileSync(out, text);
    modules.set(path.resolve(out), { notebook: file, origins });
    diagnostics.push(...problems);
  }
  if (modules.size === 0) return diagnostics;
  const tsconfig = {
    extends: toPosix(path.relative(workDir, path.join(ROOT, 'tsconfig.json'))),
    compilerOptions: { noEmit: true, types: ['node'], sourceMap: false, declaration: false },
    files: [...modules.keys()].map((f) => `./${path.basename(f)}`),
    include: [],
  };
  const project = path.join(workDir, 'tsconfig.json');
  fs.writeFileSync(project, `${JSON.stringify(tsconfig, null, 2)}\n`);
  const r = spawnSync(process.execPath, [TSC, '-p', project, '--pretty', 'false'], { cwd: ROOT, encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`;
  // `file(line,col): error TScode: message` then indented continuation lines.
  const head = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/;
  let last: CellDiagnostic | null = null;
  for (const text of output.split('\n')) {
    const m = head.exec(text);
    if (m) {
      const [, file, lineText, colText, code, message] = m as unknown as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      const module = modules.get(path.resolve(ROOT, file));
      const origin = module?.origins[Number(lineText) - 1];
      last = {
        notebook: module?.notebook ?? path.resolve(ROOT, file),
        cell: origin?.cell ?? null,
        line: origin?.line ?? Number(lineText),
        column: Number(colText),
        code,
        message,
      };
      diagnostics.push(last);
    } else if (last && /^\s+\S/.test(text)) {
      last.message += `\n${text}`;
    } else if (text.trim() && !last) {
      diagnostics.push({ notebook: project, cell: null, line: 0, column: 0, code: 'tsc', message: text.trim() });
    }
  }
  if (r.status !== 0 && diagnostics.length === 0) {
    diagnostics.push({
      notebook: project,
      cell: null,
      line: 0,
      column: 0,
      code: 'tsc',
      message: `tsc exited with ${r.status}: ${output.trim()}`,
    });
  }
  // Keep the generated modules only when they have something to show.
  if (diagnostics.length === 0) fs.rmSync(workDir, { recursive: true, force: true });
  return diagnostics;
}

/** `notebooks/00-tour.ipynb cell 3, line 2:5 TS2322 Type …` */
export function formatDiagnostic(d: CellDiagnostic): string {
  const where = d.cell == null ? '' : ` cell ${d.cell}, line ${d.line}:${d.column}`;
  return `${toPosix(path.relative(ROOT, d.notebook))}${where} ${d.code}: ${d.message}`;
}
