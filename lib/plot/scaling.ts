/**
 * The expert-scaling figure: step time against the number of experts at a fixed number of slots,
 * for Soft MoE and the sparse routers — the paper's Fig. 6 (right panel), measured on this
 * machine by `npm run bench` (lib/cli/bench.ts, data/results/bench/).
 *
 * In the paper (§3.5, Fig. 6 right) Soft MoE's step time stays nearly flat as experts grow with
 * the total number of slots fixed, while Tokens Choice and Experts Choice slow down. Times are
 * shown relative to one reference point (Soft MoE at the smallest expert count), as the paper
 * normalises its curves.
 */
import { checkOptions } from '../ops/check.js';
import { lineChart, withLayout, type Figure } from './figure.js';

/** One point of the sweep: a method at an expert count, its median step time and spread. */
export interface ScalingPoint {
  /** 'Soft MoE', 'Tokens Choice', 'Experts Choice', … (one line per method). */
  method: string;
  experts: number;
  medianMs: number;
  /** Fastest and slowest repetition (drawn as an error bar). */
  minMs?: number;
  maxMs?: number;
}

export interface ScalingFigureOptions {
  /** Divide every time by this one (ms). Default: the first method's time at its fewest experts. */
  referenceMs?: number;
  title?: string;
  height?: number;
}

/** Step time (relative) against the number of experts (log axis), one line per method. */
export function expertScalingFigure(points: readonly ScalingPoint[], options: ScalingFigureOptions = {}): Figure {
  checkOptions(options, { referenceMs: 'number', title: 'string', height: 'number' }, 'expertScalingFigure');
  if (points.length === 0) throw new Error('expertScalingFigure needs at least one point');
  for (const p of points) {
    if (!(p.experts >= 1) || !(p.medianMs > 0))
      throw new Error(`scaling point ${JSON.stringify(p)} needs experts ≥ 1 and medianMs > 0`);
  }
  const methods = [...new Set(points.map((p) => p.method))];
  const first = points.filter((p) => p.method === methods[0]).sort((a, b) => a.experts - b.experts)[0];
  const reference = options.referenceMs ?? first.medianMs;
  if (!(reference > 0)) throw new Error(`referenceMs must be > 0, got ${reference}`);
  const series = methods.map((method) => {
    const own = points.filter((p) => p.method === method).sort((a, b) => a.experts - b.experts);
    return {
      name: method,
      x: own.map((p) => p.experts),
      y: own.map((p) => p.medianMs / reference),
      mode: 'lines+markers' as const,
      text: own.map((p) => `${p.medianMs.toFixed(1)} ms (${p.minMs?.toFixed(1) ?? '?'}–${p.maxMs?.toFixed(1) ?? '?'})`),
    };
  });
  const figure = lineChart(series, {
    title:
      options.title ??
      `Step time vs experts at fixed slots (relative to ${methods[0]} at ${first.experts} experts = ${reference.toFixed(1)} ms)`,
    xTitle: 'number of experts',
    yTitle: 'relative step time',
    logX: true,
    height: options.height ?? 420,
  });
  // Error bars from the spread of the repetitions.
  figure.data.forEach((trace, i) => {
    const own = points.filter((p) => p.method === methods[i]).sort((a, b) => a.experts - b.experts);
    if (own.every((p) => p.minMs != null && p.maxMs != null)) {
      trace.error_y = {
        type: 'data',
        symmetric: false,
        array: own.map((p) => (p.maxMs! - p.medianMs) / reference),
        arrayminus: own.map((p) => (p.medianMs - p.minMs!) / reference),
        thickness: 1,
      };
    }
  });
  const xs = [...new Set(points.map((p) => p.experts))].sort((a, b) => a - b);
  return withLayout(figure, {
    xaxis: { type: 'log', title: { text: 'number of experts' }, tickvals: xs, ticktext: xs.map(String) },
  });
}
