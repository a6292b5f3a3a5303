/**
 * Elementwise and reduction numerics shared by the layers.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './custom-grad.js';
import { fastOp } from './accelerators.js';
import { transpose } from './transpose.js';
import { GELU_C, GELU_CUBIC } from './gelu-constants.js';

/**
 * GELU with the tanh approximation (flax `nn.gelu` default, used by vmoe's MLP blocks):
 *   gelu(x) = ½x(1 + tanh(c(x + 0.044715x³))) = x·σ(2c(x + 0.044715x³)),  c = √(2/π),
 * using 1 + tanh(z) = 2σ(2z). The sigmoid form is exact and, on tfjs-backend-wasm 4.22, much
 * cheaper than its tanh kernel. The gradient is written in closed form:
 *   d/dx [x·σ(u)] = σ(u) + x·σ(u)(1 − σ(u))·u',  u = 2c(x + 0.044715x³), u' = 2c(1 + 3·0.044715x²).
 */
const geluPortable = customOp(1, ([x], save) => {
  const u = tf.mul(x, tf.mul(tf.add(tf.mul(tf.square(x), GELU_CUBIC), 1), 2 * GELU_C));
  const s = tf.sigmoid(u);
  save([x, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy, saved) => {
      const [x, s] = saved;
      const du = tf.mul(tf.add(tf.mul(tf.square(x), 3 * GELU_CUBIC), 1), 2 * GELU_C);
      const ds = tf.mul(s, tf.sub(1, s));
      return [tf.mul(dy, tf.add(s, tf.mul(tf.mul(x, ds), du)))];
    },
  };
}) as (x: tf.Tensor) => tf.Tensor;

/** GELU, tanh form (see above); an accelerator may fuse it (one kernel each way on wasm). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fastOp('gelu')?.(x) ?? geluPortable(x);
}

/** Epsilon of vmoe's `normalize` (`vmoe/projects/soft_moe/router.py`). */
export const NORMALIZE_EPS = 1e-6;

/**
 * v · rsqrt(Σ v² + eps) along `axis` (vmoe's `normalize`, paper §2.3). Where an accelerator
 * normalises rows in one kernel (lib/ops/accelerators.ts), another axis (e.g. Φ [d, n, p] over d)
 * is swapped with the last, rows are normalised, and the axes are swapped back.
 */
export function l2Normalize(v: tf.Tensor, axis = -1, eps = NORMALIZE_EPS): tf.Tensor {
  const ax = axis < 0 ? v.rank + axis : axis;
  if (ax < 0 || ax >= v.rank) throw new Error(`l2Normalize: axis ${axis} out of range for a tensor of rank ${v.rank}`);
  const portable = (t: tf.Tensor, a: number) => tf.mul(t, tf.rsqrt(tf.add(tf.sum(tf.square(t), a, true), eps)));
  const rows = fastOp('l2NormalizeRows');
  if (rows == null) return portable(v, ax);
  return alongLastAxis(v, ax, (t) => rows(t, eps) ?? portable(t, t.rank - 1));
}

/** f, which works on the last axis, applied along axis `ax`: that axis swapped with the last and back. */
function alongLastAxis(x: tf.Tensor, ax: number, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  if (ax === x.rank - 1) return f(x);
  const perm = [...Array(x.rank).keys()];
  perm[ax] = x.rank - 1;
  perm[x.rank - 1] = ax;
  return transpose(f(transpose(x, perm)), perm);
}

/**
 * Softmax over the last axis (tfjs' own forward kernel). An accelerator may supply a faster
 * gradient (on wasm dx = y·(dy − Σ_j y_j·dy_j) is one kernel instead of tfjs' four, mul, sum, sub,
 * mul, with their saved copies); else this is tf.softmax.
 */
export function softmax(x: tf.Tensor): tf.Tensor {
  return fastOp('softmax')?.(x) ?? tf.softmax(x);
}

/**
 * Softmax along any axis. tfjs' softmax works on the last axis only, so other axes are moved
 * there and back; callers that can use the transposed layout directly should do so instead.
 */
export function softmaxAxis(x: tf.Tensor, axis: number): tf.Tensor {
  const ax = axis < 0 ? x.rank + axis : axis;
  if (ax < 0 || ax >= x.rank) throw new Error(`softmaxAxis: axis ${axis} out of range for rank ${x.rank}`);
  return alongLastAxis(x, ax, softmax);
}

/** Standard normal CDF Φ(z) = ½(1 + erf(z/√2)). */
export function normalCdf(z: tf.Tensor): tf.Tensor {
  return tf.mul(0.5, tf.add(1, tf.erf(tf.mul(z, Math.SQRT1_2))));
}
