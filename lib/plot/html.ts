/**
 * Figures as HTML: a fragment for notebook outputs and a standalone page for files. Nothing is
 * fetched from the network: plotly.js comes from the npm package plotly.js-dist-min and is
 * inlined (about 4.8 MB).
 *
 * plotly.js 3.x's bundle is UMD without an AMD branch: where a CommonJS `module` exists it
 * exports itself there, otherwise it sets `window.Plotly`. The classic notebook page has
 * require.js, which such a bundle ignores; we still run the bundle inside a function whose
 * `module`, `exports` and `define` are undefined, so that no loader on the page (require.js in
 * notebook 6, a bundler's `module` in some front ends) can capture it, and it always lands on
 * `window.Plotly`.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { checkOptions } from '../ops/check.js';
import { describeFigure, type Figure } from './figure.js';

const require = createRequire(import.meta.url);
let plotlySource: string | null = null;

/** plotly.js (minified) as text, read once from node_modules. */
export function plotlyJs(): string {
  if (plotlySource == null) {
    const file = require.resolve('plotly.js-dist-min');
    plotlySource = fs.readFileSync(file, 'utf8');
  }
  return plotlySource;
}

/**
 * Every string of a figure's data and layout with &, < and > as entities: plotly renders a subset
 * of HTML in titles, names, labels and hover text (and front ends may render more), so a name
 * such as `<img src=x onerror=…>` must reach them as text. plotly decodes the entities when it
 * draws, so ordinary text looks the same. Used by every sink (figureHtml, show's plotly MIME).
 */
export function escapeFigureText<T>(value: T): T {
  if (typeof value === 'string') return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') as T;
  if (Array.isArray(value)) return value.map((v: unknown) => escapeFigureText(v)) as T;
  if (value != null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeFigureText(v)])) as T;
  }
  return value;
}

/** The version of the inlined plotly.js. */
export function plotlyVersion(): string {
  return (require('plotly.js-dist-min/package.json') as { version: string }).version;
}

/** Text safe inside a <script> element: no `</script`, no `<!--`. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** JSON safe inside a <script> element (`<` escaped, which JSON allows as \u003c). */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A <script> that defines window.Plotly unless the page already has it. */
export function plotlyLoaderScript(): string {
  return (
    '<script type="text/javascript">if (!window.Plotly) { (function (module, exports, define) {\n' +
    scriptSafe(plotlyJs()) +
    '\n}).call(window, undefined, undefined, undefined); }</script>'
  );
}

let counter = 0;

/** A fresh element id for one plot. */
function newId(): string {
  counter += 1;
  return `softmoe-plot-${Date.now().toString(36)}-${counter}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}

/** Options of {@link figureHtml}. */
export interface FigureHtmlOptions {
  /** Inline plotly.js before the plot (guarded: it runs only if the page has no Plotly). Default false. */
  includePlotly?: boolean;
  /** Element id; default a fresh unique id. */
  id?: string;
}

/**
 * The line an untrusted notebook shows instead of the figure: Jupyter strips scripts from
 * untrusted outputs but keeps their text, so the summary and how to get the figure stay visible.
 */
export function untrustedNote(figure: Figure): string {
  return `${describeFigure(figure)}: not drawn, the notebook is not trusted. Run the cell, or trust the notebook (JupyterLab: command palette › Trust Notebook; classic: File › Trust Notebook; shell: jupyter trust NOTEBOOK.ipynb).`;
}

/**
 * An HTML fragment that draws the figure: a <div>, a note (untrustedNote) and a script that
 * removes the note and calls Plotly.newPlot once window.Plotly exists. Where the script does not
 * run (an untrusted notebook) the note stays and the empty <div> takes no room. If plotly.js
 * never arrives (an output saved without the cell that carried plotly.js, or a page reloaded
 * while the kernel kept running) the note says so after 10 s.
 */
export function figureHtml(figure: Figure, options: FigureHtmlOptions = {}): string {
  checkOptions(options, { includePlotly: 'boolean', id: 'string' }, 'figureHtml');
  const id = options.id ?? newId();
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(id))
    throw new Error(
      `figureHtml id must be letters, digits, _ and - (starting with a letter), got ${JSON.stringify(id)}`,
    );
  const height = typeof figure.layout.height === 'number' ? figure.layout.height : 420;
  const width = typeof figure.layout.width === 'number' ? `${figure.layout.width}px` : '100%';
  const config = { responsive: true, displaylogo: false, ...(figure.config ?? {}) };
  const spec = jsonForScript({ data: escapeFigureText(figure.data), layout: escapeFigureText(figure.layout), config });
  const noteId = `${id}-note`;
  const notLoaded = jsonForScript(
    `${describeFigure(figure)}: plotly.js is not loaded on this page: run the notebook from the top (Restart & Run All), or show this figure with sm.plot.show(figure, { includePlotly: true }).`,
  );
  const draw =
    `<script type="text/javascript">(function () {\n` +
    `  var spec = ${spec};\n` +
    `  var tries = 0;\n` +
    `  function draw() {\n` +
    `    var el = document.getElementById(${JSON.stringify(id)});\n` +
    `    if (!el) return;\n` +
    `    var note = document.getElementById(${JSON.stringify(noteId)});\n` +
    `    if (window.Plotly && window.Plotly.newPlot) {\n` +
    `      if (note && note.parentNode) note.parentNode.removeChild(note);\n` +
    `      if (el.style) el.style.height = '${height}px';\n` +
    `      window.Plotly.newPlot(el, spec.data, spec.layout, spec.config);\n` +
    `      return;\n` +
    `    }\n` +
    `    if (++tries > 200) { (note || el).textContent = ${notLoaded}; return; }\n` +
    `    setTimeout(draw, 50);\n` +
    `  }\n` +
    `  draw();\n` +
    `})();</script>`;
  const div = `<div id="${id}" class="softmoe-plot" style="width: ${width};"></div>`;
  const note = `<div id="${noteId}" class="softmoe-plot-note" style="font-family: monospace; font-size: 0.9em; white-space: pre-wrap;">${escapeHtml(untrustedNote(figure))}</div>`;
  return `${options.includePlotly ? plotlyLoaderScript() : ''}${div}${note}${draw}`;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A complete HTML page that draws the figures, with plotly.js inlined (works offline). */
export function standaloneHtml(figures: Figure | Figure[], title = 'Soft MoE workbook figure'): string {
  const list = Array.isArray(figures) ? figures : [figures];
  if (list.length === 0) throw new Error('standaloneHtml needs at least one figure');
  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<title>${escapeHtml(title)}</title>\n` +
    '<style>body { font-family: sans-serif; margin: 1.5em; } .softmoe-plot { margin-bottom: 1.5em; }</style>\n' +
    `</head>\n<body>\n${plotlyLoaderScript()}\n` +
    list.map((f) => figureHtml(f)).join('\n') +
    '\n</body>\n</html>\n'
  );
}

/** Write `standaloneHtml(figures)` to `file` (folders are created); returns the absolute path. */
export function writeHtml(figures: Figure | Figure[], file: string, title?: string): string {
  const target = path.resolve(file);
  const html = standaloneHtml(figures, title);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, html);
  } catch (e) {
    throw new Error(`cannot write ${target}: ${(e as Error).message}`);
  }
  return target;
}
