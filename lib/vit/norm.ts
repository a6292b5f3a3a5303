/**
 * The LayerNorm module of a pre-LN ViT (flax `nn.LayerNorm`, used before every attention and MLP
 * block and once after the encoder, vmoe `encoder_norm`): it owns its scale and bias and calls
 * the `layerNorm` op (lib/ops/layer-norm.ts, where the formula and its gradient are).
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt } from '../ops/check.js';
import { layerNorm } from '../ops/layer-norm.js';
import { ownVariable, type Module } from '../core/module.js';

export { layerNorm };

/** A LayerNorm owning `scale` (ones) and `bias` (zeros), flax's initialisation. */
export class LayerNorm implements Module {
  readonly variables: Record<string, tf.Variable>;
  /**
   * A LayerNorm with scale ones and bias zeros.
   *
   * @param dim width d of the normalised (last) axis; kept as `dim`.
   * @param eps added to the variance; kept as `eps`. Default 1e-6 (flax `nn.LayerNorm`).
   * @param useBias whether there is a bias; kept as `useBias`. Default true.
   * @throws Error if `dim` is not a positive integer.
   */
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    readonly useBias = true,
  ) {
    checkInt(dim, 'LayerNorm dim');
    this.variables = { scale: ownVariable(tf.ones([dim]), 'ln_scale') };
    if (useBias) this.variables.bias = ownVariable(tf.zeros([dim]), 'ln_bias');
  }
  /** LN(x)·scale + bias over the last axis, x [..., d]. */
  apply(x: tf.Tensor): tf.Tensor {
    const v = this.variables;
    return layerNorm(
      x,
      v.scale as tf.Variable<tf.Rank.R1>,
      this.useBias ? (v.bias as tf.Variable<tf.Rank.R1>) : null,
      this.eps,
    );
  }
  /** Dispose `scale` (and `bias`). */
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}
