/**
 * Layer normalisation over the last axis (Ba et al. 2016; flax `nn.LayerNorm`, used before every
 * attention and MLP block of a pre-LN ViT and once after the encoder, vmoe `encoder_norm`):
 *   y = (x − mean(x)) / √(var(x) + eps) · scale + bias,   mean and var over the last axis.
 * Reductions are over the last axis only (on wasm a reduction over another axis transposes); the
 * gradient is written in closed form (`layerNormRows`). An accelerator may fuse the whole op
 * (lib/ops/accelerators.ts; on wasm one kernel each way, checked against this version in
 * test/ops/layer-norm.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { fastOp } from './accelerators.js';
import { customOp } from './custom-grad.js';
import { columnSums } from './matmul.js';

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
 * y = LN(x)·scale + bias over the last axis, differentiable in all three.
 * @param x [..., d]
 * @param scale [d]
 * @param bias [d], or null for none
 * @param eps added to the variance (flax's default 1e-6)
 * @returns y, the shape of x
 */
export function layerNorm(x: tf.Tensor, scale: tf.Tensor1D, bias: tf.Tensor1D | null, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1];
  if (scale.shape[0] !== d)
    throw new Error(
      `layerNorm: scale must be [${d}] for input [${x.shape.join(', ')}], got [${scale.shape.join(', ')}]`,
    );
  if (bias != null && bias.shape[0] !== d)
    throw new Error(`layerNorm: bias must be [${d}] for input [${x.shape.join(', ')}], got [${bias.shape.join(', ')}]`);
  return tf.tidy(() => {
    const rows = x.reshape([x.size / d, d]) as tf.Tensor2D;
    const b = bias ?? (tf.zeros([d]) as tf.Tensor1D);
    const y = fastOp('layerNorm')?.(rows, scale, b, eps) ?? layerNormRows(eps)(rows, scale, b);
    return y.reshape(x.shape);
  });
}
