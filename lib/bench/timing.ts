/**
 * Wall-clock timing of tensor work, for the workbook's cost measurements (notebooks 01, 04, 07:
 * the paper's claims about time, §3 and Fig. 6, measured on this machine).
 *
 * Each run calls `fn`, waits until every tensor it returned is computed (reading the data back is
 * the only portable way: the WebGL/WebGPU backends queue work; wasm and cpu compute eagerly), then
 * disposes what it returned. Warm-up runs come first and are not recorded: the first calls of a
 * kernel compile or allocate. The median of the recorded runs is the figure to report (it ignores
 * a run stalled by another process); min and max show the spread.
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt } from '../ops/check.js';

/** Options of {@link timeMs}: warm-up and recorded runs, and the clock. */
export interface TimingOptions {
  /** Unrecorded runs first. Default 2. */
  warmup?: number;
  /** Recorded runs. Default 5. */
  repeats?: number;
  /** Clock in milliseconds. Default `performance.now`. (Tests pass a fake clock.) */
  now?: () => number;
}

/** What {@link timeMs} measured, in milliseconds. */
export interface Timing {
  /** Median of the recorded runs, ms. */
  medianMs: number;
  /** Fastest recorded run, ms. */
  minMs: number;
  /** Slowest recorded run, ms. */
  maxMs: number;
  /** Every recorded run, in order, ms. */
  samplesMs: number[];
}

/** The median of a non-empty list (mean of the two middle values for an even count). */
function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Time `fn` (see the file comment). `fn` returns tensors (any tf.TensorContainer, or a promise of
 * one); they are read back, then disposed. Wrap the work in `tf.tidy` inside `fn` so that its
 * intermediates are freed.
 *
 *   const t = await timeMs(() => tf.tidy(() => softMoE(x, params).y), { repeats: 7 });
 *
 * @throws Error if `fn` is not a function or `warmup` / `repeats` is not an integer in range.
 */
export async function timeMs(
  fn: () => tf.TensorContainer | Promise<tf.TensorContainer>,
  options: TimingOptions = {},
): Promise<Timing> {
  if (typeof fn !== 'function') throw new Error(`timeMs needs a function returning tensors, got ${typeof fn}`);
  const warmup = options.warmup ?? 2;
  const repeats = options.repeats ?? 5;
  checkInt(warmup, 'warmup', 0);
  checkInt(repeats, 'repeats', 1);
  const now = options.now ?? (() => performance.now());
  const samplesMs: number[] = [];
  for (let run = 0; run < warmup + repeats; run++) {
    const start = now();
    const out = await fn();
    const tensors = collectTensors(out);
    for (const t of tensors) await t.data();
    const ms = now() - start;
    tf.dispose(tensors);
    if (run >= warmup) samplesMs.push(ms);
  }
  return { medianMs: medianOf(samplesMs), minMs: Math.min(...samplesMs), maxMs: Math.max(...samplesMs), samplesMs };
}

/** Every tensor in a container (tensor, array or object of them), depth first. */
function collectTensors(container: tf.TensorContainer): tf.Tensor[] {
  const found: tf.Tensor[] = [];
  const visit = (value: unknown) => {
    if (value instanceof tf.Tensor) found.push(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (value != null && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(container);
  return found;
}
