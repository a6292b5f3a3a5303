/**
 * Soft MoE and the sparse MoE layers as tf.layers layers (usable in tf.sequential / tf.model,
 * trained with model.fit, saved with model.save, loaded with tf.loadLayersModel). Importing this
 * module registers them with tf.serialization. Re-exports only.
 */
export * from './base.js';
export * from './soft-moe.js';
export * from './sparse-moe.js';
