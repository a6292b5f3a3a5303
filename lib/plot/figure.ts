/**
 * Figure builders for what the workbook shows: curves and Pareto fronts (line/scatter), dispatch
 * and combine matrices (heat maps), patches and per-slot weight maps over an image (image grids),
 * expert load (bars).
 *
 * Each builder returns a plain plotly figure `{data, layout}` — JSON only, no functions, no typed
 * arrays — so the same object can be shown in a notebook (show.ts), written to a standalone HTML
 * file (html.ts) or saved as JSON. Plotly's own schema is large; the types here name the fields
 * the builders set and leave the rest open, so a caller can add any plotly attribute.
 */
import * as tf from '@tensorflow/tfjs';
import { checkOptions } from '../ops/check.js';

/** One plotly trace (`type` plus any plotly attributes). */
export interface Trace {
  /** Plotly trace type: 'scatter', 'heatmap', 'bar', … */
  type: string;
  /** Legend name. */
  name?: string;
  [attribute: string]: unknown;
}

/** Plotly layout (any plotly attributes). */
export type Layout = Record<string, unknown>;

/** A plotly figure: what `Plotly.newPlot(el, data, layout, config)` takes. */
export interface Figure {
  /** The traces, drawn in order. */
  data: Trace[];
  /** Axes, titles, sizes, margins. */
  layout: Layout;
  /** Plotly config (e.g. `{ responsive: true }`); optional. */
  config?: Record<string, unknown>;
}

/** Options shared by the builders. */
const AXES_OPTION_KINDS = {
  title: 'string',
  xTitle: 'string',
  yTitle: 'string',
  logX: 'boolean',
  logY: 'boolean',
  width: 'number',
  height: 'number',
} as const;

/** Options shared by the builders: titles, log axes, size. */
export interface AxesOptions {
  /** Figure title. Default none. */
  title?: string;
  /** Title of the x axis. */
  xTitle?: string;
  /** Title of the y axis. */
  yTitle?: string;
  /** Log-scale axes. Default false. */
  logX?: boolean;
  /** Log-scale y axis. Default false. */
  logY?: boolean;
  /** Pixel size; the width defaults to the page width (plotly's autosize). */
  width?: number;
  /** Height in pixels. Default 420. */
  height?: number;
}

/** Numbers as a plain array: tensors and typed arrays become JSON-friendly number[]. */
export type Numbers = ArrayLike<number>;

function toArray(values: Numbers, name: string): number[] {
  if (values == null || typeof values.length !== 'number')
    throw new Error(`${name} must be an array of numbers, got ${String(values)}`);
  const out = Array.from(values, Number);
  return out;
}

function baseLayout(options: AxesOptions): Layout {
  const layout: Layout = {
    margin: { l: 60, r: 20, t: options.title ? 50 : 20, b: 50 },
    // Axis type only when asked for: plotly then infers linear, category (string labels) or date.
    // automargin: the margins grow to fit long tick labels and titles instead of cutting them.
    xaxis: {
      title: { text: options.xTitle ?? '' },
      zeroline: false,
      automargin: true,
      ...(options.logX ? { type: 'log' } : {}),
    },
    yaxis: {
      title: { text: options.yTitle ?? '' },
      zeroline: false,
      automargin: true,
      ...(options.logY ? { type: 'log' } : {}),
    },
    height: options.height ?? 420,
  };
  if (options.title) layout.title = { text: options.title };
  if (options.width != null) layout.width = options.width;
  return layout;
}

// ---------------------------------------------------------------------------------------------
// Lines and scatter

/** One curve or set of points of {@link lineChart} / {@link scatterChart}. */
export interface Series {
  /** Legend name (also used in error messages). */
  name: string;
  /** x values; default 0, 1, 2, … */
  x?: Numbers | string[];
  /** y values (any array-like of numbers). */
  y: Numbers;
  /** 'lines' (default for lineChart), 'markers' (default for scatterChart), 'lines+markers'. */
  mode?: 'lines' | 'markers' | 'lines+markers';
  /** Hover/label text for each point. */
  text?: string[];
  /** Write `text` beside each point on the figure (not only on hover). Default false. */
  showText?: boolean;
  /** Line style. Default 'solid'. */
  dash?: 'solid' | 'dash' | 'dot' | 'dashdot';
  /** CSS colour of line and markers. Default plotly's colour cycle. */
  color?: string;
}

