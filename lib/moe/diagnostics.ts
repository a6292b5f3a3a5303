/**
 * Diagnostics of a Soft MoE layer: is it routing, and are its experts different from each other?
 *
 * The similarity statistics follow google-research/vmoe `vmoe/projects/soft_moe/router.py`,
 * `SoftRouter.get_metrics` with `compute_similarity_metrics=True` and its `cosine_psim`
 * (x · rsqrt(Σx² + 1e-9) along the contracted axes, then all pairwise dot products, per group):
 *   - dispatch similarity: cosine between the dispatch columns D[:, j] (over the m tokens) of all
 *     pairs of slots j ≠ j', per group — 1 when every slot takes the same mixture of tokens;
 *   - combine similarity: cosine between the combine rows C[i, :] (over the n·p slots) of all pairs
 *     of tokens i ≠ i', per group;
 *   - Φ similarity: cosine between the slot vectors Φ[:, j] (over d) of all pairs of slots.
 * As vmoe: `mean` = (Σ all entries − count of diagonal entries) / (count of off-diagonal entries)
 * (the diagonal is taken as exactly 1), `min` and `max` over the off-diagonal entries.
 *
 * Added here (not in vmoe), to read the degenerate regime directly:
 *   - expert similarity: mean/min/max pairwise cosine between the experts' parameter vectors
 *     (w1[i], b1[i], w2[i], b2[i] concatenated): exactly 1 when the experts start from one shared
 *     draw (vmoe's `split_rngs=False`) and have not diverged;
 *   - max dispatch relative to uniform: m · max_i D[i, j] per slot (1 = uniform, m = one token),
 *     median and mean over the slots of every group;
 *   - effective tokens per slot: exp(entropy of D[:, j]) (m = uniform, 1 = one token), mean;
 *   - effective slots per token: exp(entropy of C[i, :]) (n·p = uniform), mean;
 *   - `scale` (§2.3): with the normalisation |logits| ≤ |scale|, so a slot's largest dispatch
 *     weight is at most 1 / (1 + (m − 1)·e^{−2|scale|}).
 */
import * as tf from '@tensorflow/tfjs';
import { checkRank } from '../ops/check.js';
import { product, transposeLast2 } from '../ops/matmul.js';
import type { ExpertParams } from './experts.js';

/** vmoe `cosine_psim` epsilon. */
const COSINE_EPS = 1e-9;

/** Mean, smallest and largest pairwise cosine similarity (off-diagonal pairs). */
export interface SimilarityStats {
  /** Mean over the off-diagonal pairs (vmoe `cosine_psim`: (Σ − diagonal) / off-diagonal count). */
  mean: number;
  /** Smallest off-diagonal cosine similarity. */
  min: number;
  /** Largest off-diagonal cosine similarity. */
  max: number;
}

/** What `softMoEDiagnostics` measures on one batch (all plain numbers, see the file comment). */
export interface SoftMoEDiagnostics {
  /** Tokens per group m, slots n·p, groups g of the probe batch. */
  tokens: number;
  /** Slots n·p. */
  slots: number;
  /** Groups (sequences) g of the probe batch. */
  groups: number;
  /** The learned `scale` of §2.3 (1 at vmoe's initialisation). */
  scale: number;
  /** Cosine similarity between the slots' dispatch columns D[:, j] (1: every slot averages the same tokens). */
  dispatchSimilarity: SimilarityStats;
  /** Cosine similarity between the tokens' combine rows C[i, :] (1: every token mixes the slots alike). */
  combineSimilarity: SimilarityStats;
  /** Cosine similarity between Φ's slot vectors (columns of Φ [d, n·p]). */
  phiSimilarity: SimilarityStats;
  /** null when no expert parameters were given (identity experts) or with a single expert. */
  expertSimilarity: SimilarityStats | null;
  /** Median over (group, slot) of m · max_i D[i, j]. */
  maxDispatchRelMedian: number;
  /** Mean over (group, slot) of m · max_i D[i, j]. */
  maxDispatchRelMean: number;
  /** Mean over (group, slot) of exp(−Σ_i D[i, j] ln D[i, j]). */
  effectiveTokensPerSlot: number;
  /** Mean over (group, token) of exp(−Σ_j C[i, j] ln C[i, j]). */
  effectiveSlotsPerToken: number;
}

