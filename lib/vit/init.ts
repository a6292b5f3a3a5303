/**
 * Initialisers of the ViT's weights, each the flax default that vmoe relies on, each drawn with
 * an explicit seed (same seed → same weights on every run and backend).
 */
import * as tf from '@tensorflow/tfjs';
import { tfjsSeed } from '../ops/check.js';

/** Xavier/Glorot uniform, limit √(6 / (fanIn + fanOut)) (flax `xavier_uniform`: attention, MLP kernels). */
export function xavierUniform(shape: [number, number], seed: number): tf.Tensor2D {
  const [fanIn, fanOut] = shape;
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.randomUniform(shape, -limit, limit, 'float32', seed) as tf.Tensor2D;
}

/**
 * U(±1/√fanIn), PyTorch's `nn.Linear` default for kernel and bias (the ViT head with
 * `headInit: 'uniform'`, a departure from vmoe's zero head: lib/vit/config.ts says why).
 */
export function fanInUniform(shape: number[], fanIn: number, seed: number): tf.Tensor {
  const limit = 1 / Math.sqrt(fanIn);
  return tf.randomUniform(shape, -limit, limit, 'float32', seed);
}

/**
 * LeCun normal, std √(1 / fanIn) (flax `nn.Conv` default `lecun_normal`: the patch embedding).
 * flax truncates the normal at ±2σ; tfjs' `truncatedNormal` does the same.
 */
export function lecunNormal(shape: [number, number], seed: number): tf.Tensor2D {
  // flax's truncated normal rescales σ by 1/0.87962566 so that the truncated std is √(1/fanIn).
  const std = Math.sqrt(1 / shape[0]) / 0.8796256610342398;
  return tf.truncatedNormal(shape, 0, std, 'float32', tfjsSeed(seed)) as tf.Tensor2D;
}
