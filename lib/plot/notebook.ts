/**
 * The bridge to the tslab notebook kernel, and the workbook's quick mode.
 *
 * tslab's public display API (`tslab.display.raw(mime, data)`) sends one MIME type per output.
 * A figure needs one output carrying several (plotly JSON + HTML + text) so that each front end
 * picks what it renders. tslab keeps the function that sends a display message of the running
 * cell in `lastWriteDisplayData`, exported by its module `tslab/dist/jupyter.js` (tslab 1.0.22),
 * and that function takes a whole Jupyter `display_data` content `{data, metadata, transient}`.
 * We find that module in Node's module cache (the kernel loaded it): the library does not
 * depend on tslab, and outside a kernel nothing is found and callers fall back to text.
 */
import { createRequire } from 'node:module';
import { envVar } from '../ops/env.js';

const require = createRequire(import.meta.url);

/** Content of a Jupyter display_data message. */
export interface DisplayData {
  /** The MIME bundle: MIME type → content. */
  data: Record<string, unknown>;
  /** Per-MIME metadata (empty here). */
  metadata: Record<string, unknown>;
  /** Not saved in the notebook: the display id. */
  transient: {
    /** Id of the display to create or update (progress lines update in place). */
    display_id?: string;
  };
}

type WriteDisplayData = (content: DisplayData, update: boolean) => void;

const TSLAB_JUPYTER = /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/;

/** tslab's writer for the running cell, or null outside a tslab kernel. */
function tslabWriter(): WriteDisplayData | null {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!TSLAB_JUPYTER.test(file)) continue;
    const writer = (mod?.exports as { lastWriteDisplayData?: unknown } | undefined)?.lastWriteDisplayData;
    if (typeof writer === 'function') return writer as WriteDisplayData;
  }
  return null;
}

/** True inside a tslab kernel that is executing a cell. */
export function inNotebook(): boolean {
  return tslabWriter() != null;
}

/**
 * Send one output with several MIME types (a "MIME bundle") from the running notebook cell.
 * With `displayId`, later calls with `update: true` replace that output in place (progress).
 * Returns false outside a notebook (nothing sent).
 */
export function displayBundle(
  data: Record<string, unknown>,
  options: { displayId?: string; update?: boolean } = {},
): boolean {
  const writer = tslabWriter();
  if (writer == null) return false;
  const transient: DisplayData['transient'] = {};
  if (options.displayId != null) transient.display_id = options.displayId;
  writer({ data, metadata: {}, transient }, Boolean(options.update));
  return true;
}

/** Environment variable that turns on the workbook's quick mode (set by the notebook runner). */
export const QUICK_ENV = 'SOFTMOE_QUICK';

/**
 * Quick mode: notebooks shrink training (fewer steps, smaller data) so that CI can execute
 * every notebook in minutes. On when SOFTMOE_QUICK is set to anything but '', '0' or 'false'.
 */
export function quickMode(): boolean {
  const value = envVar(QUICK_ENV);
  return value != null && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** `quick` in quick mode, else `full`: `const steps = quickOr(20, 2000)`. */
export function quickOr<T>(quick: T, full: T): T {
  return quickMode() ? quick : full;
}