/**
 * Pairwise cosine similarities of k vectors of length c in each of b batches: [b, k, c] → [b, k, k],
 * as vmoe `cosine_psim` (normalise with rsqrt(Σx² + 1e-9), then all dot products).
 */
export function pairwiseCosine(vectors: tf.Tensor3D): tf.Tensor3D {
  checkRank(vectors, 3, 'vectors [b, k, c]');
  return tf.tidy(() => {
    const unit = tf.mul(vectors, tf.rsqrt(tf.add(tf.sum(tf.square(vectors), -1, true), COSINE_EPS))) as tf.Tensor3D;
    return product(unit, unit, { transposeB: true });
  });
}

/**
 * vmoe's statistics of a pairwise similarity matrix [b, k, k]: mean of the off-diagonal entries
 * computed as (Σ − b·k) / (b·k·(k − 1)), min and max of the off-diagonal entries. Needs k ≥ 2.
 * Returns a [3] tensor (mean, min, max).
 */
function similarityStats(sim: tf.Tensor3D): tf.Tensor1D {
  const [b, k] = sim.shape;
  return tf.tidy(() => {
    const diagonal = tf.tile(tf.cast(tf.eye(k).reshape([1, k, k]), 'bool'), [b, 1, 1]);
    // Diagonal entries replaced by ±∞ so they never win the min or the max.
    const min = tf.min(tf.where(diagonal, tf.fill([b, k, k], Infinity), sim));
    const max = tf.max(tf.where(diagonal, tf.fill([b, k, k], -Infinity), sim));
    const mean = tf.div(tf.sub(tf.sum(sim), b * k), b * k * (k - 1));
    return tf.stack([mean, min, max]) as tf.Tensor1D;
  });
}

/** Everything `softMoEDiagnostics` reads: the routing weights of one batch and the layer's parameters. */
export interface DiagnosticsInput {
  /** Dispatch weights D [g, m, n, p] (softmax over m, eq. 1). */
  dispatch: tf.Tensor4D;
  /** Combine weights C [g, m, n, p] (softmax over n·p, eq. 3). */
  combine: tf.Tensor4D;
  /** Slot parameters Φ [d, n, p]. */
  phi: tf.Tensor3D;
  /** The §2.3 scale, shape []. */
  scale: tf.Scalar;
  /** The experts' parameters (omit for identity experts). */
  experts?: ExpertParams;
}

function checkDiagnosticsInput(input: DiagnosticsInput): { g: number; m: number; n: number; p: number } {
  if (input == null) throw new Error('softMoEDiagnostics needs {dispatch, combine, phi, scale}');
  checkRank(input.dispatch, 4, 'dispatch [g, m, n, p]');
  checkRank(input.combine, 4, 'combine [g, m, n, p]');
  checkRank(input.phi, 3, 'phi [d, n, p]');
  checkRank(input.scale, 0, 'scale');
  const [g, m, n, p] = input.dispatch.shape;
  if (input.combine.shape.some((s, i) => s !== input.dispatch.shape[i])) {
    throw new Error(
      `combine must have the dispatch shape [${input.dispatch.shape.join(', ')}], got [${input.combine.shape.join(', ')}]`,
    );
  }
  if (input.phi.shape[1] !== n || input.phi.shape[2] !== p)
    throw new Error(`phi must be [d, ${n}, ${p}] to match the weights, got [${input.phi.shape.join(', ')}]`);
  if (n * p < 2 || m < 2)
    throw new Error(`diagnostics need at least 2 tokens and 2 slots (pairs to compare), got m = ${m}, n·p = ${n * p}`);
  if (input.experts != null && input.experts.w1.shape[0] !== n) {
    throw new Error(`experts must hold ${n} experts (w1 [n, d, h]), got w1 [${input.experts.w1.shape.join(', ')}]`);
  }
  return { g, m, n, p };
}

/**
 * Measure a Soft MoE layer on one batch (see the file comment). Reads the tensors back once;
 * creates no tensor that outlives the call.
 */
