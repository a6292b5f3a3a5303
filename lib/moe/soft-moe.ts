/**
 * Soft MoE — "From Sparse to Soft Mixtures of Experts", Puigcerver, Riquelme, Mustafa, Houlsby,
 * ICLR 2024, arXiv:2308.00951, §2 and Algorithm 1; reference semantics: google-research/vmoe
 * `vmoe/projects/soft_moe/router.py` (SoftRouter) and `vmoe/moe.py` (EinsumDispatcher).
 *
 * Notation (paper §2.1): one sequence = one group; g groups, m tokens of width d per group,
 * n experts with p slots each, slot parameters Φ ∈ R^{d×(n·p)} (vmoe calls them `mu`).
 *
 *   logits  = X Φ                                   [m, n·p]        (§2.1)
 *   D_ij    = exp(logits_ij) / Σ_i' exp(logits_i'j)  softmax over the m tokens   (eq. 1)
 *   X̃      = Dᵀ X                                   slot inputs     (eq. 1)
 *   Ỹ_s    = f_⌊s/p⌋(X̃_s)                          expert i on its p slots (eq. 2)
 *   C_ij    = exp(logits_ij) / Σ_j' exp(logits_ij')  softmax over the n·p slots  (eq. 3)
 *   Y       = C Ỹ                                    output          (eq. 3)
 *
 * Normalisation (§2.3): logits = l2norm(X) · (scale · l2norm(Φ, over d)), scale a learned
 * scalar initialised to 1, l2norm(v) = v·rsqrt(Σv² + 1e-6) as vmoe's `normalize`. Slot inputs
 * use the raw X (vmoe normalises only the copy used for the logits).
 *
 * Layouts for speed on wasm (see lib/ops/matmul.ts): the logits are one 2-D product
 * [g·m, d]·[d, n·p]; the dispatch softmax is taken in the transposed layout [g, n·p, m], which
 * is exactly the left operand of the slot-input product, so no transposed product is needed.
 */
import * as tf from '@tensorflow/tfjs';
import {
  checkAllFiniteParams,
  checkFloat,
  checkOneOf,
  checkOptions,
  checkRank,
  checkShape,
  type OptionKind,
} from '../ops/check.js';
import { matMul, transposeLast2 } from '../ops/matmul.js';
import { l2Normalize, softmax } from '../ops/nn.js';
import { roundHalfToEven } from '../ops/round.js';
import { dispatchAndCombine } from './dispatch.js';
import { applyExperts, checkExpertParams, type ExpertParams } from './experts.js';

/**
 * Parameters of a Soft MoE layer: the slot parameters Φ [d, n, p], the §2.3 `scale`, and n
 * stacked expert MLPs ({@link ExpertParams}: w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d]).
 */
export interface SoftMoEParams extends ExpertParams {
  /** Slot parameters Φ, [d, n, p] (vmoe: `mu`). */
  phi: tf.Tensor3D;
  /** Learnable scalar multiplying the normalised Φ (§2.3), shape []. */
  scale: tf.Scalar;
}

/** Ablations of the paper's Table 2: how tokens reach slots and slots reach outputs. */
export type WeightMode = 'softmax' | 'uniform';

/** Options of {@link softMoE}: the §2.3 normalisation, the Table 2 ablations, and what to return. */
export interface SoftMoEOptions {
  /** l2-normalise X and Φ and multiply by `scale` (§2.3). Default true, as in vmoe. */
  normalize?: boolean;
  /** 'softmax' (eq. 1, default) or 'uniform': every slot averages all tokens (Table 2). */
  dispatch?: WeightMode;
  /** 'softmax' (eq. 3, default) or 'uniform': every token averages all slots (Table 2). */
  combine?: WeightMode;
  /** 'mlp' (default) or 'identity': experts return their slot input unchanged (Table 2). */
  experts?: 'mlp' | 'identity';
  /** Also return logits, dispatch and combine [g, m, n, p], slot inputs/outputs [g, n, p, d]. */
  returnWeights?: boolean;
  /** Also return vmoe's router metrics (min/max of the weights, averaged). Default false. */
  metrics?: boolean;
  /**
   * Read the input and every parameter (phi, scale, w1, b1, w2, b2) back and reject NaN/±Inf
   * with an error naming the tensor. Default false (it syncs). Without it, note that one NaN or
   * ±Inf token turns its whole sequence to NaN: every slot is a softmax-weighted mix of all m
   * tokens of the sequence (eq. 1), and every output token mixes all slots (eq. 3).
   */
  checkFinite?: boolean;
  /**
   * Std of Gaussian noise added to the logits before both softmaxes (vmoe SoftRouter `noise_std`,
   * `logits + noise_std · N(0, 1)`, default 0.0; vmoe adds it only when not `deterministic`, i.e.
   * in training — the caller decides). Default 0 (none).
   */
  noiseStd?: number;
  /** Seed of the logit noise (required when noiseStd > 0, so a run is reproducible). */
  noiseSeed?: number;
}

