/**
 * `tf.oneHot` for any depth ≥ 1. tfjs 4.22 rejects depth 1 ("depth must be >=2"), which a
 * router with a single expert (n = 1) or a sequence of one token (m = 1) needs. Out-of-range
 * indices (e.g. −1 for a dropped choice) give an all-zero row, as in tf.oneHot. Output int32.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * One-hot rows of depth `depth` ≥ 1 for int32 `indices` of any shape → [...indices.shape, depth] int32;
 * out-of-range indices give a zero row (see above).
 */
export function oneHot(indices: tf.Tensor, depth: number): tf.Tensor {
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`oneHot depth must be an integer ≥ 1, got ${depth}`);
  if (depth >= 2) return tf.oneHot(indices, depth);
  return tf.tidy(() => tf.equal(indices, 0).cast('int32').expandDims(-1));
}
