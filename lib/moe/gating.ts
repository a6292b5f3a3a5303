/**
 * Gating networks — Shazeer, Mirhoseini, Maziarz, Davis, Le, Hinton, Dean: "Outrageously Large
 * Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer", ICLR 2017, arXiv:1701.06538, §2.
 *
 *   y = Σᵢ G(x)ᵢ Eᵢ(x)                                         (eq. 1)
 *   softmax gating:   G_σ(x) = Softmax(x · W_g)                   (eq. 2)
 *   noisy top-k:      H(x)ᵢ = (x·W_g)ᵢ + N(0,1) · Softplus((x·W_noise)ᵢ)     (eq. 4)
 *                     KeepTopK(v, k)ᵢ = vᵢ if vᵢ is among the top k of v, else −∞  (eq. 5)
 *                     G(x) = Softmax(KeepTopK(H(x), k))            (eq. 3)
 *
 * The routers of the Soft MoE paper (§2.1, Appendix B) use G_σ for their gates (vmoe
 * `vmoe/nn/routing.py`: a bias-free dense layer and a softmax over experts); `routerGates` below is
 * that one shared copy. `denseMixture` is eq. 1 with every expert applied to every token, for the
 * preliminaries notebook (a sparse layer computes only the selected experts, see routers/).
 */
import * as tf from '@tensorflow/tfjs';
import { checkAllFinite, checkFloat, checkInt, checkOptions, checkRank, checkShape, tfjsSeed } from '../ops/check.js';
import { linear } from '../ops/matmul.js';
import { normalCdf } from '../ops/nn.js';
import { withoutGradient } from '../core/gradient.js';
import { applyExperts, checkExpertParams, type ExpertParams } from './experts.js';
import { oneHot } from '../ops/one-hot.js';

/** Check x [..., d] against a router weight wg [d, n]; return n. */
export function checkRouterWeight(x: tf.Tensor, wg: tf.Tensor, name = 'wg'): number {
  checkRank(wg, 2, `${name} [d, n]`);
  const d = x.shape[x.rank - 1];
  const [dw, n] = wg.shape;
  if (dw !== d)
    throw new Error(`${name} must be [${d}, n] to match the input width d = ${d}, got [${wg.shape.join(', ')}]`);
  if (n < 1) throw new Error(`${name} must have n ≥ 1 experts (columns), got [${wg.shape.join(', ')}]`);
  return n;
}

/**
 * Parameters of a sparse MoE layer: router weights W_g [d, n] and n stacked experts ({@link ExpertParams}).
 */
export interface RouterParams extends ExpertParams {
  /** Router weights W_g [d, n] (no bias, as vmoe's router). */
  wg: tf.Tensor2D;
}

/** Check x [g, m, d] and the router + expert parameters; return the sizes. */
export function checkRouterInputs(
  x: tf.Tensor,
  params: RouterParams,
  what: string,
): {
  /** Groups g. */
  g: number;
  /** Tokens per group m. */
  m: number;
  /** Token width d. */
  d: number;
  /** Experts n. */
  n: number;
} {
  checkRank(x, 3, 'x [g, m, d]');
  checkFloat(x, 'x');
  const [g, m, d] = x.shape as [number, number, number];
  if (g < 1 || m < 1 || d < 1) throw new Error(`x must have g, m, d ≥ 1, got [${x.shape.join(', ')}]`);
  if (params == null) throw new Error(`${what} params must be an object {wg, w1, b1, w2, b2}, got ${String(params)}`);
  const n = checkRouterWeight(x, params.wg);
  checkExpertParams(params, d, n);
  return { g, m, d, n };
}

/**
 * Router logits and gates of the sparse routers: logits = x·W_g (no bias, vmoe
 * `nn.Dense(use_bias=False)`), gates = softmax over the n experts (Shazeer eq. 2).
 * With `noiseStd` > 0, vmoe's noisy router (`NoisyTopExpertsPerItemRouter`, also
 * `NoisyTopItemsPerExpertRouter`): logits + N(0, (noiseStd/n)²) — vmoe scales the noise by 1/n —
 * and the gates are the softmax of the noisy logits.
 * x [..., d], wg [d, n] → logits, noisyLogits (= logits without noise), gates [..., n].
 */