/** The options softMoE accepts and their types (checked on every call). */
export const SOFT_MOE_OPTION_KINDS = {
  normalize: 'boolean',
  dispatch: ['softmax', 'uniform'],
  combine: ['softmax', 'uniform'],
  experts: ['mlp', 'identity'],
  returnWeights: 'boolean',
  metrics: 'boolean',
  checkFinite: 'boolean',
  noiseStd: 'number',
  noiseSeed: 'integer',
} as const satisfies Record<keyof SoftMoEOptions, OptionKind>;

/** vmoe's SoftRouter metrics (`get_metrics`), each a scalar. */
export interface SoftMoEMetrics {
  /** Mean over tokens of the smallest combine weight of the token. */
  combineWeightsMinMean: tf.Scalar;
  /** Mean over tokens of the largest combine weight of the token. */
  combineWeightsMaxMean: tf.Scalar;
  /** Mean over slots of the smallest dispatch weight of the slot. */
  dispatchWeightsMinMean: tf.Scalar;
  /** Mean over slots of the largest dispatch weight of the slot. */
  dispatchWeightsMaxMean: tf.Scalar;
}

/** What {@link softMoE} returns: the output, and with `returnWeights` / `metrics` what produced it. */
export interface SoftMoEResult {
  /** Output Y, [g, m, d]. */
  y: tf.Tensor3D;
  /** Router logits X·Φ (normalised per §2.3), [g, m, n, p]; with `returnWeights`. */
  logits?: tf.Tensor4D;
  /** Dispatch weights D (eq. 1, softmax over the m tokens), [g, m, n, p]; with `returnWeights`. */
  dispatch?: tf.Tensor4D;
  /** Combine weights C (eq. 3, softmax over the n·p slots), [g, m, n, p]; with `returnWeights`. */
  combine?: tf.Tensor4D;
  /** Slot inputs X̃ = DᵀX (eq. 1), [g, n, p, d]; with `returnWeights`. */
  slotInputs?: tf.Tensor4D;
  /** Slot outputs Ỹ (eq. 2), expert ⌊s/p⌋ applied to slot s, [g, n, p, d]; with `returnWeights`. */
  slotOutputs?: tf.Tensor4D;
  /** vmoe's router metrics; with `metrics: true`. */
  metrics?: SoftMoEMetrics;
}

/**
 * The weights a call returns with `returnWeights`, reshaped from the [g·…] layout of the
 * computation: logits, dispatch (from its transpose Dᵀ) and combine [g, m, n, p]; slot inputs
 * and outputs [g, n, p, d]. Shared with the causal variant (causal-soft-moe.ts).
 */
export function weightsResult(
  shape: { g: number; m: number; d: number; n: number; p: number },
  logits: tf.Tensor,
  dispatchT: tf.Tensor3D,
  combine: tf.Tensor,
  slotInputs: tf.Tensor,
  slotOutputs: tf.Tensor,
): Required<Pick<SoftMoEResult, 'logits' | 'dispatch' | 'combine' | 'slotInputs' | 'slotOutputs'>> {
  const { g, m, d, n, p } = shape;
  return {
    logits: logits.reshape([g, m, n, p]) as tf.Tensor4D,
    dispatch: transposeLast2(dispatchT).reshape([g, m, n, p]) as tf.Tensor4D,
    combine: combine.reshape([g, m, n, p]) as tf.Tensor4D,
    slotInputs: slotInputs.reshape([g, n, p, d]) as tf.Tensor4D,
    slotOutputs: slotOutputs.reshape([g, n, p, d]) as tf.Tensor4D,
  };
}

/**
 * Slots per expert from a capacity factor, as vmoe's SoftRouter when `num_slots` is None:
 * p = round(m · cf / n) with Python's round (half to even), `vmoe/moe.py` `compute_capacity`
 * with ceil_or_round='round', multiple_of=1. vmoe raises when this is below 1; so do we.
 *
 * @throws Error if a count is not a positive integer, the capacity factor is not > 0, or p < 1.
 */
