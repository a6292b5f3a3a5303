/**
 * Experts Choice routing — Zhou et al., "Mixture-of-Experts with Expert Choice Routing"
 * (arXiv:2202.09368), a sparse baseline of "From Sparse to Soft Mixtures of Experts" (§2.1,
 * Appendix B); google-research/vmoe `vmoe/nn/routing.py` (`NoisyTopItemsPerExpertRouter`) and
 * `vmoe/moe.py` (`_get_top_items_per_expert_einsum_dispatcher`).
 *
 * Per group of m tokens and n experts:
 *   gates = softmax(x · W_g) over experts                          [g, m, n]
 *   C     = round(m·cf / n) (halves to even), at least 1, at most m
 *   each expert e takes the C tokens with the largest gates[:, e]   (top-C over tokens)
 *   y_i   = Σ_{experts e that took token i} gates[i, e] · expert_e(x_i)
 * Every expert is exactly full (perfect balance); a token may be taken by 0 … n experts, and a
 * token taken by none is dropped (its output is 0; the residual connection carries it).
 *
 * The default rounding is 'round', as the reference vectors and the paper's baselines; vmoe's
 * `get_top_items_per_expert_dispatcher` defaults to 'ceil' and multiple_of 4. No router noise
 * here (vmoe's router can add it; the paper's comparisons are deterministic at evaluation).
 */
import * as tf from '@tensorflow/tfjs';
import { checkAllFiniteParams, checkInt, checkOneOf, checkOptions } from '../../ops/check.js';
import { computeCapacity, dispatchAndCombine, sparseDispatchCombine, type CeilOrRound } from '../dispatch.js';
import { withoutGradient } from '../../core/gradient.js';
import { applyExperts } from '../experts.js';
import { checkRouterInputs, routerGates, type RouterParams } from '../gating.js';
import { dropFraction, expertLoad, expertsChoiceMetrics, expertsPerToken } from '../metrics.js';
import { oneHot } from '../../ops/one-hot.js';

/** Options of {@link expertsChoice} (Zhou et al. 2022; vmoe `NoisyTopItemsPerExpertRouter` without noise). */
export interface ExpertsChoiceOptions {
  /** Capacity factor cf > 0: C = round(m·cf/n). Needed unless `capacity` is given. */
  capacityFactor?: number;
  /** 'round' (default, half to even) or 'ceil'. */
  ceilOrRound?: CeilOrRound;
  /** Round C up to a multiple of this (then capped at m). Default none. */
  multipleOf?: number | null;
  /** Capacity C per expert and group (1 ≤ C ≤ m); overrides capacityFactor when given. */
  capacity?: number;
  /** Also return dispatch and combine weights [g, m, n, C]. Default false. */
  returnWeights?: boolean;
  /** Also return vmoe's Experts Choice metrics (metrics.ts `expertsChoiceMetrics`). */
  metrics?: boolean;
  /**
   * Read x, W_g and the expert weights back and reject NaN/±Inf naming the tensor. Default false
   * (it syncs). Without it, one NaN or ±Inf token turns its whole sequence to NaN: tokens move
   * to and from the expert buffers through products with 0/1 dispatch matrices, and 0·NaN = NaN
   * (test/moe/bad-input.test.ts checks this for every router).
   */
  checkFinite?: boolean;
}

/** The options expertsChoice accepts and their types (checked on every call). */
export const EXPERTS_CHOICE_OPTION_KINDS = {
  capacityFactor: 'number',
  ceilOrRound: ['ceil', 'round'],
  multipleOf: 'integer-or-null',
  capacity: 'integer',
  returnWeights: 'boolean',
  metrics: 'boolean',
  checkFinite: 'boolean',
} as const;

/** What {@link expertsChoice} returns: the output and the routing decisions. */
export interface ExpertsChoiceResult {
  /** Output [g, m, d]. */
  y: tf.Tensor3D;
  /** Router gates, softmax over experts, [g, m, n]. */
  gates: tf.Tensor3D;
  /** Each expert's C chosen tokens, sorted ascending, [g, n, C] int32. */
  selectedIndexSorted: tf.Tensor3D;
  /** Whether expert e took token i, [g, m, n] bool. */
  tokenExpertMask: tf.Tensor3D;
  /** How many experts took each token, [g, m] int32. */
  numExpertsPerToken: tf.Tensor2D;
  /** Whether any expert took the token, [g, m] bool. */
  tokenKept: tf.Tensor2D;
  /** Fraction of the g·m tokens that no expert took. */
  dropFraction: tf.Scalar;
  /** Capacity C per expert and group. */
  capacity: number;
  /** Tokens per expert and group, [g, n] int32 (always C: the router's balance by design). */
  expertLoad: tf.Tensor2D;
  /** With returnWeights: dispatch (0/1) and combine weights, [g, m, n, C]. */
  dispatch?: tf.Tensor4D;
  /** With returnWeights: combine weights (the gate where expert e took token i, else 0), [g, m, n, C]. */
  combine?: tf.Tensor4D;
  /** With metrics: vmoe's logged statistics. */
  metrics?: Record<string, tf.Scalar>;
}

/**
 * Experts Choice's default capacity rounding: 'round' (half to even), as vmoe's
 * `get_vmoe_experts_choose_config` sets it ("'capacity_ceil_or_round': 'round'": "this is what
 * it's used in the soft router, so we change the defaults for a fair comparison").
 */
