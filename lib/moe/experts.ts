/**
 * n MLP experts d → h → d, stored as stacked tensors and applied in one batched product per
 * layer (no JavaScript loop issuing ops per expert).
 *
 *   expert_i(x) = gelu(x·w1[i] + b1[i])·w2[i] + b2[i]
 *
 * GELU with the tanh approximation, as vmoe's `MlpBlock` (flax `nn.gelu`). Shapes as in the
 * reference vectors (test/fixtures/golden): w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d].
 */
import * as tf from '@tensorflow/tfjs';
import { checkFloat, checkOptions, checkRank, checkShape } from '../ops/check.js';
import { batchLinear } from '../ops/matmul.js';
import { gelu } from '../ops/nn.js';
import { initSeed } from '../core/random.js';

/** n stacked expert MLPs, y = gelu(x·w1 + b1)·w2 + b2 for each expert (the ViT MLP, vmoe `MlpMoeBlock`). */
export interface ExpertParams {
  /** First-layer weights, [n, d, h]. */
  w1: tf.Tensor3D; // [n, d, h]
  /** First-layer biases, [n, h]. */
  b1: tf.Tensor2D; // [n, h]
  /** Second-layer weights, [n, h, d]. */
  w2: tf.Tensor3D; // [n, h, d]
  /** Second-layer biases, [n, d]. */
  b2: tf.Tensor2D; // [n, d]
}

/** Sizes of a stack of experts, read from w1 and checked against the other tensors. */
export interface ExpertSizes {
  /** Number of experts n. */
  numExperts: number;
  /** Token width d. */
  dim: number;
  /** Hidden width h. */
  hidden: number;
}

/**
 * Check the expert tensors' shapes and return n, d, h.
 *
 * @throws Error naming the tensor whose shape does not match.
 */
export function checkExpertParams(params: ExpertParams, dim?: number, numExperts?: number): ExpertSizes {
  if (params == null) throw new Error('expert params must be an object {w1, b1, w2, b2}, got ' + String(params));
  checkRank(params.w1, 3, 'w1');
  const [n, d, h] = params.w1.shape;
  if (dim != null && d !== dim)
    throw new Error(`w1 must be [n, ${dim}, h] to match the input width ${dim}, got [${params.w1.shape.join(', ')}]`);
  if (numExperts != null && n !== numExperts)
    throw new Error(`w1 must hold ${numExperts} experts (leading axis), got [${params.w1.shape.join(', ')}]`);
  checkShape(params.b1, [n, h], 'b1', 'n experts × hidden width from w1');
  checkShape(params.w2, [n, h, d], 'w2', 'n × h × d from w1');
  checkShape(params.b2, [n, d], 'b2', 'n experts × width from w1');
  for (const name of ['w1', 'b1', 'w2', 'b2'] as const) checkFloat(params[name], name);
  return { numExperts: n, dim: d, hidden: h };
}

/**
 * Apply expert i to xs[i]: xs [n, s, d] → [n, s, d], two batched products over the expert axis.
 */
export function applyExperts(xs: tf.Tensor3D, params: ExpertParams): tf.Tensor3D {
  // batchLinear adds the bias inside the product on the wasm fast path (lib/ops/matmul.ts).
  const hidden = gelu(batchLinear(xs, params.w1, params.b1)) as tf.Tensor3D;
  return batchLinear(hidden, params.w2, params.b2);
}

/** Options for creating expert weights. */
export interface ExpertInitOptions {
  /**
   * 'shared' (default): every expert starts from the same draw, as vmoe does (its experts are
   * created with `nn.vmap(..., variable_axes={'params': 0}, split_rngs={'params': False})`,
   * so all experts share one initialisation and differ only through what they are sent).
   * 'independent': one draw per expert, as most PyTorch ports do; useful when routing must
   * differentiate experts from step one (a sparse router with identical experts still learns,
   * since gates differ).
   */
  mode?: 'shared' | 'independent';
  /** Seed of the draw; w1 and w2 draw with `initSeed(seed, 0)` and `initSeed(seed, 1)`. Default 0. */
  seed?: number;
}

/**
 * Expert weights: Xavier/Glorot uniform for w1 and w2 (flax `MlpBlock` default kernel init is
 * `xavier_uniform`), zero biases (flax default; vmoe's `MlpBlock` uses normal(1e-6) biases, a
 * difference without effect at this scale).
 */
export function initExpertParams(
  numExperts: number,
  dim: number,
  hidden: number,
  options: ExpertInitOptions = {},
): ExpertParams {
  checkOptions(options, { mode: ['shared', 'independent'], seed: 'seed' }, 'initExpertParams');
  const mode = options.mode ?? 'shared';
  const seed = options.seed ?? 0;
  return tf.tidy(() => {
    const lim1 = Math.sqrt(6 / (dim + hidden));
    const draw = (shape: number[], lim: number, s: number) => tf.randomUniform(shape, -lim, lim, 'float32', s);
    let w1: tf.Tensor3D;
    let w2: tf.Tensor3D;
    if (mode === 'shared') {
      w1 = tf.tile(draw([1, dim, hidden], lim1, initSeed(seed, 0)), [numExperts, 1, 1]) as tf.Tensor3D;
      w2 = tf.tile(draw([1, hidden, dim], lim1, initSeed(seed, 1)), [numExperts, 1, 1]) as tf.Tensor3D;
    } else {
      w1 = draw([numExperts, dim, hidden], lim1, initSeed(seed, 0)) as tf.Tensor3D;
      w2 = draw([numExperts, hidden, dim], lim1, initSeed(seed, 1)) as tf.Tensor3D;
    }
    return {
      w1,
      b1: tf.zeros([numExperts, hidden]) as tf.Tensor2D,
      w2,
      b2: tf.zeros([numExperts, dim]) as tf.Tensor2D,
    };
  });
}
