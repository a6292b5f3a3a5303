/**
 * Matrix products with wasm-friendly gradients.
 *
 * On the wasm backend a matMul with `transposeA`/`transposeB` is 10–30× slower than a plain one,
 * and tfjs' built-in matMul gradient uses those flags (../shared/ENVIRONMENT.md). These products
 * carry a custom gradient that transposes explicitly and calls plain products only:
 *   C = A·B  ⇒  dA = dC·Bᵀ,  dB = Aᵀ·dC.
 * `batchMatMul` routes its forward through `batchMatMulKernel`, which the performance layer may
 * replace with a faster kernel; the gradient is written in terms of `batchMatMul` itself.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './custom-grad.js';

/** Transpose of a 2-D matrix. */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  return tf.transpose(x, [1, 0]);
}

/** Swap the last two axes of a rank-3 tensor: [b, m, k] → [b, k, m]. */
export function transposeLast2(x: tf.Tensor3D): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]);
}

// Operands are kept with `save` (tfjs clones them), not captured by the closure: an operand
// created inside a caller's `tf.tidy` is disposed when that tidy ends, before the backward pass.
const matMul2dGrad = customOp(2, ([a, b], save) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy, saved) => {
      const g = dy as tf.Tensor2D;
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(g, transpose2d(sb)), tf.matMul(transpose2d(sa), g)];
    },
  };
});

/** A [m, k] · B [k, n] → [m, n], no transposed products in forward or backward. */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`matMul expects [m, k]·[k, n], got [${a.shape.join(', ')}]·[${b.shape.join(', ')}]`);
  }
  return matMul2dGrad(a, b) as tf.Tensor2D;
}

/** Signature of a batched product kernel without transposes: [B, m, k]·[B, k, n] → [B, m, n]. */
export type BatchMatMulKernel = (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/** The default kernel: tfjs' own batched matMul. */
export const tfBatchMatMul: BatchMatMulKernel = (a, b) => tf.matMul(a, b);

let batchMatMulKernel: BatchMatMulKernel = tfBatchMatMul;

/**
 * Replace the forward kernel of `batchMatMul` (used by lib/ops/fast-bmm.ts for the wasm backend).
 * Returns the previous kernel so that tests can switch back.
 */
export function setBatchMatMulKernel(kernel: BatchMatMulKernel): BatchMatMulKernel {
  const previous = batchMatMulKernel;
  batchMatMulKernel = kernel;
  return previous;
}

const batchMatMulGrad = customOp(2, ([a, b], save) => {
  save([a, b]);
  return {
    value: batchMatMulKernel(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, saved) => {
      const g = dy as tf.Tensor3D;
      const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
      return [batchMatMulKernel(g, transposeLast2(sb)), batchMatMulKernel(transposeLast2(sa), g)];
    },
  };
});

/** A [B, m, k] · B [B, k, n] → [B, m, n] (one product per batch entry, no broadcasting). */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1]) {
    throw new Error(`batchMatMul expects [B, m, k]·[B, k, n], got [${a.shape.join(', ')}]·[${b.shape.join(', ')}]`);
  }
  return batchMatMulGrad(a, b) as tf.Tensor3D;
}

/** x [..., k] · w [k, n] → [..., n] as one 2-D product (the fast path on wasm). */
export function linear(x: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const k = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[0] !== k) {
    throw new Error(`linear: weight must be [${k}, n] for input [${x.shape.join(', ')}], got [${w.shape.join(', ')}]`);
  }
  const rows = x.size / k;
  let y: tf.Tensor = matMul(x.reshape([rows, k]) as tf.Tensor2D, w);
  if (bias) y = tf.add(y, bias);
  return y.reshape([...x.shape.slice(0, -1), w.shape[1]]);
}