export function slotsFromCapacityFactor(numTokens: number, numExperts: number, capacityFactor: number): number {
  if (!Number.isInteger(numTokens) || numTokens < 1)
    throw new Error(`numTokens must be an integer ≥ 1, got ${numTokens}`);
  if (!Number.isInteger(numExperts) || numExperts < 1)
    throw new Error(`numExperts must be an integer ≥ 1, got ${numExperts}`);
  if (!Number.isFinite(capacityFactor) || capacityFactor <= 0)
    throw new Error(`capacityFactor must be a finite number > 0, got ${capacityFactor}`);
  const p = roundHalfToEven((numTokens * capacityFactor) / numExperts);
  if (p < 1) {
    throw new Error(
      `slots per expert = round(${numTokens} tokens × capacity factor ${capacityFactor} / ${numExperts} experts) = ${p}; ` +
        'it must be ≥ 1: raise the capacity factor or use fewer experts',
    );
  }
  return p;
}

/**
 * Check x [g, m, d] and the Soft MoE parameters (Φ [d, n, p] matching d, a scalar `scale`);
 * return the sizes g, m, d, n, p. The experts are checked by {@link checkExpertParams}.
 *
 * @throws Error naming the bad shape or dtype and the expected one.
 */
export function checkSoftMoEInputs(
  x: tf.Tensor,
  params: SoftMoEParams,
): {
  /** Groups (sequences) g. */
  g: number;
  /** Tokens per group m. */
  m: number;
  /** Token width d. */
  d: number;
  /** Experts n. */
  n: number;
  /** Slots per expert p. */
  p: number;
} {
  checkRank(x, 3, 'x [g, m, d]');
  checkFloat(x, 'x');
  const [g, m, d] = x.shape as [number, number, number];
  if (g < 1 || m < 1 || d < 1) throw new Error(`x must have g, m, d ≥ 1, got [${x.shape.join(', ')}]`);
  if (params == null || typeof params !== 'object')
    throw new Error(`softMoE params must be an object {phi, scale, w1, b1, w2, b2}, got ${String(params)}`);
  checkRank(params.phi, 3, 'phi [d, n, p]');
  checkFloat(params.phi, 'phi');
  const [dPhi, n, p] = params.phi.shape;
  if (dPhi !== d)
    throw new Error(`phi must be [${d}, n, p] to match the input width d = ${d}, got [${params.phi.shape.join(', ')}]`);
  if (n < 1 || p < 1)
    throw new Error(`phi must have n ≥ 1 experts and p ≥ 1 slots per expert, got [${params.phi.shape.join(', ')}]`);
  checkShape(params.scale, [], 'scale', 'a scalar');
  checkFloat(params.scale, 'scale');
  return { g, m, d, n, p };
}

/**
 * Router logits X·Φ (§2.1) with the §2.3 normalisation, [g, m, n·p]:
 *   normalize: l2norm(X) · (scale · l2norm(Φ over d)); else X · Φ (scale unused, as in vmoe, which
 *   creates `scale` only with normalisation). One 2-D product [g·m, d]·[d, n·p].
 * Shared by softMoE and causalSoftMoE; call inside a tidy.
 */
export function softMoELogits(
  x: tf.Tensor3D,
  params: Pick<SoftMoEParams, 'phi' | 'scale'>,
  normalize = true,
): tf.Tensor3D {
  const [g, m, d] = x.shape;
  const s = params.phi.shape[1] * params.phi.shape[2];
  const xForLogits = normalize ? l2Normalize(x, -1) : x;
  const phi = normalize ? tf.mul(l2Normalize(params.phi, 0), params.scale) : params.phi;
  return matMul(xForLogits.reshape([g * m, d]) as tf.Tensor2D, phi.reshape([d, s]) as tf.Tensor2D).reshape([
    g,
    m,
    s,
  ]) as tf.Tensor3D;
}

/**
 * The Soft MoE layer as a pure function of its input and parameters (paper eqs. 1–3, §2.3).
 * x [g, m, d] → y [g, m, d]; every sequence (group) is routed independently. Each of the n·p
 * slots takes a convex combination of the m tokens (dispatch D, softmax over tokens, eq. 1), expert
 * ⌊s/p⌋ processes slot s (eq. 2), and each token's output is a convex combination of the slot
 * outputs (combine C, softmax over slots, eq. 3). No token is dropped; gradients reach x and every
 * parameter passed in. Call inside `tf.tidy` (the result's tensors are new).
 *
 * Non-finite input: one NaN or ±Inf token turns its whole sequence's output to NaN (every slot
 * mixes all tokens of the sequence, every output mixes all slots); other sequences are
 * unaffected. Pass `checkFinite: true` to get an error naming the tensor instead.
 *
 * @param x tokens [g, m, d], float32.
 * @param params Φ [d, n, p], `scale` [], experts w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d].
 * @param options normalisation, Table 2 ablations, and what to return besides `y`.
 * @returns `y` [g, m, d]; with `returnWeights` the logits, dispatch and combine weights [g, m, n, p]
 * and slot inputs / outputs [g, n, p, d]; with `metrics` vmoe's router metrics.
 * @throws Error if a shape does not match (naming it), an option is not an allowed value, or with
 * `checkFinite` the input holds NaN or ±Inf.
 *
 * @example
 * ```ts
 * const [g, m, d, n, p, h] = [2, 16, 8, 4, 2, 32];
 * const layer = new SoftMoELayer({ dim: d, numExperts: n, slotsPerExpert: p, hidden: h, seed: 1 });
 * const y = tf.tidy(() => softMoE(tf.randomNormal([g, m, d]), layer.params).y);   // [2, 16, 8]
 * y.dispose();
 * layer.dispose();
 * ```
 */
