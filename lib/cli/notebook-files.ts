/**
 * Reading .ipynb files (nbformat 4) and the checks that need no kernel: committed notebooks carry
 * no outputs and no execution counts (clean diffs), and use the tslab kernel.
 */
import { writeFileAtomicSync } from '../train/file-safety.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KERNEL_NAME } from './jupyter.js';

export interface NotebookCell {
  cell_type: 'code' | 'markdown' | 'raw';
  source: string | string[];
  metadata?: Record<string, unknown>;
  outputs?: unknown[];
  execution_count?: number | null;
}

export interface Notebook {
  cells: NotebookCell[];
  metadata: { kernelspec?: { name?: string }; [key: string]: unknown };
  nbformat: number;
  nbformat_minor: number;
}

/** Read and minimally validate a notebook file. */
export function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
  } catch (e) {
    throw new Error(`${file} is not a readable JSON notebook: ${(e as Error).message}`);
  }
  if (nb == null || !Array.isArray(nb.cells) || nb.nbformat !== 4) {
    throw new Error(`${file} is not an nbformat 4 notebook (expected {nbformat: 4, cells: [...]})`);
  }
  return nb;
}

/** A cell's source as one string (nbformat stores it as a string or a list of lines). */
export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source;
}

/** The .ipynb files named by `paths` (files, or folders whose *.ipynb are taken), sorted. */
export function listNotebooks(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    const full = path.resolve(p);
    if (!fs.existsSync(full)) throw new Error(`${p} does not exist (expected a notebook or a folder of notebooks)`);
    if (fs.statSync(full).isDirectory()) {
      for (const name of fs.readdirSync(full).sort()) if (name.endsWith('.ipynb')) files.push(path.join(full, name));
    } else if (full.endsWith('.ipynb')) {
      files.push(full);
    } else {
      throw new Error(`${p} is not an .ipynb file`);
    }
  }
  return [...new Set(files)];
}

export interface CleanProblem {
  notebook: string;
  /** Index of the cell in the notebook's cell list (null for notebook-level problems). */
  cell: number | null;
  problem: string;
}

/** Outputs, execution counts and a kernel other than tslab, in the given notebooks. */
export function checkClean(files: string[]): CleanProblem[] {
  const problems: CleanProblem[] = [];
  for (const file of files) {
    const nb = readNotebook(file);
    const kernel = nb.metadata.kernelspec?.name;
    if (kernel !== KERNEL_NAME) {
      problems.push({
        notebook: file,
        cell: null,
        problem: `kernelspec.name is ${JSON.stringify(kernel)}, expected "${KERNEL_NAME}"`,
      });
    }
    nb.cells.forEach((cell, index) => {
      if (cell.cell_type !== 'code') return;
      if (cell.outputs && cell.outputs.length > 0)
        problems.push({ notebook: file, cell: index, problem: `has ${cell.outputs.length} output(s)` });
      if (cell.execution_count != null)
        problems.push({ notebook: file, cell: index, problem: `has execution_count ${cell.execution_count}` });
    });
  }
  return problems;
}

/** Remove outputs and execution counts in place (the fix the clean check asks for). */
export function stripOutputs(file: string): boolean {
  const nb = readNotebook(file);
  let changed = false;
  for (const cell of nb.cells) {
    if (cell.cell_type !== 'code') continue;
    if (cell.outputs?.length || cell.execution_count != null) changed = true;
    cell.outputs = [];
    cell.execution_count = null;
  }
  // Atomic: a notebook is never left half-written (the error names the file).
  if (changed) writeFileAtomicSync(file, `${JSON.stringify(nb, null, 1)}\n`);
  return changed;
}
