/**
 * Matrix products with wasm-friendly gradients.
 *
 *   C = A·B (+ bias)  ⇒  dA = dC·Bᵀ,  dB = Aᵀ·dC,  dbias = Σ_rows dC.
 *
 * Every product, forward and backward, goes through `product`, which takes its transposes as
 * flags and runs
 *  - an accelerator's kernel where one serves the active backend (lib/ops/accelerators.ts; the
 *    wasm fast path: one SIMD kernel call that reads A transposed through strides, transposes B
 *    (when asked) with a blocked kernel, and adds the bias inside the product; no XNNPACK
 *    repacking, no per-batch dispatch through tfjs);
 *  - else public tfjs ops, with the transposes made explicit — tfjs' own matMul gradient uses
 *    transposeA/transposeB, which on wasm is many times slower than a plain product, and a rank-3
 *    tf.matMul runs a scalar loop there (`npm run bench` measures both; data/results/bench/).
 * Both paths are checked against each other and against the golden vectors (test/ops, test/moe).
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './custom-grad.js';
import { fastOp } from './accelerators.js';
import { transpose2d, transposeLast2 } from './transpose.js';

export { transpose2d, transposeLast2 };

/** Options of `product`. */
export interface ProductOptions {
  /** Use Aᵀ: a is [B, k, m]. */
  transposeA?: boolean;
  /** Use Bᵀ: b is [B or 1, n, k]. */
  transposeB?: boolean;
  /** Added to every row of the product, [1 or B, n]. */
  bias?: tf.Tensor2D;
}

/**
 * op(A)·op(B) (+ bias) for rank-3 operands, [B, m, n], with no gradient of its own: the building
 * block of the differentiable products below. b may have batch 1 (shared by every batch entry).
 */
export function product(a: tf.Tensor3D, b: tf.Tensor3D, options: ProductOptions = {}): tf.Tensor3D {
  const { transposeA = false, transposeB = false, bias } = options;
  checkProductShapes(a, b, transposeA, transposeB, bias);
  const fast = fastOp('product')?.(a, b, { transposeA, transposeB, bias });
  if (fast != null) return fast;
  return tf.tidy(() => {
    const left = transposeA ? tf.transpose(a, [0, 2, 1]) : a;
    const right = transposeB ? tf.transpose(b, [0, 2, 1]) : b;
    const c = tf.matMul(left, right) as tf.Tensor3D;
    return bias ? (tf.add(c, bias.reshape([bias.shape[0], 1, bias.shape[1]])) as tf.Tensor3D) : c;
  });
}

function checkProductShapes(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA: boolean,
  transposeB: boolean,
  bias?: tf.Tensor,
): void {
  const [batch, a1, a2] = a.shape as number[];
  const [bBatch, b1, b2] = b.shape as number[];
  const k = transposeA ? a1 : a2;
  const n = transposeB ? b1 : b2;
  if (a.rank !== 3 || b.rank !== 3 || k !== (transposeB ? b2 : b1) || (bBatch !== batch && bBatch !== 1)) {
    throw new Error(
      `product: shapes [${a.shape.join(', ')}]${transposeA ? 'ᵀ' : ''}·[${b.shape.join(', ')}]${transposeB ? 'ᵀ' : ''} do not match ` +
        '(expected [B, m, k]·[B or 1, k, n] after the transposes)',
    );
  }
  if (bias && (bias.rank !== 2 || bias.shape[1] !== n || (bias.shape[0] !== 1 && bias.shape[0] !== batch))) {
    throw new Error(`product: bias must be [1 or ${batch}, ${n}], got [${bias.shape.join(', ')}]`);
  }
}

/**
 * Column sums of a matrix [r, c] → [c], as a product with a row of ones: a 2-D product, fast
 * on wasm, where tf.sum over axis 0 transposes first (and a rank-3 tf.matMul is the slow path).
 */
export function columnSums(x: tf.Tensor2D): tf.Tensor1D {
  const [r, c] = x.shape;
  return matMul(tf.ones([1, r]) as tf.Tensor2D, x).reshape([c]);
}

/** Column sums of each batch entry: [B, R, C] → [B, C] (the gradient of a bias row). */
export function sumRows(x: tf.Tensor3D): tf.Tensor2D {
  return fastOp('sumRows')?.(x) ?? tf.sum(x, 1);
}

function as3d(t: tf.Tensor): tf.Tensor3D {
  const [rows, cols] = t.shape as [number, number];
  return tf.reshape(t, [1, rows, cols]);
}

