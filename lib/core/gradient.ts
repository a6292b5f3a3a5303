/** Gradient helpers shared by the routers and the losses. */
import * as tf from '@tensorflow/tfjs';
import { customOp } from '../ops/custom-grad.js';

/**
 * Compute `fn(...inputs)` as one node whose gradient with respect to every input is zero
 * (`jax.lax.stop_gradient` around a routing decision, as in vmoe). The ops inside `fn` are not
 * recorded for backpropagation, so they may include ops that tfjs cannot differentiate at all
 * (TopK, OneHot of indices, comparisons, Cumsum of masks): these decide *where* tokens go, and
 * the paper's routers learn only through *how much* (the gate values), never through the choice.
 * A plain `stopGradient(x)` followed by `tf.topk` would fail under `tf.grads` ("gradient function
 * not found for TopK"), because the TopK node would still be on the tape.
 * `fn` must return a float32 tensor.
 */
export function withoutGradient(fn: (...inputs: tf.Tensor[]) => tf.Tensor, ...inputs: tf.Tensor[]): tf.Tensor {
  const shapes = inputs.map((t) => t.shape);
  return customOp(inputs.length, (xs) => ({
    value: fn(...xs),
    gradFunc: () => shapes.map((shape) => tf.zeros(shape)),
  }))(...inputs);
}