const DASHES = ['solid', 'dash', 'dot', 'dashdot'] as const;
const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up', 'x', 'cross'] as const;

function seriesTrace(s: Series, defaultMode: Series['mode'], index: number): Trace {
  const y = toArray(s.y, `series ${JSON.stringify(s.name)} y`);
  const x =
    s.x == null
      ? y.map((_, i) => i)
      : Array.isArray(s.x) && typeof s.x[0] === 'string'
        ? (s.x as string[]).slice()
        : toArray(s.x as Numbers, `series ${JSON.stringify(s.name)} x`);
  if (x.length !== y.length) {
    throw new Error(
      `series ${JSON.stringify(s.name)} (#${index}) has ${x.length} x values but ${y.length} y values; they must match`,
    );
  }
  if (s.showText && (!s.text || s.text.length !== y.length)) {
    throw new Error(
      `series ${JSON.stringify(s.name)} (#${index}) has showText but ${s.text?.length ?? 0} texts for ${y.length} points`,
    );
  }
  const mode = s.mode ?? defaultMode ?? 'lines';
  const trace: Trace = { type: 'scatter', name: s.name, x, y, mode: s.showText ? `${mode}+text` : mode };
  if (s.text) trace.text = s.text.slice();
  if (s.showText) trace.textposition = 'top center';
  if (s.dash || s.color) trace.line = { ...(s.dash ? { dash: s.dash } : {}), ...(s.color ? { color: s.color } : {}) };
  if (s.color) trace.marker = { color: s.color };
  return trace;
}

/**
 * Series that would be drawn alike — the same explicit colour, dash and mode — are told apart:
 * the later ones get the next dash pattern (lines) and marker symbol (markers), so that no two
 * series of a figure look the same and the legend tells them apart. Series without an explicit
 * colour take plotly's colour cycle and are left alone (up to its 10 colours).
 */
function distinguish(traces: Trace[]): Trace[] {
  const seen = new Map<string, number>();
  return traces.map((t) => {
    const line = (t.line ?? {}) as { color?: string; dash?: string };
    if (line.color == null) return t;
    const key = `${line.color}|${line.dash ?? 'solid'}|${String(t.mode)}`;
    const count = seen.get(key) ?? 0;
    seen.set(key, count + 1);
    if (count === 0) return t;
    const dash = DASHES[(DASHES.indexOf((line.dash ?? 'solid') as (typeof DASHES)[number]) + count) % DASHES.length]!;
    const symbol = SYMBOLS[count % SYMBOLS.length]!;
    return { ...t, line: { ...line, dash }, marker: { ...((t.marker ?? {}) as object), symbol } };
  });
}

/**
 * Ticks of a log axis. The x axis over a few measured sizes (2, 4, …, 64: at most 12 values) gets
 * its ticks at exactly those values. Otherwise, over at most 3 decades, plotly would label every
 * digit (2, 3, … 9) of each decade: keep 1, 2 and 5 ('D2'); wider ranges keep plotly's choice.
 */
function logTicks(traces: Trace[], layout: Layout, axis: 'x' | 'y'): void {
  const ax = layout[`${axis}axis`] as Record<string, unknown>;
  if (ax.type !== 'log') return;
  const values = new Set<number>();
  for (const t of traces)
    for (const v of (t[axis] ?? []) as unknown[]) if (typeof v === 'number' && v > 0) values.add(v);
  if (values.size < 2) return;
  if (axis === 'x' && values.size <= 12) {
    ax.tickmode = 'array';
    ax.tickvals = [...values].sort((a, b) => a - b);
    // Written out in full (plotly would write 16384 as '16.384k').
    ax.ticktext = (ax.tickvals as number[]).map((v) => String(Number(v.toPrecision(6))));
    return;
  }
  if (Math.log10(Math.max(...values) / Math.min(...values)) <= 3) ax.dtick = 'D2';
}

/** Legend shown whenever a trace has a name (plotly hides it for a single trace). */
function xyFigure(traces: Trace[], options: AxesOptions): Figure {
  const layout = baseLayout(options);
  if (traces.some((t) => t.name)) layout.showlegend = true;
  logTicks(traces, layout, 'x');
  logTicks(traces, layout, 'y');
  return { data: distinguish(traces), layout };
}

