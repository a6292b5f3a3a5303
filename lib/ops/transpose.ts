/**
 * Transposes with an explicit gradient: the gradient of a transpose is the transpose by the
 * inverse permutation, taken with this same function. The forward data movement is tf.transpose,
 * or an accelerator's faster kernel (lib/ops/accelerators.ts; on the wasm fast path a blocked
 * transpose, since tfjs-backend-wasm 4.22's Transpose costs several ns per element and a sum over
 * a non-last axis transposes internally).
 */
import * as tf from '@tensorflow/tfjs';
import { customOp } from './custom-grad.js';
import { fastOp } from './accelerators.js';
import { inversePermutation } from './permutation.js';

export { inversePermutation, reducePermutation } from './permutation.js';

function checkPerm(x: tf.Tensor, perm: readonly number[]): void {
  const sorted = [...perm].sort((p, q) => p - q);
  if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
    throw new Error(
      `transpose: perm [${perm.join(', ')}] is not a permutation of the ${x.rank} axes of a tensor [${x.shape.join(', ')}]`,
    );
  }
}

const transposeOps = new Map<string, (x: tf.Tensor) => tf.Tensor>();

/**
 * x with its axes permuted (`perm[i]` = the input axis that becomes output axis i); the gradient
 * is the inverse transpose.
 */
export function transpose<T extends tf.Tensor>(x: T, perm: readonly number[]): T {
  checkPerm(x, perm);
  const key = perm.join(',');
  let op = transposeOps.get(key);
  if (op == null) {
    const inverse = inversePermutation(perm);
    op = customOp(1, ([input]) => ({
      value: fastOp('transpose')?.(input, perm) ?? tf.transpose(input, [...perm]),
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
