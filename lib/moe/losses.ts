/**
 * Auxiliary load-balancing losses of the sparse routers, as google-research/vmoe defines them in
 * `vmoe/nn/routing.py` (`NoisyTopExpertsPerItemRouter`): importance and load losses from
 * Riquelme et al., "Scaling Vision with Sparse Mixture of Experts" (V-MoE, arXiv:2106.05974,
 * Appendix A.2, after Shazeer et al. 2017), and the GShard loss (Lepikhin et al.,
 * arXiv:2006.16668, Algorithm 1). The Soft MoE paper's Tokens Choice baselines use them
 * (Appendix B); Soft MoE itself needs none (§2.2: no token dropping, no expert imbalance).
 *
 * Every loss is computed per group (vmoe applies them with `jax.vmap` over groups) and then
 * averaged over the groups. Inputs are [m, n] (one group) or [g, m, n]: m tokens, n experts.
 * All return tf.Scalar and are differentiable in the gates/logits (not in hard decisions).
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt, checkOptions, checkPositive, checkShape } from '../ops/check.js';
import { withoutGradient } from '../core/gradient.js';
import { normalCdf } from '../ops/nn.js';
import { oneHot } from '../ops/one-hot.js';

/** Accept [m, n] or [g, m, n] and return [g, m, n] (a reshape, no copy). */
function asGroups(t: tf.Tensor, name: string): tf.Tensor3D {
  if (!(t instanceof tf.Tensor) || (t.rank !== 2 && t.rank !== 3)) {
    throw new Error(
      `${name} must be [m, n] or [g, m, n], got ${t instanceof tf.Tensor ? `shape [${t.shape.join(', ')}]` : String(t)}`,
    );
  }
  return (t.rank === 2 ? t.reshape([1, ...t.shape]) : t) as tf.Tensor3D;
}

/** Squared coefficient of variation over the last axis, var/mean² (population variance). */
function cvSquared(v: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(v, -1);
  // As vmoe/nn/routing.py `_importance_auxiliary_loss` (commit 11e37d5e): "Compute CV squared
  // directly, avoiding the undefined std gradient at zero."
  return tf.div(variance, tf.square(mean));
}

/**
 * Importance loss (V-MoE A.2; vmoe `_importance_auxiliary_loss`):
 *   importance_e = Σ_tokens gates[:, e],   L = Var(importance) / Mean(importance)².
 * vmoe applies it to the clean (noise-free) softmax gates.
 */
export function importanceLoss(gates: tf.Tensor): tf.Scalar {
  const g3 = asGroups(gates, 'gates');
  return tf.tidy(() => tf.mean(cvSquared(tf.sum(g3, 1))));
}

/**
 * GShard loss (Lepikhin et al. Algorithm 1, lines 3, 11, 13; vmoe `_gshard_auxiliary_loss`):
 *   L = n² · mean_e( mean_tokens(gates[:, e]) · fraction of tokens whose top-1 expert is e ).
 * The n² factor: "Not mentioned in the paper, but it's done in their source code." (vmoe/nn/
 * routing.py `_gshard_auxiliary_loss`, commit 11e37d5e, linking lingvo's gshard_layers.py). Only mean_tokens(gates) carries gradient; the top-1 fractions are counts.
 * vmoe applies it to the gates used for routing (noisy when the router is noisy).
 */
export function gshardLoss(gates: tf.Tensor): tf.Scalar {
  const g3 = asGroups(gates, 'gates');
  const n = g3.shape[2];
  return tf.tidy(() => {
    const meanGates = tf.mean(g3, 1); // [g, n]
    const top1 = withoutGradient((v) => oneHot(tf.argMax(v, -1), n).cast('float32'), g3); // [g, m, n]
    const meanTop1 = tf.mean(top1, 1); // [g, n]
    return tf.mul(tf.mean(tf.mul(meanGates, meanTop1)), n * n);
  });
}

/** What {@link loadLoss} needs to know about the routing: the noise std and K. */
export interface LoadLossOptions {
  /** Standard deviation of the noise that was added to the logits (vmoe: noise_std / n). */
  noiseStd: number;
  /** Experts selected per token, K. */
  k: number;
}

/**
 * Load loss (V-MoE A.2; vmoe `_load_auxiliary_loss`), Shazeer et al.'s smooth load estimate with
 * a normal CDF:
 *   threshold_t = the K-th largest noisy logit of token t,
 *   p[t, e] = P(logits[t, e] + noise > threshold_t) = 1 − Φ((threshold_t − logits[t, e]) / σ),
 *   load_e = mean_t p[t, e],   L = Var(load) / Mean(load)².
 * `logits` are the clean router logits and `noisyLogits` = logits + the noise actually drawn.
 * As in vmoe the threshold is read from the noisy logits through a one-hot product (no gradient
 * through the choice of index, gradient through the value). Differs from Shazeer's estimator
 * (gating.ts `noisyTopKLoad`) in using the same threshold for every expert of a token (Shazeer
 * excludes the expert itself) and a fixed σ instead of a learned Softplus(x·W_noise).
 */
export function loadLoss(logits: tf.Tensor, noisyLogits: tf.Tensor, options: LoadLossOptions): tf.Scalar {
  const clean = asGroups(logits, 'logits');
  const noisy = asGroups(noisyLogits, 'noisyLogits');
  checkShape(noisy, clean.shape, 'noisyLogits', 'the shape of logits');
  if (options == null) throw new Error('loadLoss needs options {noiseStd, k}');
  checkOptions(options, { noiseStd: 'number', k: 'integer' }, 'loadLoss');
  checkPositive(options.noiseStd, 'noiseStd');
  const n = clean.shape[2];
  checkInt(options.k, 'k');
  if (options.k > n) throw new Error(`k must be ≤ the number of experts n = ${n}, got k = ${options.k}`);
  const k = options.k;
  return tf.tidy(() => {
    const kthIndex = withoutGradient(
      (v) =>
        oneHot(
          tf
            .topk(v, k)
            .indices.slice([0, 0, k - 1], [-1, -1, 1])
            .reshape(v.shape.slice(0, 2)),
          n,
        ).cast('float32'),
      noisy,
    );
    const threshold = tf.sum(tf.mul(kthIndex, noisy), -1, true); // [g, m, 1]
    const noiseRequiredToWin = tf.div(tf.sub(threshold, clean), options.noiseStd);
    const p = tf.sub(1, normalCdf(noiseRequiredToWin)); // [g, m, n]
    return tf.mean(cvSquared(tf.mean(p, 1)));
  });
}

/**
 * Weight of an auxiliary loss in the training loss, as V-MoE trains (vmoe `vmoe_paper` configs:
 * `importance_loss_weight = load_loss_weight = 0.005`). The default of the ViT config
 * (`moe.auxLossWeight`) and of the tf.layers TokensChoiceMoE.
 */
export const VMOE_AUX_LOSS_WEIGHT = 0.005;

/** Which auxiliary loss a Tokens Choice router adds (see tokens-choice.ts for the default). */
export type AuxLossKind = 'importance' | 'load' | 'importance+load' | 'gshard' | 'none';
