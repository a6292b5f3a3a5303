/**
 * Modules: objects that own named tf.Variables (layers, the ViT, the optimiser's slots) and
 * dispose them. Functions hold the math, objects hold the variables.
 */
import * as tf from '@tensorflow/tfjs';

/** A module that owns named variables. */
export interface Module {
  /** Variables by name, in a stable order (checkpoints rely on it). */
  readonly variables: Record<string, tf.Variable>;
  /** Dispose every variable the module owns; the module is unusable afterwards. */
  dispose(): void;
}

/** Make a trainable variable from a freshly made tensor and release the tensor (no leak). */
export function ownVariable(initial: tf.Tensor, name?: string, trainable = true): tf.Variable {
  const v = tf.variable(initial, trainable, name ? `${name}_${variableCounter++}` : undefined);
  initial.dispose();
  return v;
}
let variableCounter = 0;

/** Prefix every key of a module's variables, to nest modules. */
export function prefixed(prefix: string, vars: Record<string, tf.Variable>): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [`${prefix}/${k}`, v]));
}
