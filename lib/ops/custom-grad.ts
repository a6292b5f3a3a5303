/**
 * A typed wrapper around `tf.customGrad`: tfjs types every argument as `Tensor | GradSaveFunc`,
 * which makes each use a cast. Here the forward receives its tensor inputs and `save` apart.
 *
 * Tensors the backward pass needs must go through `save` (tfjs clones them and keeps them
 * alive): a tensor captured by the closure may be disposed by a caller's `tf.tidy` first.
 */
import * as tf from '@tensorflow/tfjs';

export interface CustomGradResult {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
}

export function customOp(
  arity: number,
  forward: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => CustomGradResult,
): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad(((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const inputs = args.slice(0, arity) as tf.Tensor[];
    const save = args[arity] as tf.GradSaveFunc;
    const { value, gradFunc } = forward(inputs, save);
    return { value, gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => gradFunc(dy as tf.Tensor, saved) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (...inputs: tf.Tensor[]) => {
    if (inputs.length !== arity) throw new Error(`custom op expects ${arity} tensors, got ${inputs.length}`);
    return op(...inputs);
  };
}