/**
 * Curves (training loss, accuracy over steps, …): one line per series.
 *
 * @throws Error if there is no series, or a series has x and y of different lengths.
 */
export function lineChart(series: Series[], options: AxesOptions = {}): Figure {
  checkOptions(options, AXES_OPTION_KINDS, 'lineChart');
  if (!Array.isArray(series) || series.length === 0) throw new Error('lineChart needs at least one series');
  return xyFigure(
    series.map((s, i) => seriesTrace(s, 'lines', i)),
    options,
  );
}

/**
 * Points (one marker per run, model, …): one trace per series.
 *
 * @throws Error if there is no series, or a series has x and y of different lengths.
 */
export function scatterChart(series: Series[], options: AxesOptions = {}): Figure {
  checkOptions(options, AXES_OPTION_KINDS, 'scatterChart');
  if (!Array.isArray(series) || series.length === 0) throw new Error('scatterChart needs at least one series');
  return xyFigure(
    series.map((s, i) => seriesTrace(s, 'markers', i)),
    options,
  );
}

// ---------------------------------------------------------------------------------------------
// Pareto fronts (the paper's Figures 3–4: quality against cost, one front per model family)

/** Which end of an axis is better: 'min' (e.g. cost) or 'max' (e.g. accuracy). */
export type Direction = 'min' | 'max';

/** Plotly's default trace colours (layout.colorway), in order. */
export const PLOTLY_COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

/** One model or run on a cost/quality plot. */
export interface ParetoPoint {
  /** Cost (e.g. FLOPs or step time). */
  x: number;
  /** Quality (e.g. accuracy). */
  y: number;
  /** Hover text. */
  label?: string;
}

/**
 * Indices of the Pareto-optimal points, ordered by x: a point is kept when no other point is at
 * least as good on both axes and better on one. Default: lower x (cost) and higher y (quality)
 * are better, as in the paper's cost/quality plots. Exact duplicates keep their first index.
 *
 * @throws Error if a point has a non-finite x or y.
 */
export function paretoFront(
  points: readonly ParetoPoint[],
  directions: { x?: Direction; y?: Direction } = {},
): number[] {
  const sx = (directions.x ?? 'min') === 'min' ? 1 : -1;
  const sy = (directions.y ?? 'max') === 'min' ? 1 : -1;
  points.forEach((p, i) => {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y))
      throw new Error(`pareto point #${i} must have finite x and y, got (${p.x}, ${p.y})`);
  });
  // Minimise a = sx·x and b = sy·y: sort by a then b, keep each point that improves the best b.
  const order = points
    .map((p, i) => ({ a: sx * p.x, b: sy * p.y, i }))
    .sort((u, v) => u.a - v.a || u.b - v.b || u.i - v.i);
  const front: number[] = [];
  let best = Infinity;
  for (const { b, i } of order) {
    if (b < best) {
      front.push(i);
      best = b;
    }
  }
  return front.sort((i, j) => points[i]!.x - points[j]!.x);
}

/** One model family of {@link paretoChart}: its points and, drawn from them, its Pareto front. */
export interface ParetoSeries {
  /** Legend name. */
  name: string;
  /** The family's points (any order). */
  points: ParetoPoint[];
  /** CSS colour of points and front. Default plotly's colour cycle. */
  color?: string;
}

/**
 * Every point as a marker and, per series, its Pareto front as a dashed line. `labelPoints`
 * writes each point's label beside it (readable without hovering).
 *
 * @throws Error if there is no series, or a point has a non-finite x or y.
 */
export function paretoChart(
  series: ParetoSeries[],
  options: AxesOptions & { x?: Direction; y?: Direction; labelPoints?: boolean } = {},
): Figure {
  checkOptions(
    options,
    { ...AXES_OPTION_KINDS, x: ['min', 'max'], y: ['min', 'max'], labelPoints: 'boolean' },
    'paretoChart',
  );
  if (!Array.isArray(series) || series.length === 0) throw new Error('paretoChart needs at least one series');
  const data: Trace[] = [];
  series.forEach((s, i) => {
    // The front line takes its series' colour (plotly would give each trace the next colour).
    const color = s.color ?? PLOTLY_COLORS[i % PLOTLY_COLORS.length]!;
    const marker: Record<string, unknown> = { size: 9, color };
    data.push({
      type: 'scatter',
      mode: options.labelPoints ? 'markers+text' : 'markers',
      ...(options.labelPoints ? { textposition: 'top center' } : {}),
      name: s.name,
      legendgroup: s.name,
      x: s.points.map((p) => p.x),
      y: s.points.map((p) => p.y),
      text: s.points.map((p) => p.label ?? ''),
      marker,
    });
    const front = paretoFront(s.points, { x: options.x ?? 'min', y: options.y ?? 'max' });
    data.push({
      type: 'scatter',
      mode: 'lines',
      name: `${s.name} (Pareto front)`,
      legendgroup: s.name,
      showlegend: false,
      x: front.map((i) => s.points[i]!.x),
      y: front.map((i) => s.points[i]!.y),
      line: { dash: 'dash', color },
      hoverinfo: 'skip',
    });
  });
  const layout = baseLayout(options);
  layout.showlegend = true;
  return { data, layout };
}

