/**
 * Soft MoE diagnostics over training (lib/moe/diagnostics.ts, recorded by the trainer in
 * `curves.diagnostics` of a results file): one line chart per quantity, one line per run.
 * Takes plain numbers (plot depends on nothing above ops/core): flatten a record with
 * `diagnosticsValues` from lib/moe/diagnostics.ts first.
 */
import { lineChart, type Figure } from './figure.js';

/** The diagnostics after `step` updates, by name. */
export interface DiagnosticsPoint {
  /** Training update of the measurement (x axis). */
  step: number;
  /** Named diagnostic values at that update (e.g. from diagnosticsValues). */
  values: Readonly<Record<string, number>>;
}

/** One run's diagnostics: at each recorded step, named values (e.g. `scale`, `maxDispatchRelMedian`). */
export interface DiagnosticsRun {
  /** Legend name of the run. */
  name: string;
  /** Its measurements, in training order. */
  points: readonly DiagnosticsPoint[];
  /** Line colour, e.g. one per recipe so that the seeds of a recipe share it. Default: by run. */
  color?: string;
  /** Line dash, e.g. one per seed. Default: solid. */
  dash?: 'solid' | 'dash' | 'dot' | 'dashdot';
}

/** Axis titles of the quantities the workbook plots most; other names are shown as they are. */
export const DIAGNOSTICS_LABELS: Readonly<Record<string, string>> = {
  scale: 'scale (§2.3)',
  maxDispatchRelMedian: 'largest dispatch weight × m (median slot; 1 = uniform)',
  maxDispatchRelMean: 'largest dispatch weight × m (mean over slots)',
  effectiveTokensPerSlot: 'effective tokens per slot, exp(entropy) (m = uniform)',
  effectiveSlotsPerToken: 'effective slots per token, exp(entropy)',
  dispatchSimilarityMean: 'mean cosine similarity of dispatch columns',
  combineSimilarityMean: 'mean cosine similarity of combine rows',
  phiSimilarityMean: 'mean cosine similarity of Φ slot vectors',
  expertSimilarityMean: 'mean cosine similarity of expert weights',
};

/** Short y-axis titles (the long labels above are the figure titles). */
export const DIAGNOSTICS_AXIS_TITLES: Readonly<Record<string, string>> = {
  scale: 'scale',
  maxDispatchRelMedian: 'max dispatch × m',
  maxDispatchRelMean: 'max dispatch × m',
  effectiveTokensPerSlot: 'tokens per slot',
  effectiveSlotsPerToken: 'slots per token',
  dispatchSimilarityMean: 'cosine',
  combineSimilarityMean: 'cosine',
  phiSimilarityMean: 'cosine',
  expertSimilarityMean: 'cosine',
};

/**
 * One figure per quantity in `metrics` (default: scale, max dispatch × m, effective tokens per
 * slot, dispatch similarity, expert similarity), x = update, one line per run. A run that lacks a
 * quantity (e.g. identity experts have no expert similarity) is left out of that figure.
 */
export function diagnosticsCharts(
  runs: readonly DiagnosticsRun[],
  metrics: readonly string[] = [
    'scale',
    'maxDispatchRelMedian',
    'effectiveTokensPerSlot',
    'dispatchSimilarityMean',
    'expertSimilarityMean',
  ],
  options: { height?: number } = {},
): Figure[] {
  if (!Array.isArray(runs) || runs.length === 0) throw new Error('diagnosticsCharts needs at least one run');
  if (metrics.length === 0) throw new Error('diagnosticsCharts needs at least one metric name');
  return metrics.map((metric) => {
    const series = runs
      .filter((r) => r.points.some((p: DiagnosticsPoint) => Number.isFinite(p.values[metric])))
      .map((r) => {
        const points = r.points.filter((p: DiagnosticsPoint) => Number.isFinite(p.values[metric]));
        return {
          name: r.name,
          x: points.map((p: DiagnosticsPoint) => p.step),
          y: points.map((p: DiagnosticsPoint) => p.values[metric]),
          mode: 'lines+markers' as const,
          ...(r.color != null ? { color: r.color } : {}),
          ...(r.dash != null ? { dash: r.dash } : {}),
        };
      });
    if (series.length === 0)
      throw new Error(
        `no run has values of ${JSON.stringify(metric)}; runs have ${Object.keys(runs[0].points[0]?.values ?? {}).join(', ')}`,
      );
    const label = DIAGNOSTICS_LABELS[metric] ?? metric;
    // The long label is the title; the y axis gets a short one, which fits beside a 320-pixel-high plot.
    return lineChart(series, {
      title: label,
      xTitle: 'update',
      yTitle: DIAGNOSTICS_AXIS_TITLES[metric] ?? metric,
      height: options.height ?? 320,
    });
  });
}
