/**
 * Routing metrics: expert load, dropped tokens and choices, experts per token, and the summary
 * statistics vmoe logs (`vmoe/moe.py` `_get_top_items_per_expert_einsum_dispatcher`,
 * `vmoe/projects/soft_moe/router.py` `get_metrics`).
 *
 * Tensors in, tensors out (call inside the router's tidy); `readMetrics` turns a record of
 * scalars into numbers outside any tidy. Every router expresses its decisions as a dispatch mask
 * in the token-major layout [g, m, n, C] (vmoe's "GSEC"), so one set of functions serves all.
 */
import * as tf from '@tensorflow/tfjs';
import { sumRows } from '../ops/matmul.js';

/**
 * Tokens (Tokens Choice: kept choices) processed by each expert and group: counts [g, n], int32.
 * dispatch [g, m, n, C] is 1 where token i occupies slot c of expert e.
 */
export function expertLoad(dispatch: tf.Tensor4D): tf.Tensor2D {
  const [g, m, n, c] = dispatch.shape;
  // Sum over tokens, then slots: sumRows (lib/ops/matmul.ts) avoids tf.sum over a non-last axis,
  // which transposes internally on wasm. [g, m, n·C] → [g, n·C].
  const perSlot = sumRows(dispatch.reshape([g, m, n * c]) as tf.Tensor3D);
  return tf
    .sum(perSlot.reshape([g, n, c]), -1)
    .round()
    .cast('int32') as tf.Tensor2D;
}

/** Experts that process each token: [g, m] int32 (Experts Choice's "experts per token"). */
export function expertsPerToken(dispatch: tf.Tensor4D): tf.Tensor2D {
  const [g, m, n, c] = dispatch.shape;
  return tf
    .sum(dispatch.reshape([g, m, n * c]), -1)
    .round()
    .cast('int32') as tf.Tensor2D;
}

/** Fraction of tokens none of whose choices was processed: 1 − mean(tokenKept), a scalar. */
export function dropFraction(tokenKept: tf.Tensor): tf.Scalar {
  return tf.sub(1, tf.mean(tokenKept.cast('float32')));
}

/** Fraction of the K·m choices (Tokens Choice) that overflowed a buffer: 1 − mean(kept). */
export function choiceDropFraction(kept: tf.Tensor): tf.Scalar {
  return tf.sub(1, tf.mean(kept.cast('float32')));
}

/**
 * vmoe's Experts Choice metrics (`_get_top_items_per_expert_einsum_dispatcher`), computed per
 * group and averaged over groups as the vmapped metrics are:
 * - numExpertsPerItemMin / Max: fewest / most experts processing one token;
 * - minSelectedGate / maxSelectedGate: smallest / largest gate among the selected (token, expert);
 * - ratioProcessedItemsByAtLeast{t}Experts for t = 1, 2, 4, …, ≤ n, and t = n.
 * numExpertsPerToken [g, m] int32; selectedGates [g, n, C].
 */
export function expertsChoiceMetrics(
  numExpertsPerToken: tf.Tensor2D,
  selectedGates: tf.Tensor3D,
  numExperts: number,
): Record<string, tf.Scalar> {
  const perToken = numExpertsPerToken.cast('float32');
  const [g] = selectedGates.shape;
  const flatGates = selectedGates.reshape([g, -1]);
  const metrics: Record<string, tf.Scalar> = {
    numExpertsPerItemMin: tf.mean(tf.min(perToken, -1)),
    numExpertsPerItemMax: tf.mean(tf.max(perToken, -1)),
    minSelectedGate: tf.mean(tf.min(flatGates, -1)),
    maxSelectedGate: tf.mean(tf.max(flatGates, -1)),
  };
  const thresholds = new Set<number>();
  for (let t = 1; t <= numExperts; t *= 2) thresholds.add(t);
  thresholds.add(numExperts);
  for (const t of [...thresholds].sort((a, b) => a - b)) {
    metrics[`ratioProcessedItemsByAtLeast${t}Experts`] = tf.mean(tf.greaterEqual(perToken, t).cast('float32'));
  }
  return metrics;
}

/**
 * Load-balance summary of any router: per-expert load relative to the buffer capacity, averaged
 * over groups — loadMin/loadMax (smallest and largest fraction of a buffer filled) and loadCv
 * (coefficient of variation of the counts, 0 when perfectly balanced).
 */
export function loadSummary(load: tf.Tensor2D, capacity: number): Record<string, tf.Scalar> {
  const l = load.cast('float32');
  const { mean, variance } = tf.moments(l, -1);
  return {
    loadMin: tf.div(tf.mean(tf.min(l, -1)), capacity),
    loadMax: tf.div(tf.mean(tf.max(l, -1)), capacity),
    loadCv: tf.mean(tf.div(tf.sqrt(variance), tf.maximum(mean, 1e-9))),
  };
}

/** Read a record of scalar tensors as numbers (outside tidy) and dispose them. */
export async function readMetrics(metrics: Record<string, tf.Tensor>, dispose = true): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [key, t] of Object.entries(metrics)) {
    out[key] = (await t.data())[0];
    if (dispose) t.dispose();
  }
  return out;
}
