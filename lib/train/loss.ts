/**
 * Classification loss and accuracy.
 *
 * Softmax cross-entropy with integer labels, as a mean over the batch:
 *   L = −(1/b) Σ_i log softmax(logits_i)[label_i] = −(1/b) Σ_i Σ_c onehot(label_i)_c · log p_ic
 * (vmoe's Soft MoE pre-training on JFT uses a sigmoid loss for its multi-label data; MNIST and
 * Fashion-MNIST are single-label, so the softmax form is the standard choice). The one-hot
 * product avoids a gather, whose gradient is unavailable on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { checkRank } from '../ops/check.js';

function checkLogitsLabels(logits: tf.Tensor2D, labels: tf.Tensor1D): void {
  checkRank(logits, 2, 'logits [b, classes]');
  checkRank(labels, 1, 'labels [b]');
  if (labels.shape[0] !== logits.shape[0]) {
    throw new Error(
      `labels must have one entry per row of logits (${logits.shape[0]}), got [${labels.shape.join(', ')}]`,
    );
  }
  if (labels.dtype !== 'int32') throw new Error(`labels must be int32 class indices, got dtype ${labels.dtype}`);
}

/** Mean softmax cross-entropy of logits [b, c] against integer labels [b]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  checkLogitsLabels(logits, labels);
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, logits.shape[1]).toFloat();
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), -1))) as tf.Scalar;
  });
}

/** Number of rows whose arg-max equals the label, as a float32 scalar (no read-back). */
export function countCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  checkLogitsLabels(logits, labels);
  return tf.tidy(() => tf.sum(tf.equal(tf.argMax(logits, -1), labels).toFloat()) as tf.Scalar);
}