// ---------------------------------------------------------------------------------------------
// Heat maps (dispatch and combine weights: tokens × slots)

/** A matrix: rows of numbers, or a 2-D tensor (read synchronously; call outside tf.tidy). */
export type MatrixInput = ArrayLike<Numbers> | tf.Tensor;

/** [smallest, largest] finite value of the rows ([Infinity, -Infinity] when there is none). */
function finiteRange(rows: number[][]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of rows) {
    for (const v of row) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

/**
 * Rows of a matrix as number[][]; rejects ragged rows and non-2-D tensors.
 *
 * @throws Error if the input is empty, ragged, or a tensor that is not 2-D.
 */
export function toMatrix(values: MatrixInput, name = 'matrix'): number[][] {
  if (values instanceof tf.Tensor) {
    if (values.rank !== 2) throw new Error(`${name} must be a 2-D tensor, got shape [${values.shape.join(', ')}]`);
    return values.arraySync() as number[][];
  }
  if (values == null || typeof values.length !== 'number' || values.length === 0)
    throw new Error(`${name} must be a non-empty array of rows, got ${String(values)}`);
  const rows = Array.from(values, (row, i) => toArray(row, `${name} row ${i}`));
  const width = rows[0]!.length;
  rows.forEach((row, i) => {
    if (row.length !== width)
      throw new Error(`${name} row ${i} has ${row.length} values but row 0 has ${width}; rows must have equal length`);
  });
  return rows;
}

/** Options of {@link heatmap}. */
export interface HeatmapOptions extends AxesOptions {
  /** Labels of the columns (x) and rows (y); default 0, 1, 2, … */
  xLabels?: (string | number)[];
  /** Labels of the rows, top to bottom; default 0, 1, 2, … */
  yLabels?: (string | number)[];
  /** Plotly colour scale. Default 'Viridis'. */
  colorscale?: string;
  /** Colour range; default the data's range. */
  zmin?: number;
  /** Top of the colour range; default the data's largest finite value. */
  zmax?: number;
  /** Title of the colour bar. */
  zTitle?: string;
  /**
   * The values are category indices 0 … k−1 (e.g. a slot index), not magnitudes: one distinct
   * colour per category (plotly's qualitative colours, then a spread of hues) and a colour bar
   * with one labelled step per category. Overrides colorscale, zmin and zmax.
   */
  categories?: string[];
  /** Write each cell's value in the cell (small matrices). Default false. */
  showValues?: boolean;
}

/** k distinct colours: plotly's 10 qualitative colours, then evenly spaced hues. */
export function categoricalColors(k: number): string[] {
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`categoricalColors needs a whole number of categories ≥ 1, got ${k}`);
  if (k <= PLOTLY_COLORS.length) return PLOTLY_COLORS.slice(0, k);
  return Array.from(
    { length: k },
    (_, i) => `hsl(${Math.round((360 * i) / k)}, ${i % 2 ? 55 : 75}%, ${i % 3 === 2 ? 35 : 50}%)`,
  );
}

/**
 * A stepped colour scale for values 0 … k−1: category c owns the band [c/k, (c+1)/k] of the
 * scale, so with zmin = −0.5 and zmax = k − 0.5 every integer falls in the middle of its band.
 */
function categoricalScale(colors: string[]): Array<[number, string]> {
  const k = colors.length;
  return colors.flatMap((c, i): Array<[number, string]> => [
    [i / k, c],
    [(i + 1) / k, c],
  ]);
}