// Operands are kept with `save` (tfjs keeps a copy until the backward pass), not captured by the
// closure: an operand created inside a caller's `tf.tidy` is disposed when that tidy ends, before
// the backward pass runs.
const matMul2dOp = customOp(2, ([a, b], save) => {
  save([a, b]);
  return {
    value: tf.reshape(product(as3d(a), as3d(b)), [(a.shape as number[])[0], (b.shape as number[])[1]]),
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved;
      const g = as3d(dy);
      return [
        product(g, as3d(sb), { transposeB: true }).reshape(sa.shape),
        product(as3d(sa), g, { transposeA: true }).reshape(sb.shape),
      ];
    },
  };
});

/** A [m, k] · B [k, n] → [m, n], no transposed products in forward or backward. */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`matMul expects [m, k]·[k, n], got [${a.shape.join(', ')}]·[${b.shape.join(', ')}]`);
  }
  return matMul2dOp(a, b) as tf.Tensor2D;
}

const batchMatMulOp = customOp(2, ([a, b], save) => {
  save([a, b]);
  return {
    value: product(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      return [product(g, sb, { transposeB: true }), product(sa, g, { transposeA: true })];
    },
  };
});

/** A [B, m, k] · B [B, k, n] → [B, m, n] (one product per batch entry, no broadcasting). */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1]) {
    throw new Error(`batchMatMul expects [B, m, k]·[B, k, n], got [${a.shape.join(', ')}]·[${b.shape.join(', ')}]`);
  }
  return batchMatMulOp(a, b) as tf.Tensor3D;
}

// y [B, m, n] = x [B, m, k] · w [B, k, n] + bias [B, n]; the bias is added inside the product on
// the fast path, and its gradient is a sum over rows (not tf.sum over axis 0, which transposes).
const batchLinearBiasOp = customOp(3, ([x, w, bias], save) => {
  save([x, w]);
  return {
    value: product(x as tf.Tensor3D, w as tf.Tensor3D, { bias: bias as tf.Tensor2D }),
    gradFunc: (dy, saved) => {
      const [sx, sw] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      return [product(g, sw, { transposeB: true }), product(sx, g, { transposeA: true }), sumRows(g)];
    },
  };
});

/**
 * x [B, m, k] · w [B, k, n] + bias [B, n] → [B, m, n]: B independent affine maps (e.g. the n
 * experts of an MoE layer, lib/moe/experts.ts), in one call forward and three backward.
 */
export function batchLinear(x: tf.Tensor3D, w: tf.Tensor3D, bias?: tf.Tensor2D): tf.Tensor3D {
  const [batch, , k] = x.shape;
  if (x.rank !== 3 || w.rank !== 3 || w.shape[0] !== batch || w.shape[1] !== k) {
    throw new Error(`batchLinear expects x [B, m, k]·w [B, k, n], got [${x.shape.join(', ')}]·[${w.shape.join(', ')}]`);
  }
  if (bias == null) return batchMatMul(x, w);
  const n = w.shape[2];
  if (bias.rank !== 2 || bias.shape[0] !== batch || bias.shape[1] !== n) {
    throw new Error(
      `batchLinear: bias must be [${batch}, ${n}] for w [${w.shape.join(', ')}], got [${bias.shape.join(', ')}]`,
    );
  }
  return batchLinearBiasOp(x, w, bias) as tf.Tensor3D;
}

/** x [..., k] · w [k, n] (+ bias [n]) → [..., n] as one 2-D product (an accelerator's kernel where one serves the backend). */
export function linear(x: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const k = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[0] !== k) {
    throw new Error(`linear: weight must be [${k}, n] for input [${x.shape.join(', ')}], got [${w.shape.join(', ')}]`);
  }
  const n = w.shape[1];
  if (bias != null && (bias.rank !== 1 || bias.shape[0] !== n)) {
    throw new Error(`linear: bias must be [${n}] for weight [${w.shape.join(', ')}], got [${bias.shape.join(', ')}]`);
  }
  const rows = x.size / k;
  const x3 = x.reshape([1, rows, k]) as tf.Tensor3D;
  const w3 = w.reshape([1, k, n]) as tf.Tensor3D;
  const y = bias == null ? batchMatMul(x3, w3) : batchLinear(x3, w3, bias.reshape([1, n]) as tf.Tensor2D);
  return y.reshape([...x.shape.slice(0, -1), n]);
}