export const EXPERTS_CHOICE_ROUNDING: CeilOrRound = 'round';

/** Experts Choice capacity: round(m·cf/n) (or ceil), ≥ 1, up to a multiple, then at most m. */
export function expertsChoiceCapacity(
  numTokens: number,
  numExperts: number,
  capacityFactor: number,
  ceilOrRound: CeilOrRound = EXPERTS_CHOICE_ROUNDING,
  multipleOf?: number | null,
): number {
  return Math.min(numTokens, computeCapacity(numTokens, numExperts, capacityFactor, { ceilOrRound, multipleOf }));
}

/**
 * Experts Choice MoE as a pure function: x [g, m, d] → y [g, m, d] plus routing results.
 * Each group is routed independently. Gradients reach x, W_g and the expert weights.
 *
 * @param x tokens [g, m, d].
 * @param params router W_g [d, n] and experts w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d].
 * @param options capacity (factor or fixed), rounding, what to return.
 * @throws Error if a shape does not match, neither `capacityFactor` nor `capacity` is given, or
 * an option is not an allowed value.
 *
 * @example
 * ```ts
 * const layer = new ExpertsChoiceLayer({ dim: 8, numExperts: 4, options: { capacityFactor: 1 } });
 * const x = tf.randomNormal([2, 16, 8]) as tf.Tensor3D;                 // [g, m, d]
 * const load = tf.tidy(() => expertsChoice(x, layer.params, { capacityFactor: 1.0 }).expertLoad);
 * console.log(load.arraySync());        // every expert takes C = round(16·1/4) = 4 tokens per group
 * tf.dispose([x, load]);
 * layer.dispose();
 * ```
 */
export function expertsChoice(
  x: tf.Tensor3D,
  params: RouterParams,
  options: ExpertsChoiceOptions,
): ExpertsChoiceResult {
  if (options == null) throw new Error('expertsChoice needs options {capacityFactor | capacity}');
  checkOptions(options, EXPERTS_CHOICE_OPTION_KINDS, 'expertsChoice');
  const { g, m, n } = checkRouterInputs(x, params, 'expertsChoice');
  const ceilOrRound = options.ceilOrRound ?? EXPERTS_CHOICE_ROUNDING;
  checkOneOf(ceilOrRound, ['ceil', 'round'] as const, 'ceilOrRound');
  let capacity: number;
  if (options.capacity != null) {
    checkInt(options.capacity, 'capacity');
    if (options.capacity > m)
      throw new Error(
        `capacity must be ≤ the m = ${m} tokens of a group (an expert takes each token at most once), got ${options.capacity}`,
      );
    capacity = options.capacity;
  } else {
    if (options.capacityFactor == null)
      throw new Error('expertsChoice needs options.capacityFactor (or options.capacity), got neither');
    capacity = expertsChoiceCapacity(m, n, options.capacityFactor, ceilOrRound, options.multipleOf);
  }
  if (options.checkFinite) {
    checkAllFiniteParams({ x, wg: params.wg, w1: params.w1, b1: params.b1, w2: params.w2, b2: params.b2 });
  }

  return tf.tidy(() => {
    const gates = routerGates(x, params.wg).gates as tf.Tensor3D;

    // Decide (no gradient): each expert's top-C tokens, [g, n, C] (as float32 integers).
    const selected = withoutGradient(
      (gv) => tf.topk(tf.transpose(gv, [0, 2, 1]), capacity).indices.cast('float32'),
      gates,
    ) as tf.Tensor3D;
    // One-hot dispatch mask in the token-major layout [g, m, n, C].
    const mask = withoutGradient(
      (sel) => tf.transpose(oneHot(sel.cast('int32'), m), [0, 3, 1, 2]).cast('float32'),
      selected,
    ) as tf.Tensor4D;

    // Move (shared with Soft MoE and Tokens Choice).
    const { dispatchT, combine } = sparseDispatchCombine(mask, gates);
    const { y } = dispatchAndCombine(x, dispatchT, combine, n, (xs) => applyExperts(xs, params), {
      constantDispatch: true,
    });

    // Routing results in the reference layouts.
    const selectedIndexSorted = tf.neg(tf.topk(tf.neg(selected), capacity).values).cast('int32') as tf.Tensor3D;
    const numExpertsPerToken = expertsPerToken(mask);
    const tokenExpertMask = tf.greater(tf.sum(mask, -1), 0) as tf.Tensor3D;
    const tokenKept = tf.greater(numExpertsPerToken, 0) as tf.Tensor2D;
    const result: ExpertsChoiceResult = {
      y,
      gates,
      selectedIndexSorted,
      tokenExpertMask,
      numExpertsPerToken,
      tokenKept,
      dropFraction: dropFraction(tokenKept),
      capacity,
      expertLoad: expertLoad(mask),
    };
    if (options.returnWeights) {
      result.dispatch = mask;
      result.combine = combine.reshape([g, m, n, capacity]) as tf.Tensor4D;
    }
    if (options.metrics) {
      // Gates of the selected (token, expert) pairs: the top-C values per expert.
      const selectedGates = tf.topk(tf.transpose(gates, [0, 2, 1]), capacity).values as tf.Tensor3D;
      result.metrics = expertsChoiceMetrics(numExpertsPerToken, selectedGates, n);
    }
    return result as unknown as tf.TensorContainer;
  }) as unknown as ExpertsChoiceResult;
}