/**
 * A matrix as a heat map, row 0 at the top (as the matrix is written).
 *
 * @throws Error if the matrix is empty or ragged, or the labels do not match its size.
 */
export function heatmap(matrix: MatrixInput, options: HeatmapOptions = {}): Figure {
  checkOptions(
    options,
    {
      ...AXES_OPTION_KINDS,
      xLabels: 'array',
      yLabels: 'array',
      colorscale: 'string',
      zmin: 'number',
      zmax: 'number',
      zTitle: 'string',
      categories: 'array',
      showValues: 'boolean',
    },
    'heatmap',
  );
  const z = toMatrix(matrix, 'heatmap matrix');
  const rows = z.length;
  const cols = z[0]!.length;
  if (options.xLabels && options.xLabels.length !== cols)
    throw new Error(`heatmap xLabels has ${options.xLabels.length} labels for ${cols} columns`);
  if (options.yLabels && options.yLabels.length !== rows)
    throw new Error(`heatmap yLabels has ${options.yLabels.length} labels for ${rows} rows`);
  const trace: Trace = {
    type: 'heatmap',
    z,
    colorscale: options.colorscale ?? 'Viridis',
    colorbar: { title: { text: options.zTitle ?? '' } },
  };
  if (options.xLabels) trace.x = options.xLabels.map(String);
  if (options.yLabels) trace.y = options.yLabels.map(String);
  // Plotly uses zmin/zmax only when both are set; fill the missing one from the data.
  if (options.zmin != null || options.zmax != null) {
    const [lo, hi] = finiteRange(z);
    trace.zmin = options.zmin ?? lo;
    trace.zmax = options.zmax ?? hi;
  }
  if (options.categories) {
    const k = options.categories.length;
    z.forEach((row, r) =>
      row.forEach((v, c) => {
        if (!(Number.isInteger(v) && v >= 0 && v < k))
          throw new Error(
            `heatmap with ${k} categories needs integer values 0 … ${k - 1}, got ${v} at row ${r}, column ${c}`,
          );
      }),
    );
    trace.colorscale = categoricalScale(categoricalColors(k));
    trace.zmin = -0.5;
    trace.zmax = k - 0.5;
    trace.colorbar = {
      title: { text: options.zTitle ?? '' },
      tickvals: options.categories.map((_, i) => i),
      ticktext: options.categories.slice(),
    };
    trace.text = z.map((row) => row.map((v) => options.categories![v]!));
    trace.hovertemplate = '%{x}, %{y}: %{text}<extra></extra>';
  }
  if (options.showValues) {
    trace.texttemplate = options.categories ? '%{text}' : '%{z:.3g}';
    trace.textfont = { size: 10 };
  }
  const layout = baseLayout(options);
  layout.yaxis = { ...(layout.yaxis as object), autorange: 'reversed' };
  return { data: [trace], layout };
}

// ---------------------------------------------------------------------------------------------
// Image grids (input patches, per-slot weight maps over an image)

/** An image: rows of pixel values, a 2-D tensor [h, w] or [h, w, 1], or flat values with a size. */
export type ImageInput =
  | MatrixInput
  | {
      /** Width in pixels. */
      width: number;
      /** Height in pixels. */
      height: number;
      /** width·height values, row by row. */
      data: Numbers;
    };

function toImage(image: ImageInput, index: number): number[][] {
  const name = `image #${index}`;
  if (image instanceof tf.Tensor) {
    if (image.rank === 3 && image.shape[2] === 1) {
      const [h, w] = image.shape as [number, number, number];
      const values = Array.from(image.dataSync());
      return Array.from({ length: h }, (_, r) => values.slice(r * w, (r + 1) * w));
    }
    return toMatrix(image, name);
  }
  if (image != null && 'width' in image && 'height' in image && 'data' in image) {
    const { width, height } = image;
    const data = toArray(image.data, `${name} data`);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
      throw new Error(`${name} must have integer width, height ≥ 1, got ${width}×${height}`);
    if (data.length !== width * height)
      throw new Error(
        `${name} has ${data.length} values, expected width·height = ${width}·${height} = ${width * height}`,
      );
    return Array.from({ length: height }, (_, r) => data.slice(r * width, (r + 1) * width));
  }
  return toMatrix(image as MatrixInput, name);
}

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Figure title. Default none. */
  title?: string;
  /** Images per row. Default min(count, 8). */
  columns?: number;
  /** One title per image (e.g. 'slot 3'). */
  titles?: string[];
  /** Plotly colour scale. Default 'Greys' reversed (0 black, 1 white), as for digits. */
  colorscale?: string;
  /** Reverse the colour scale. Default true when `colorscale` is not given. */
  reverseScale?: boolean;
  /** Shared colour range; default the range over all images, so images compare. */
  zmin?: number;
  /** Top of the shared colour range. */
  zmax?: number;
  /** Pixel size of one cell of the grid. Default 110. */
  cellSize?: number;
  /** Show a colour bar. Default false. */
  showScale?: boolean;
  /**
   * Axes with row and column numbers on every image (e.g. the 7×7 patch grid of a ViT: which
   * patch is where), with these titles. Default: no axes (pictures of digits).
   */
  axes?: {
    /** Title of the column axis. */
    x: string;
    /** Title of the row axis. */
    y: string;
  };
}

