/**
 * Layer normalisation over the last axis (Ba et al. 2016; flax `nn.LayerNorm`, used before every
 * attention and MLP block of a pre-LN ViT and once after the encoder, vmoe `encoder_norm`):
 *   y = (x − mean(x)) / √(var(x) + eps) · scale + bias,   mean and var over the last axis.
 * Reductions are over the last axis only (on wasm a reduction over another axis transposes).
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt } from '../ops/check.js';
import { ownVariable, type Module } from '../moe/layers.js';

/** y = LN(x)·scale + bias over the last axis; x [..., d], scale and bias [d] (bias optional). */
export function layerNorm(x: tf.Tensor, scale: tf.Tensor1D, bias: tf.Tensor1D | null, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1];
  if (scale.shape[0] !== d) throw new Error(`layerNorm: scale must be [${d}] for input [${x.shape.join(', ')}], got [${scale.shape.join(', ')}]`);
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    const normed = tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), scale);
    return bias ? tf.add(normed, bias) : normed;
  });
}

/** A LayerNorm owning `scale` (ones) and `bias` (zeros), flax's initialisation. */
export class LayerNorm implements Module {
  readonly variables: Record<string, tf.Variable>;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    readonly useBias = true,
  ) {
    checkInt(dim, 'LayerNorm dim');
    this.variables = { scale: ownVariable(tf.ones([dim]), 'ln_scale') };
    if (useBias) this.variables.bias = ownVariable(tf.zeros([dim]), 'ln_bias');
  }
  apply(x: tf.Tensor): tf.Tensor {
    const v = this.variables;
    return layerNorm(x, v.scale as tf.Variable<tf.Rank.R1>, this.useBias ? (v.bias as tf.Variable<tf.Rank.R1>) : null, this.eps);
  }
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}
