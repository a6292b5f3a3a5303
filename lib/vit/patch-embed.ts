/**
 * Patch embedding and learned position embeddings (ViT, Dosovitskiy et al. 2021, §3.1; vmoe
 * `VisionTransformerMoe`: `nn.Conv(hidden_size, kernel_size=patch, strides=patch,
 * padding='VALID', name='embedding')`, then `AddPositionEmbs` with normal(0.02) init).
 *
 * A stride-P convolution with a P×P kernel is the same map as cutting the image into P×P patches,
 * flattening each in (row, column, channel) order and multiplying by the kernel reshaped to
 * [P·P·C, d]. We do the latter: one 2-D product [b·m, P·P·C]·[P·P·C, d] (the fast path on wasm,
 * no conv kernel and no rank-6 transpose).
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt, checkRank } from '../ops/check.js';
import { customOp } from '../ops/custom-grad.js';
import { columnSums, linear } from '../ops/matmul.js';
import { ownVariable, type Module } from '../core/module.js';
import { lecunNormal } from './init.js';

/**
 * Cut images [b, H, W, C] into non-overlapping P×P patches: [b, m, P·P·C], m = (H/P)·(W/P),
 * patches in raster order, each flattened in (row, column, channel) order like a conv kernel
 * [P, P, C, d]. Two reshapes and one rank-4 transpose: [b·H/P, P, W/P, P·C] → [b·H/P, W/P, P, P·C].
 */
export function patchify(images: tf.Tensor4D, patchSize: number): tf.Tensor3D {
  checkRank(images, 4, 'images [b, H, W, C]');
  checkInt(patchSize, 'patchSize');
  const [b, h, w, c] = images.shape;
  if (h % patchSize !== 0 || w % patchSize !== 0) {
    throw new Error(`patchSize ${patchSize} must divide the image height ${h} and width ${w}`);
  }
  const rows = h / patchSize;
  const cols = w / patchSize;
  return tf.tidy(() =>
    tf
      .transpose(images.reshape([b * rows, patchSize, cols, patchSize * c]), [0, 2, 1, 3])
      .reshape([b, rows * cols, patchSize * patchSize * c]),
  );
}

/**
 * tokens [b, m, d] + pos [m, d], with pos's gradient Σ_b dy as a product with a row of ones:
 * autodiff would sum over the batch axis, which on wasm transposes [b, m, d] first (measured
 * ~70 ms per step for b = 128, m = 49, d = 64 under load, against ~1 ms as a product).
 */
const addPositionsOp = customOp(2, ([tokens, pos]) => {
  const [b, m, d] = tokens.shape as [number, number, number];
  return {
    value: tf.add(tokens, pos),
    // dy.clone(), not dy: a custom gradient that hands back the incoming dy itself made the wasm
    // backend free that buffer twice once clones copy (fast path off, SOFTMOE_FAST_WASM=0): "memory
    // access out of bounds" in a training step (test/train/backends.test.ts, wasm-portable).
    gradFunc: (dy) => [dy.clone(), columnSums(dy.reshape([b, m * d]) as tf.Tensor2D).reshape([m, d])],
  };
});

/**
 * tokens [b, m, d] + pos [m, d] → [b, m, d]; the gradient of pos is a product with a row of ones (see above).
 */
export function addPositions(tokens: tf.Tensor3D, pos: tf.Tensor2D): tf.Tensor3D {
  return addPositionsOp(tokens, pos) as tf.Tensor3D;
}

/** Sizes and seeds of a {@link PatchEmbed}. */
export interface PatchEmbedConfig {
  /** Image height and width H = W. */
  imageSize: number;
  /** Image channels C. */
  channels: number;
  /** Patch side P; must divide imageSize. */
  patchSize: number;
  /** Token width d. */
  dim: number;
  /** Seeds of the kernel and position-embedding draws. */
  seeds: [number, number];
}

/**
 * Owns the projection `kernel` [P·P·C, d] (LeCun normal, flax Conv default), `bias` [d] (zeros)
 * and the position embeddings `pos` [m, d] (normal, std 0.02, vmoe "from BERT").
 */
export class PatchEmbed implements Module {
  readonly variables: Record<string, tf.Variable>;
  /** Tokens per image m = (H/P)². */
  readonly numTokens: number;
  /** Values per patch P·P·C. */
  readonly patchDim: number;
  /**
   * @param config sizes and seeds; kept as `config`.
   * @throws Error if `patchSize` does not divide `imageSize`.
   */
  constructor(readonly config: PatchEmbedConfig) {
    const { imageSize, channels, patchSize, dim, seeds } = config;
    if (imageSize % patchSize !== 0) throw new Error(`patchSize ${patchSize} must divide imageSize ${imageSize}`);
    this.numTokens = (imageSize / patchSize) ** 2;
    this.patchDim = patchSize * patchSize * channels;
    this.variables = {
      kernel: ownVariable(lecunNormal([this.patchDim, dim], seeds[0]), 'patch_kernel'),
      bias: ownVariable(tf.zeros([dim]), 'patch_bias'),
      pos: ownVariable(tf.randomNormal([this.numTokens, dim], 0, 0.02, 'float32', seeds[1]), 'posembed'),
    };
  }

  /** images [b, H, W, C] → tokens [b, m, d] with position embeddings added. */
  apply(images: tf.Tensor4D): tf.Tensor3D {
    const { imageSize, channels } = this.config;
    checkRank(images, 4, 'images [b, H, W, C]');
    const [, h, w, c] = images.shape;
    if (h !== imageSize || w !== imageSize || c !== channels) {
      throw new Error(`images must be [b, ${imageSize}, ${imageSize}, ${channels}], got [${images.shape.join(', ')}]`);
    }
    const v = this.variables;
    return tf.tidy(() => {
      const patches = patchify(images, this.config.patchSize); // [b, m, P·P·C]
      const tokens = linear(patches, v.kernel as tf.Variable<tf.Rank.R2>, v.bias as tf.Variable<tf.Rank.R1>); // [b, m, d]
      return addPositions(tokens as tf.Tensor3D, v.pos as tf.Variable<tf.Rank.R2>);
    });
  }

  /** Dispose the kernel, bias and position embeddings. */
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}