export function softMoE(x: tf.Tensor3D, params: SoftMoEParams, options: SoftMoEOptions = {}): SoftMoEResult {
  checkOptions(options, SOFT_MOE_OPTION_KINDS, 'softMoE');
  const { g, m, d, n, p } = checkSoftMoEInputs(x, params);
  const normalize = options.normalize ?? true;
  const dispatchMode = options.dispatch ?? 'softmax';
  const combineMode = options.combine ?? 'softmax';
  const expertsMode = options.experts ?? 'mlp';
  checkOneOf(dispatchMode, ['softmax', 'uniform'] as const, 'dispatch');
  checkOneOf(combineMode, ['softmax', 'uniform'] as const, 'combine');
  checkOneOf(expertsMode, ['mlp', 'identity'] as const, 'experts');
  if (expertsMode === 'mlp') checkExpertParams(params, d, n);
  if (options.checkFinite) {
    const { phi, scale, w1, b1, w2, b2 } = params;
    checkAllFiniteParams(expertsMode === 'mlp' ? { x, phi, scale, w1, b1, w2, b2 } : { x, phi, scale });
  }
  const noiseStd = options.noiseStd ?? 0;
  if (!Number.isFinite(noiseStd) || noiseStd < 0)
    throw new Error(`noiseStd must be a finite number ≥ 0, got ${String(noiseStd)}`);
  if (noiseStd > 0 && !Number.isInteger(options.noiseSeed))
    throw new Error(`noiseStd > 0 needs an integer noiseSeed, got ${String(options.noiseSeed)}`);
  const s = n * p;

  return tf.tidy(() => {
    const cleanLogits = softMoELogits(x, params, normalize);
    // vmoe SoftRouter.add_noise: logits + noise_std · N(0, 1), the same noisy logits for both softmaxes.
    const logits =
      noiseStd > 0
        ? (tf.add(
            cleanLogits,
            tf.randomNormal(cleanLogits.shape, 0, noiseStd, 'float32', options.noiseSeed),
          ) as tf.Tensor3D)
        : cleanLogits;

    // Dispatch weights, eq. (1): softmax over the m tokens of each slot, kept as Dᵀ [g, n·p, m].
    const dispatchT: tf.Tensor3D =
      dispatchMode === 'softmax' ? (softmax(transposeLast2(logits)) as tf.Tensor3D) : tf.fill([g, s, m], 1 / m);
    // Combine weights, eq. (3): softmax over all n·p slots of each token.
    const combine: tf.Tensor3D =
      combineMode === 'softmax' ? (softmax(logits) as tf.Tensor3D) : tf.fill([g, m, s], 1 / s);

    // Slot inputs X̃ = Dᵀ X (each slot a convex combination of the raw tokens, eq. 1), expert i
    // on its p slots (eq. 2), Y = C Ỹ (eq. 3): the data movement shared with the sparse routers.
    const experts = expertsMode === 'identity' ? null : (xs: tf.Tensor3D) => applyExperts(xs, params);
    const {
      y,
      bufferInputs: slotInputs,
      bufferOutputs: slotOutputs,
    } = dispatchAndCombine(x, dispatchT, combine, n, experts);

    const result: SoftMoEResult = { y };
    if (options.returnWeights)
      Object.assign(result, weightsResult({ g, m, d, n, p }, logits, dispatchT, combine, slotInputs, slotOutputs));
    if (options.metrics) {
      result.metrics = {
        combineWeightsMinMean: tf.mean(tf.min(combine, -1)),
        combineWeightsMaxMean: tf.mean(tf.max(combine, -1)),
        dispatchWeightsMinMean: tf.mean(tf.min(dispatchT, -1)),
        dispatchWeightsMaxMean: tf.mean(tf.max(dispatchT, -1)),
      };
    }
    return result as unknown as tf.TensorContainer;
  }) as unknown as SoftMoEResult;
}