export function routerGates(
  x: tf.Tensor,
  wg: tf.Tensor2D,
  noiseStd = 0,
  seed?: number,
): {
  /** x·W_g, [..., n]. */
  logits: tf.Tensor;
  /** The logits plus the noise (the logits when there is none), [..., n]. */
  noisyLogits: tf.Tensor;
  /** Softmax of the noisy logits over the n experts, [..., n]. */
  gates: tf.Tensor;
  /** Std of the noise added: noiseStd / n (0 without noise). */
  noiseScale: number;
} {
  const n = wg.shape[1];
  const logits = linear(x, wg);
  if (!(noiseStd > 0)) return { logits, noisyLogits: logits, gates: tf.softmax(logits), noiseScale: 0 };
  const noiseScale = noiseStd / n;
  const noisyLogits = tf.add(
    logits,
    tf.randomNormal(logits.shape, 0, noiseScale, 'float32', seed == null ? undefined : tfjsSeed(seed)),
  );
  return { logits, noisyLogits, gates: tf.softmax(noisyLogits), noiseScale };
}

/**
 * Softmax gating G_σ(x) = Softmax(x·W_g), Shazeer et al. eq. 2. x [..., d], wg [d, n] → [..., n].
 *
 * @throws Error if x is not a float tensor [..., d] or `wg` is not [d, n].
 */
export function softmaxGating(x: tf.Tensor, wg: tf.Tensor2D): tf.Tensor {
  if (!(x instanceof tf.Tensor) || x.rank < 1) throw new Error(`x must be a tensor [..., d], got ${String(x)}`);
  checkFloat(x, 'x');
  checkRouterWeight(x, wg);
  return tf.tidy(() => tf.softmax(linear(x, wg)));
}

/** Parameters of Shazeer et al.'s noisy top-k gating (2017, eqs. 3–5). */
export interface NoisyTopKParams {
  /** Gating weights W_g [d, n]. */
  wg: tf.Tensor2D;
  /** Noise weights W_noise [d, n]: the per-expert noise scale is Softplus(x·W_noise). */
  wNoise: tf.Tensor2D;
}

/** Options of {@link noisyTopKGating}. */
export interface NoisyTopKOptions {
  /** Experts kept per token, 1 ≤ k ≤ n. */
  k: number;
  /** Add the noise (training). Default true; false gives Softmax(KeepTopK(x·W_g, k)). */
  noisy?: boolean;
  /** Seed of the N(0, 1) draw. Default: tfjs' own random stream (not reproducible). */
  seed?: number;
  /** The standard-normal draws to use instead of sampling, [..., n] (tests, notebooks). */
  noise?: tf.Tensor;
  /** Reject NaN/±Inf in x (reads it back). Default false. */
  checkFinite?: boolean;
}

/** What {@link noisyTopKGating} returns: the gates and what produced them. */
export interface NoisyTopKResult {
  /** G(x) [..., n]: softmax over the k kept experts, exactly 0 elsewhere. */
  gates: tf.Tensor;
  /** x·W_g [..., n]. */
  cleanLogits: tf.Tensor;
  /** H(x) [..., n] (equal to cleanLogits when noisy is false). */
  noisyLogits: tf.Tensor;
  /** Softplus(x·W_noise) [..., n], the standard deviation of the noise. */
  noiseStddev: tf.Tensor;
  /** 1 where the expert is among the token's top k of H(x), else 0, [..., n] (no gradient). */
  topKMask: tf.Tensor;
}

/** 1 at the k largest entries of the last axis, 0 elsewhere (float32; no gradient). */
export function topKMask(values: tf.Tensor, k: number): tf.Tensor {
  const n = values.shape[values.rank - 1];
  return withoutGradient((v) => tf.sum(oneHot(tf.topk(v, k).indices, n), -2).cast('float32'), values);
}

/**
 * Noisy top-k gating, Shazeer et al. eqs. 3–5. Gradients reach W_g and W_noise through the kept
 * entries (the top-k selection itself has no gradient). Entries outside the top k are masked with
 * a large negative number rather than −∞, so the softmax gives them exactly 0 without Inf
 * arithmetic in the backward pass.
 *
 * @throws Error if x is not a float tensor [..., d], W_g or W_noise is not [d, n], k is not an
 * integer in [1, n], or with `checkFinite` the input holds NaN or ±Inf.
 */
