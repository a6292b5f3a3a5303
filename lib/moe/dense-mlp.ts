/**
 * The dense MLP block of a ViT, d → h → d with GELU (tanh form), the baseline every MoE layer
 * replaces (paper §3: MoE layers replace the MLP blocks). Shapes: w1 [d, h], b1 [h], w2 [h, d],
 * b2 [d]; x [..., d]. Both products are single 2-D matMuls (the fast path on wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { checkRank, checkShape } from '../ops/check.js';
import { linear } from '../ops/matmul.js';
import { gelu } from '../ops/nn.js';

/** Parameters of the dense MLP block y = gelu(x·w1 + b1)·w2 + b2 (ViT `MlpBlock`). */
export interface DenseMLPParams {
  /** First-layer weights, [d, h]. */
  w1: tf.Tensor2D; // [d, h]
  /** First-layer bias, [h]. */
  b1: tf.Tensor1D; // [h]
  /** Second-layer weights, [h, d]. */
  w2: tf.Tensor2D; // [h, d]
  /** Second-layer bias, [d]. */
  b2: tf.Tensor1D; // [d]
}

/**
 * Check the dense MLP's shapes against the input width `dim`; return the hidden width h.
 *
 * @throws Error naming the tensor whose shape does not match.
 */
export function checkDenseMLPParams(params: DenseMLPParams, dim: number): number {
  if (params == null) throw new Error('dense MLP params must be an object {w1, b1, w2, b2}');
  checkRank(params.w1, 2, 'w1 [d, h]');
  const [d, h] = params.w1.shape;
  if (d !== dim)
    throw new Error(`w1 must be [${dim}, h] to match the input width ${dim}, got [${params.w1.shape.join(', ')}]`);
  checkShape(params.b1, [h], 'b1');
  checkShape(params.w2, [h, d], 'w2');
  checkShape(params.b2, [d], 'b2');
  return h;
}

/**
 * y = gelu(x·w1 + b1)·w2 + b2 for every token; x [..., d] → [..., d].
 *
 * @throws Error if x is not a tensor [..., d] or the parameters do not match d (see {@link checkDenseMLPParams}).
 */
export function denseMLP(x: tf.Tensor, params: DenseMLPParams): tf.Tensor {
  if (!(x instanceof tf.Tensor) || x.rank < 1) throw new Error(`x must be a tensor [..., d], got ${String(x)}`);
  checkDenseMLPParams(params, x.shape[x.rank - 1]);
  return tf.tidy(() => linear(gelu(linear(x, params.w1, params.b1)), params.w2, params.b2));
}
