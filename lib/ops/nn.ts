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
 * v · rsqrt(Σ v² + eps) along `axis` (vmoe's `normalize`, paper §2.3).
 *
 * Departure for range: in float32, Σv² overflows to Inf once |v| ≳ 1.8e19 (√3.4e38) and the row
 * would become 0 (so Soft MoE's dispatch silently turned uniform). Rows whose largest |v|
 * exceeds 2^50 ≈ 1.1e15 are first scaled by the power of two 2^(10 − ⌊log2 max|v|⌋), which is
 * exact and brings their largest entry near 2^10; then Σv² ≥ 2^20, so eps changes the result by
 * less than 1e-12 relative — exactly what vmoe's formula gives in exact arithmetic. Other rows
 * are untouched (factor 1), so the result is bit for bit the plain formula wherever it did not
 * overflow. The factor carries no gradient; the gradient through v·factor is the exact one
 * (a constant power of two times the gradient of the scaled row).
 */
export function l2Normalize(v: tf.Tensor, axis = -1, eps = NORMALIZE_EPS): tf.Tensor {
  const ax0 = axis < 0 ? v.rank + axis : axis;
  if (ax0 < 0 || ax0 >= v.rank)
    throw new Error(`l2Normalize: axis ${axis} out of range for a tensor of rank ${v.rank}`);
  return tf.tidy(() =>
    l2NormalizeUnscaled(v.dtype === 'float32' && v.size > 0 ? tf.mul(v, largeRowFactorOp(ax0)(v)) : v, ax0, eps),
  );
}

// The factor as one node with a zero gradient: its ops (Greater, Floor) are not recorded, as in
// dispatch.ts `withoutGradient` (tfjs has no gradient for Greater).
const largeRowFactorOps = new Map<number, (v: tf.Tensor) => tf.Tensor>();
function largeRowFactorOp(axis: number): (v: tf.Tensor) => tf.Tensor {
  let op = largeRowFactorOps.get(axis);
  if (op == null) {
    op = customOp(1, ([v]) => {
      const shape = v.shape;
      return { value: largeRowFactor(v, axis), gradFunc: () => [tf.zeros(shape)] };
    });
    largeRowFactorOps.set(axis, op);
  }
  return op;
}

/** Above this max |v| a row is rescaled before squaring (see l2Normalize). */
const L2_SAFE_MAX = 2 ** 50;

/** Per row along `axis`: 2^(10 − ⌊log2 max|v|⌋) where max|v| > 2^50, else 1 (keepDims shape). */
function largeRowFactor(v: tf.Tensor, axis: number): tf.Tensor {
  const maxAbs = tf.max(tf.abs(v), axis, true);
  const exponent = tf.floor(tf.div(tf.log(maxAbs), Math.LN2));
  return tf.where(tf.greater(maxAbs, L2_SAFE_MAX), tf.pow(tf.scalar(2), tf.sub(10, exponent)), tf.onesLike(maxAbs));
}

function l2NormalizeUnscaled(v: tf.Tensor, ax: number, eps: number): tf.Tensor {
  const portable = (t: tf.Tensor, a: number) => tf.mul(t, tf.rsqrt(tf.add(tf.sum(tf.square(t), a, true), eps)));
  const rows = fastOp('l2NormalizeRows');
  if (rows == null) return portable(v, ax);
  // An accelerator normalises rows in one kernel (lib/ops/accelerators.ts): another axis (e.g.
  // Φ [d, n, p] over d) is swapped with the last, rows are normalised, and the axes swapped back.
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