/**
 * Images side by side, each in its own square panel, all on one colour range.
 *
 * @throws Error if there is no image, an image is malformed, `columns` is not an integer ≥ 1, or
 * the titles do not match the images.
 */
export function imageGrid(images: ImageInput[], options: ImageGridOptions = {}): Figure {
  checkOptions(
    options,
    {
      title: 'string',
      columns: 'integer',
      titles: 'array',
      colorscale: 'string',
      reverseScale: 'boolean',
      zmin: 'number',
      zmax: 'number',
      cellSize: 'number',
      showScale: 'boolean',
      axes: 'object',
    },
    'imageGrid',
  );
  if (!Array.isArray(images) || images.length === 0) throw new Error('imageGrid needs at least one image');
  const pixels = images.map((img, i) => toImage(img, i));
  const count = pixels.length;
  const columns = options.columns ?? Math.min(count, 8);
  if (!Number.isInteger(columns) || columns < 1)
    throw new Error(`imageGrid columns must be an integer ≥ 1, got ${columns}`);
  if (options.titles && options.titles.length !== count)
    throw new Error(`imageGrid has ${count} images but ${options.titles.length} titles`);
  const rows = Math.ceil(count / columns);
  const [lo, hi] = finiteRange(pixels.flat());
  const zmin = options.zmin ?? lo;
  const zmax = options.zmax ?? hi;
  const cell = options.cellSize ?? 110;
  const gap = 0.02;
  const titleSpace = options.titles ? 0.06 : 0;
  const layout: Layout = {
    height: Math.max(150, rows * cell + (options.title ? 50 : 10) + (options.titles ? rows * 18 : 0)),
    width: Math.max(300, columns * cell + 80),
    margin: {
      l: options.axes ? 50 : 10,
      r: options.showScale ? 60 : 10,
      t: options.title ? 50 : 10,
      b: options.axes ? 40 : 10,
    },
    annotations: [] as unknown[],
  };
  if (options.title) layout.title = { text: options.title };
  const data: Trace[] = pixels.map((z, i) => {
    const r = Math.floor(i / columns);
    const c = i % columns;
    const axis = i === 0 ? '' : String(i + 1);
    const x0 = c / columns + gap / 2;
    const x1 = (c + 1) / columns - gap / 2;
    const y1 = 1 - r / rows - gap / 2 - titleSpace / rows;
    const y0 = 1 - (r + 1) / rows + gap / 2;
    const shown = options.axes
      ? {
          visible: true,
          showgrid: false,
          zeroline: false,
          ticks: 'outside',
          ticklen: 2,
          tickfont: { size: 9 },
          dtick: Math.max(1, Math.ceil(Math.max(z.length, z[0]!.length) / 8)),
        }
      : { visible: false };
    // Axis titles on the left column (y) and bottom row (x) only.
    const xTitle = options.axes && r === rows - 1 ? { title: { text: options.axes.x, font: { size: 10 } } } : {};
    const yTitle = options.axes && c === 0 ? { title: { text: options.axes.y, font: { size: 10 } } } : {};
    layout[`xaxis${axis}`] = { domain: [x0, x1], ...shown, ...xTitle, anchor: `y${axis}`, constrain: 'domain' };
    layout[`yaxis${axis}`] = {
      domain: [y0, y1],
      ...shown,
      ...yTitle,
      anchor: `x${axis}`,
      autorange: 'reversed',
      scaleanchor: `x${axis}`,
      constrain: 'domain',
    };
    if (options.titles) {
      (layout.annotations as unknown[]).push({
        text: options.titles[i],
        showarrow: false,
        x: (x0 + x1) / 2,
        y: y1,
        xref: 'paper',
        yref: 'paper',
        xanchor: 'center',
        yanchor: 'bottom',
        font: { size: 11 },
      });
    }
    return {
      type: 'heatmap',
      z,
      xaxis: `x${axis}`,
      yaxis: `y${axis}`,
      colorscale: options.colorscale ?? 'Greys',
      reversescale: options.reverseScale ?? options.colorscale == null,
      zmin,
      zmax,
      showscale: Boolean(options.showScale) && i === 0,
      name: options.titles?.[i] ?? `image ${i}`,
    };
  });
  return { data, layout };
}