export function noisyTopKGating(x: tf.Tensor, params: NoisyTopKParams, options: NoisyTopKOptions): NoisyTopKResult {
  if (!(x instanceof tf.Tensor) || x.rank < 1) throw new Error(`x must be a tensor [..., d], got ${String(x)}`);
  checkFloat(x, 'x');
  if (options == null) throw new Error('noisyTopKGating needs options {k}');
  checkOptions(
    options,
    { k: 'integer', noisy: 'boolean', seed: 'seed', noise: 'tensor', checkFinite: 'boolean' },
    'noisyTopKGating',
  );
  if (params == null) throw new Error('noisyTopKGating params must be an object {wg, wNoise}');
  const n = checkRouterWeight(x, params.wg, 'wg');
  checkShape(params.wNoise, params.wg.shape, 'wNoise', 'the same shape as wg');
  const k = options?.k;
  checkInt(k, 'k');
  if (k > n) throw new Error(`k must be ≤ the number of experts n = ${n}, got k = ${k}`);
  const noisy = options.noisy ?? true;
  const outShape = [...x.shape.slice(0, -1), n];
  if (options.noise != null) checkShape(options.noise, outShape, 'noise', 'one N(0,1) draw per token and expert');
  if (options.checkFinite) checkAllFinite(x, 'x');
  return tf.tidy(() => {
    const cleanLogits = linear(x, params.wg);
    const noiseStddev = tf.softplus(linear(x, params.wNoise));
    let noisyLogits = cleanLogits;
    if (noisy) {
      const eps =
        options.noise ??
        tf.randomNormal(outShape, 0, 1, 'float32', options.seed == null ? undefined : tfjsSeed(options.seed));
      noisyLogits = tf.add(cleanLogits, tf.mul(eps, noiseStddev));
    }
    const mask = topKMask(noisyLogits, k);
    // KeepTopK: kept entries unchanged (mask − 1 = 0), the others pushed to −1e9 (eq. 5).
    const kept = tf.add(noisyLogits, tf.mul(tf.sub(mask, 1), 1e9));
    const gates = tf.mul(tf.softmax(kept), mask);
    return { gates, cleanLogits, noisyLogits, noiseStddev, topKMask: mask } as unknown as tf.TensorContainer;
  }) as unknown as NoisyTopKResult;
}

/**
 * Shazeer et al.'s smooth load estimator (Appendix A, eqs. 8–10): the probability that expert i
 * is still among the top k when only its own noise is redrawn,
 *   P(x, i) = Φ( ((x·W_g)ᵢ − kth_excluding(H(x), k, i)) / Softplus((x·W_noise)ᵢ) ),
 * kth_excluding(v, k, i) = the k-th largest entry of v other than vᵢ; Load(X)ᵢ = Σₓ P(x, i).
 * Returns Load [n] summed over all leading axes. With k = n every expert is always kept (P = 1).
 * vmoe's load loss (losses.ts `loadLoss`) is the same idea with a shared threshold, see there.
 */
export function noisyTopKLoad(result: NoisyTopKResult, k: number): tf.Tensor1D {
  const n = result.noisyLogits.shape[result.noisyLogits.rank - 1];
  return tf.tidy(() => {
    const h = result.noisyLogits.reshape([-1, n]);
    if (k >= n) return tf.fill([n], h.shape[0]) as tf.Tensor1D;
    // The k-th and (k+1)-th largest of H per token, picked with no-gradient one-hot masks so that
    // the gradient flows through H at those entries (as tensor2tensor's top_k values do).
    const kth = (j: number) =>
      tf.sum(
        tf.mul(
          withoutGradient(
            (v) =>
              oneHot(
                tf
                  .topk(v, j)
                  .indices.slice([0, j - 1], [-1, 1])
                  .reshape([-1]),
                n,
              ).cast('float32'),
            h,
          ),
          h,
        ),
        -1,
        true,
      );
    const inTopK = result.topKMask.reshape([-1, n]);
    // Excluding expert i: if i is in the top k, the k-th largest of the others is the (k+1)-th.
    const threshold = tf.add(tf.mul(inTopK, kth(k + 1)), tf.mul(tf.sub(1, inTopK), kth(k)));
    const z = tf.div(tf.sub(result.cleanLogits.reshape([-1, n]), threshold), result.noiseStddev.reshape([-1, n]));
    return tf.sum(normalCdf(z), 0) as tf.Tensor1D;
  });
}

/**
 * Eq. 1 with every expert evaluated on every token (dense; for teaching and small sizes):
 * y = Σᵢ G(x)ᵢ Eᵢ(x). x [T, d], gates [T, n] → y [T, d].
 */
export function denseMixture(x: tf.Tensor2D, gates: tf.Tensor2D, experts: ExpertParams): tf.Tensor2D {
  checkRank(x, 2, 'x [T, d]');
  const [t, d] = x.shape;
  const { numExperts: n } = checkExpertParams(experts, d);
  checkShape(gates, [t, n], 'gates', 'tokens × experts');
  return tf.tidy(() => {
    const outputs = applyExperts(tf.tile(x.reshape([1, t, d]), [n, 1, 1]) as tf.Tensor3D, experts); // [n, T, d]
    const weights = tf.transpose(gates).reshape([n, t, 1]); // [n, T, 1]
    return tf.sum(tf.mul(weights, outputs), 0) as tf.Tensor2D;
  });
}