export async function softMoEDiagnostics(input: DiagnosticsInput): Promise<SoftMoEDiagnostics> {
  const { g, m, n, p } = checkDiagnosticsInput(input);
  const s = n * p;
  const withExperts = input.experts != null && n >= 2;
  const packed = tf.tidy(() => {
    const dispatchT = transposeLast2(input.dispatch.reshape([g, m, s]) as tf.Tensor3D); // [g, s, m]: one column per slot
    const combine = input.combine.reshape([g, m, s]) as tf.Tensor3D; // [g, m, s]: one row per token
    const phiT = transposeLast2(input.phi.reshape([1, input.phi.shape[0], s]) as tf.Tensor3D); // [1, s, d]
    const parts: tf.Tensor[] = [
      similarityStats(pairwiseCosine(dispatchT)),
      similarityStats(pairwiseCosine(combine)),
      similarityStats(pairwiseCosine(phiT)),
    ];
    if (withExperts) {
      const e = input.experts as ExpertParams;
      const flat = tf
        .concat(
          [e.w1, e.b1, e.w2, e.b2].map((t) => t.reshape([n, -1])),
          1,
        )
        .reshape([1, n, -1]) as tf.Tensor3D;
      parts.push(similarityStats(pairwiseCosine(flat)));
    }
    // x·ln x with 0·ln 0 = 0 (a weight that underflowed to 0 contributes nothing).
    const xlnx = (t: tf.Tensor) => tf.where(tf.greater(t, 0), tf.mul(t, tf.log(tf.maximum(t, 1e-38))), tf.zerosLike(t));
    parts.push(
      input.scale.reshape([1]),
      tf.mean(tf.exp(tf.neg(tf.sum(xlnx(dispatchT), -1)))).reshape([1]),
      tf.mean(tf.exp(tf.neg(tf.sum(xlnx(combine), -1)))).reshape([1]),
      tf.mul(tf.max(dispatchT, -1), m).reshape([-1]),
    );
    return tf.concat(parts);
  });
  const values = await packed.data();
  packed.dispose();
  const stats = (offset: number): SimilarityStats => ({
    mean: values[offset],
    min: values[offset + 1],
    max: values[offset + 2],
  });
  let at = withExperts ? 12 : 9;
  const result: SoftMoEDiagnostics = {
    tokens: m,
    slots: s,
    groups: g,
    scale: values[at],
    dispatchSimilarity: stats(0),
    combineSimilarity: stats(3),
    phiSimilarity: stats(6),
    expertSimilarity: withExperts ? stats(9) : null,
    effectiveTokensPerSlot: values[at + 1],
    effectiveSlotsPerToken: values[at + 2],
    maxDispatchRelMedian: NaN,
    maxDispatchRelMean: NaN,
  };
  at += 3;
  const maxRel = Array.from(values.subarray(at));
  result.maxDispatchRelMean = maxRel.reduce((a, b) => a + b, 0) / maxRel.length;
  result.maxDispatchRelMedian = medianOf(maxRel);
  return result;
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The diagnostics as flat named numbers (`dispatchSimilarityMean`, `expertSimilarityMin`, …), for
 * plots (lib/plot/diagnostics.ts) and tables. Expert similarity is absent when not measured.
 */
export function diagnosticsValues(d: SoftMoEDiagnostics): Record<string, number> {
  const out: Record<string, number> = {
    scale: d.scale,
    maxDispatchRelMedian: d.maxDispatchRelMedian,
    maxDispatchRelMean: d.maxDispatchRelMean,
    effectiveTokensPerSlot: d.effectiveTokensPerSlot,
    effectiveSlotsPerToken: d.effectiveSlotsPerToken,
  };
  const stats: Array<[string, SimilarityStats | null]> = [
    ['dispatchSimilarity', d.dispatchSimilarity],
    ['combineSimilarity', d.combineSimilarity],
    ['phiSimilarity', d.phiSimilarity],
    ['expertSimilarity', d.expertSimilarity],
  ];
  for (const [name, s] of stats) {
    if (s == null) continue;
    out[`${name}Mean`] = s.mean;
    out[`${name}Min`] = s.min;
    out[`${name}Max`] = s.max;
  }
  return out;
}