// ---------------------------------------------------------------------------------------------
// Bars (expert load, tokens per expert, drop fractions)

/** One set of bars of {@link barChart}. */
export interface BarSeries {
  /** Legend name. */
  name: string;
  /** Category labels (e.g. 'expert 0'), one per value. */
  x: (string | number)[];
  /** Bar heights, one per label. */
  y: Numbers;
  /** CSS colour. Default plotly's colour cycle. */
  color?: string;
}

/**
 * Bars, grouped (default) or stacked when there are several series. `showValues` writes each
 * bar's value above it, so that a bar of height 0 is seen to be 0 rather than missing.
 *
 * @throws Error if there is no series, or a series has labels and values of different lengths.
 */
export function barChart(
  series: BarSeries[],
  options: AxesOptions & { barmode?: 'group' | 'stack'; showValues?: boolean } = {},
): Figure {
  checkOptions(options, { ...AXES_OPTION_KINDS, barmode: ['group', 'stack'], showValues: 'boolean' }, 'barChart');
  if (!Array.isArray(series) || series.length === 0) throw new Error('barChart needs at least one series');
  const data: Trace[] = series.map((s) => {
    const y = toArray(s.y, `bar series ${JSON.stringify(s.name)} y`);
    if (s.x.length !== y.length)
      throw new Error(`bar series ${JSON.stringify(s.name)} has ${s.x.length} labels but ${y.length} values`);
    const trace: Trace = { type: 'bar', name: s.name, x: s.x.map(String), y };
    if (s.color) trace.marker = { color: s.color };
    if (options.showValues)
      Object.assign(trace, { text: y.map((v) => fmt(v)), textposition: 'outside', cliponaxis: false });
    return trace;
  });
  const layout = baseLayout(options);
  layout.barmode = options.barmode ?? 'group';
  layout.xaxis = { ...(layout.xaxis as object), type: 'category' };
  // A bar's length is its value: the axis starts at 0 (a log axis has no 0 and is left alone).
  if (!options.logY) layout.yaxis = { ...(layout.yaxis as object), rangemode: 'tozero' };
  if (series.length > 1) layout.showlegend = true;
  return { data, layout };
}

/** A copy of the figure with layout fields replaced (shallow merge). */
export function withLayout(figure: Figure, layout: Layout): Figure {
  return { ...figure, data: figure.data, layout: { ...figure.layout, ...layout } };
}

/**
 * A one-line description of a figure, for text outputs and logs:
 * `"Dispatch weights": heatmap 64×16 (0.0012 … 0.31)`.
 */
export function describeFigure(figure: Figure): string {
  const title = (figure.layout.title as { text?: string } | undefined)?.text;
  const parts = figure.data.map((t) => {
    const name = t.name ? ` ${JSON.stringify(t.name)}` : '';
    if (t.type === 'heatmap' && Array.isArray(t.z)) {
      const z = t.z as number[][];
      const [lo, hi] = finiteRange(z);
      const range = lo <= hi ? ` (${fmt(lo)} … ${fmt(hi)})` : '';
      return `heatmap${name} ${z.length}×${z[0]?.length ?? 0}${range}`;
    }
    const n = Array.isArray(t.y) ? (t.y as unknown[]).length : 0;
    return `${t.type === 'scatter' ? String(t.mode ?? 'scatter') : t.type}${name} (${n} points)`;
  });
  const shown = parts.length > 6 ? [...parts.slice(0, 6), `… ${parts.length - 6} more`] : parts;
  return `${title ? `${JSON.stringify(title)}: ` : 'figure: '}${shown.join('; ')}`;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}
