/**
 * Layer normalisation over the last axis (Ba et al. 2016; flax `nn.LayerNorm`, used before every
 * attention and MLP block of a pre-LN ViT and once after the encoder, vmoe `encoder_norm`):
 *   y = (x − mean(x)) / √(var(x) + eps) · scale + bias,   mean and var over the last axis.
 * Reductions are over the last axis only (on wasm a reduction over another axis transposes);
 * the gradient is written in closed form (`layerNormRows`).
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt } from '../ops/check.js';
import { customOp } from '../ops/custom-grad.js';
import { fastWasm, wasmLayerNorm, wasmLayerNormGrad } from '../ops/fast-wasm.js';
import { columnSums } from '../ops/matmul.js';
import { ownVariable, type Module } from '../core/module.js';

/**
 * LayerNorm of rows x [N, d] with a closed-form gradient (x̂ = (x − μ)·r, r = 1/√(σ² + eps)):
 *   dx = r · (g − mean(g) − x̂ · mean(g ⊙ x̂)),  g = dy ⊙ scale      (means over the last axis)
 *   dscale = Σ_rows dy ⊙ x̂,   dbias = Σ_rows dy                    (as products with a row of ones)
 * Autodiff of the composed ops would reduce over the rows with `sum` on a non-last axis, which
 * transposes first on wasm, and would broadcast [N, 1] factors about twice as often.
 */
function layerNormRows(eps: number) {
  return customOp(3, ([x, scale, bias], save) => {
    const centred = tf.sub(x, tf.mean(x, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps));
    const xhat = tf.mul(centred, rstd);
    save([xhat, rstd, scale]);
    return {
      value: tf.add(tf.mul(xhat, scale), bias),
      gradFunc: (dy, [xh, r, sc]) => {
        const g = tf.mul(dy, sc);
        const dx = tf.mul(tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))), r);
        return [dx, columnSums(tf.mul(dy, xh) as tf.Tensor2D), columnSums(dy as tf.Tensor2D)];
      },
    };
  });
}

/**
 * The same LayerNorm and closed-form gradient as one fused pass each on the fast wasm path
 * (lib/ops/fast-wasm.ts; tested there against autodiff of the composed ops). The composed version
 * above launches about 8 kernels forward and 12 backward per call; a ViT step calls it 9 times.
 */
function layerNormRowsFast(eps: number) {
  return customOp(3, ([x, scale, bias], save) => {
    const [y, xhat, rstd] = wasmLayerNorm(x as tf.Tensor2D, scale as tf.Tensor1D, bias as tf.Tensor1D, eps);
    save([xhat, rstd, scale]);
    return {
      value: y,
      gradFunc: (dy, [xh, r, sc]) => wasmLayerNormGrad(dy as tf.Tensor2D, xh as tf.Tensor2D, r as tf.Tensor1D, sc as tf.Tensor1D),
    };
  });
}

/** y = LN(x)·scale + bias over the last axis; x [..., d], scale and bias [d] (bias optional). */
export function layerNorm(x: tf.Tensor, scale: tf.Tensor1D, bias: tf.Tensor1D | null, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1];
  if (scale.shape[0] !== d) throw new Error(`layerNorm: scale must be [${d}] for input [${x.shape.join(', ')}], got [${scale.shape.join(', ')}]`);
  if (bias != null && bias.shape[0] !== d) throw new Error(`layerNorm: bias must be [${d}] for input [${x.shape.join(', ')}], got [${bias.shape.join(', ')}]`);
  return tf.tidy(() => {
    const rows = x.reshape([x.size / d, d]);
    const fast = x.dtype === 'float32' && x.size > 0 && fastWasm() != null;
    return (fast ? layerNormRowsFast : layerNormRows)(eps)(rows, scale, bias ?? tf.zeros([d])).reshape(x.shape);
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
