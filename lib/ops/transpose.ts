/**
 * Transposes with fast kernels on the wasm backend and an explicit gradient.
 *
 * tfjs-backend-wasm 4.22's Transpose kernel costs 4.5–9 ns per element here (a 2048×256 matrix
 * takes ~4.6 ms), and a sum over a non-last axis transposes internally. On the fast path
 * (lib/ops/fast-wasm.ts) the permutation is first reduced — axes of size 1 dropped, axes that stay
 * neighbours merged — and then run as one of:
 *   [R, C] → [C, R] and [B, R, C] → [B, C, R]: 4×4 register-blocked transpose (~0.3 ns/element);
 *   [A, B, c] → [B, A, c] (the last axis stays): copies of contiguous blocks of c elements.
 * Anything else, and every other backend, uses tf.transpose. The gradient of a transpose is the
 * transpose by the inverse permutation, taken with this same function.
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './custom-grad.js';
import { fastWasm, wasmPermuteBlocks, wasmTransposeLast2 } from './fast-wasm.js';

/** The inverse of a permutation. */
export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

/**
 * Reduce (shape, perm) to the fewest axes that describe the same data movement: drop axes of
 * size 1, then merge runs of axes that are adjacent in the input and stay adjacent, in order,
 * in the output. Returns the reduced input shape and permutation.
 */
export function reducePermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => shape[axis] !== 1);
  // Runs of consecutive input axes in output order.
  const runs: number[][] = [];
  for (const axis of kept) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] + 1 === axis) last.push(axis);
    else runs.push([axis]);
  }
  // Order runs by their first input axis to get the reduced input shape.
  const byInput = [...runs].sort((r1, r2) => r1[0] - r2[0]);
  const reducedShape = byInput.map((run) => run.reduce((size, axis) => size * shape[axis], 1));
  const reducedPerm = runs.map((run) => byInput.indexOf(run));
  return { shape: reducedShape, perm: reducedPerm };
}

function checkPerm(x: tf.Tensor, perm: readonly number[]): void {
  const sorted = [...perm].sort((p, q) => p - q);
  if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
    throw new Error(`transpose: perm [${perm.join(', ')}] is not a permutation of the ${x.rank} axes of a tensor [${x.shape.join(', ')}]`);
  }
}

/** The forward data movement, fast when possible; no gradient. */
function transposeValue(x: tf.Tensor, perm: readonly number[]): tf.Tensor {
  const outShape = perm.map((p) => x.shape[p]);
  const fast = x.dtype === 'float32' && x.size > 0 ? fastWasm() : null;
  if (fast != null) {
    const r = reducePermutation(x.shape, perm);
    const key = r.perm.join(',');
    if (r.perm.length <= 1) return tf.reshape(x, outShape);
    const s = r.shape;
    if (key === '1,0') return tf.reshape(wasmTransposeLast2(tf.reshape(x, [1, s[0], s[1]])), outShape);
    if (key === '0,2,1') return tf.reshape(wasmTransposeLast2(tf.reshape(x, [s[0], s[1], s[2]])), outShape);
    if (key === '1,0,2') return tf.reshape(wasmPermuteBlocks(tf.reshape(x, [s[0], s[1], s[2]])), outShape);
  }
  return tf.transpose(x, [...perm]);
}

const transposeOps = new Map<string, (x: tf.Tensor) => tf.Tensor>();

/**
 * x with its axes permuted (`perm[i]` = the input axis that becomes output axis i), fast on the
 * wasm backend; the gradient is the inverse transpose.
 */
export function transpose<T extends tf.Tensor>(x: T, perm: readonly number[]): T {
  checkPerm(x, perm);
  const key = perm.join(',');
  let op = transposeOps.get(key);
  if (op == null) {
    const inverse = inversePermutation(perm);
    op = customOp(1, ([input]) => ({
      value: transposeValue(input, perm),
      gradFunc: (dy) => [transpose(dy, inverse)],
    }));
    transposeOps.set(key, op);
  }
  return op(x) as T;
}

/** Transpose of a 2-D matrix. */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  return transpose(x, [1, 0]);
}

/** Swap the last two axes of a rank-3 tensor: [b, m, k] → [b, k, m]. */
export function transposeLast2(x: tf.Tensor3D): tf.Tensor3D {
  return transpose(x, [0, 2, 1]);
}
