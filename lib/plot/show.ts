/**
 * `show(figure)`: display a figure in a notebook as one output that renders everywhere.
 *
 * The output is a MIME bundle of three representations; each front end takes the richest one
 * it can render:
 * - `application/vnd.plotly.v1+json` — JupyterLab with plotly's extension, VS Code;
 * - `text/html` — a <div> and a script calling Plotly.newPlot: the classic notebook (which has
 *   no plotly MIME renderer), JupyterLab without the extension, nbconvert's HTML export. The
 *   first figure of a kernel session also carries plotly.js itself (inlined, ~4.8 MB, guarded
 *   so a page never runs it twice); later figures wait for `window.Plotly`. Scripts run only in
 *   trusted notebooks: ones you executed yourself, or signed with `jupyter trust`.
 * - `text/plain` — a one-line summary, for terminals and logs.
 *
 * Outside a notebook, show() prints the summary and a hint to use writeHtml().
 */
import { checkOptions } from '../ops/check.js';
import { describeFigure, type Figure } from './figure.js';
import { escapeFigureText, figureHtml } from './html.js';
import { displayBundle } from './notebook.js';

/** The plotly MIME type (plotly's Jupyter renderer and VS Code read it). */
export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

let plotlySent = false;

/** Options of {@link show}. */
export interface ShowOptions {
  /**
   * Inline plotly.js in this output. Default: only in the first figure of the kernel session.
   * Force it when you keep an output whose notebook lost the first figure's output.
   */
  includePlotly?: boolean;
}

/** The MIME bundle that show() sends (exposed for tests and for other front ends). */
export function figureBundle(figure: Figure, options: { includePlotly?: boolean } = {}): Record<string, unknown> {
  checkFigure(figure);
  return {
    [PLOTLY_MIME]: {
      data: escapeFigureText(figure.data),
      layout: escapeFigureText(figure.layout),
      ...(figure.config ? { config: figure.config } : {}),
    },
    'text/html': figureHtml(figure, { includePlotly: options.includePlotly ?? false }),
    'text/plain': describeFigure(figure),
  };
}

/**
 * Display the figure in the running notebook cell (see the file comment).
 *
 * Does nothing visible outside a notebook (no kernel to send to).
 *
 * @example
 * ```ts
 * // In a tslab notebook cell (sm = the Node entry):
 * plot.show(plot.lineChart([{ name: 'loss', y: [2.3, 1.1, 0.7, 0.5] }], { xTitle: 'step', yTitle: 'loss' }));
 * ```
 */
export function show(figure: Figure, options: ShowOptions = {}): void {
  checkOptions(options, { includePlotly: 'boolean' }, 'show');
  checkFigure(figure);
  const includePlotly = options.includePlotly ?? !plotlySent;
  const sent = displayBundle(figureBundle(figure, { includePlotly }));
  if (sent) {
    if (includePlotly) plotlySent = true;
    return;
  }
  console.log(
    `${describeFigure(figure)}\n(not in a notebook: use writeHtml(figure, 'build/figure.html') to look at it)`,
  );
}

function checkFigure(figure: Figure): void {
  if (figure == null || !Array.isArray(figure.data) || typeof figure.layout !== 'object' || figure.layout == null) {
    throw new Error(
      `a figure must be an object {data: Trace[], layout: {...}}, got ${figure === null ? 'null' : typeof figure}`,
    );
  }
}
