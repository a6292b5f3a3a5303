/**
 * Tokens Choice top-K routing — the sparse baseline of "From Sparse to Soft Mixtures of Experts"
 * (§2.1, Appendix B), as in V-MoE (Riquelme et al. 2021, arXiv:2106.05974) and
 * google-research/vmoe `vmoe/nn/routing.py` (`NoisyTopExpertsPerItemRouter`) and `vmoe/moe.py`
 * (`get_top_experts_per_item_dispatcher`, `_get_top_experts_per_item_common`).
 *
 * Per group (here: one sequence) of m tokens, n experts, K choices per token:
 *   gates     = softmax(x · W_g) over experts                       [g, m, n]
 *   choices   = the K experts of largest gate for each token         [g, m, K]
 *   C         = ceil(m·K·cf / n) (or round, half to even), ≥ 1, optionally up to a multiple
 *   position  = number of earlier choices for the same expert, counted in K-major order (every
 *               token's 1st choice before any token's 2nd choice), tokens in sequence order, or
 *               with Batch Prioritized Routing (BPR, V-MoE §4.1) in order of descending top-1
 *               gate (a stable order: ties keep sequence order)
 *   kept      = position < C (overflowing choices are dropped)
 *   y_i       = Σ_{kept choices (e, c) of token i} gates[i, e] · expert_e(x_i)
 * The combine weight is the raw gate, not renormalised over the kept choices (vmoe).
 *
 * Gradients flow through the gates (into W_g and x) and through the experts; the discrete
 * choices are computed without gradient (`withoutGradient`), as vmoe's top_k/one_hot are.
 * Data movement is shared with Soft MoE (dispatch.ts): a one-hot dispatch matrix and products.
 */
import * as tf from '@tensorflow/tfjs';
import { checkAllFiniteParams, checkInt, checkOneOf, checkOptions } from '../../ops/check.js';
import { computeCapacity, dispatchAndCombine, sparseDispatchCombine, type CeilOrRound } from '../dispatch.js';
import { withoutGradient } from '../../core/gradient.js';
import { applyExperts } from '../experts.js';
import { checkRouterInputs, routerGates, type RouterParams } from '../gating.js';
import { gshardLoss, importanceLoss, loadLoss, type AuxLossKind } from '../losses.js';
import { choiceDropFraction, dropFraction, expertLoad } from '../metrics.js';
import { oneHot } from '../../ops/one-hot.js';

/**
 * Tokens Choice's default capacity rounding: 'ceil', the default of vmoe's `compute_capacity`
 * (vmoe/moe.py, `ceil_or_round: CeilOrRound = "ceil"`).
 */
export const TOKENS_CHOICE_ROUNDING: CeilOrRound = 'ceil';

/** Options of {@link tokensChoice}: K, capacity, Batch Prioritized Routing, router noise, auxiliary loss. */
export interface TokensChoiceOptions {
  /** K, experts per token, 1 ≤ K ≤ n. */
  k: number;
  /** Capacity factor cf > 0: C = ceil(m·K·cf/n). Needed unless `capacity` is given. */
  capacityFactor?: number;
  /** 'ceil' (default, vmoe's default) or 'round' (half to even). */
  ceilOrRound?: CeilOrRound;
  /**
   * Round C up to a multiple of this. Default none (null), as the reference vectors; vmoe's
   * `get_top_experts_per_item_dispatcher` defaults to 4 (to avoid padding on TPUs).
   */
  multipleOf?: number | null;
  /** Batch Prioritized Routing (V-MoE §4.1). Default false. */
  batchPriority?: boolean;
  /**
   * Capacity C per expert and group; overrides capacityFactor when given. Either way C is capped
   * at m, the tokens of a group: a token's K choices are K distinct experts (top-K), so no
   * expert ever receives more than m choices per group and buffer positions ≥ m would stay
   * empty. (vmoe does not cap; outputs are identical, only the buffers are smaller — a capacity
   * of 1e7 would otherwise allocate [g, m, n, 1e7] and exhaust wasm's memory.)
   */
  capacity?: number;
  /**
   * Auxiliary loss returned as `auxLoss`. Default: 'importance' without noise,
   * 'importance+load' with noise — exactly what vmoe's NoisyTopExpertsPerItemRouter adds with its
   * default weights (importance 1, load 1, gshard 0): its load loss needs noisy gates, so a
   * deterministic router adds the importance loss alone.
   */
  auxLoss?: AuxLossKind;
  /**
   * Noise on the router logits, vmoe's `noise_std` (the logits get N(0, (noiseStd/n)²)); the
   * noisy gates are used for routing and combining, as in vmoe. Default 0 (deterministic, as
   * the reference vectors and vmoe at evaluation); V-MoE trains with 1.
   */
  noiseStd?: number;
  /** Seed of the noise draw. Default: tfjs' random stream. */
  seed?: number;
  /** Also return dispatch and combine weights [g, m, n, C]. Default false. */
  returnWeights?: boolean;
  /**
   * Read x, W_g and the expert weights back and reject NaN/±Inf naming the tensor. Default false
   * (it syncs). Without it, one NaN or ±Inf token turns its whole sequence to NaN: tokens move
   * to and from the expert buffers through products with 0/1 dispatch matrices, and 0·NaN = NaN
   * (test/moe/bad-input.test.ts checks this for every router).
   */
  checkFinite?: boolean;
}

/** The options tokensChoice accepts and their types (checked on every call). */
export const TOKENS_CHOICE_OPTION_KINDS = {
  k: 'number',
  capacityFactor: 'number',
  ceilOrRound: ['ceil', 'round'],
  multipleOf: 'integer-or-null',
  batchPriority: 'boolean',
  capacity: 'integer',
  auxLoss: ['importance', 'load', 'importance+load', 'gshard', 'none'],
  noiseStd: 'number',
  seed: 'seed',
  returnWeights: 'boolean',
  checkFinite: 'boolean',
} as const;

/** What {@link tokensChoice} returns: the output, the routing decisions and the auxiliary losses. */
export interface TokensChoiceResult {
  /** Output [g, m, d]. */
  y: tf.Tensor3D;
  /** Gates used for routing, softmax over experts (noisy if noiseStd > 0), [g, m, n]. */
  gates: tf.Tensor3D;
  /** The K chosen experts of each token, by descending gate, [g, m, K] int32. */
  expertIndex: tf.Tensor3D;
  /** Gate of each choice, 0 where the choice was dropped, [g, m, K]. */
  combineWeight: tf.Tensor3D;
  /** Position of each choice in its expert's buffer (≥ C when dropped), [g, m, K] int32. */
  bufferIndex: tf.Tensor3D;
  /** Whether each choice fit in its buffer, [g, m, K] bool. */
  kept: tf.Tensor3D;
  /** Whether at least one choice of the token was processed, [g, m] bool. */
  tokenKept: tf.Tensor2D;
  /** Kept choices per expert and group, [g, n] int32. */
  expertLoad: tf.Tensor2D;
  /** Fraction of the g·m tokens none of whose choices was processed. */
  dropFraction: tf.Scalar;
  /** Fraction of the g·m·K choices dropped. */
  choiceDropFraction: tf.Scalar;
  /** Capacity C per expert and group. */
  capacity: number;
  /** The auxiliary loss selected by `options.auxLoss` (0 for 'none'). */
  auxLoss: tf.Scalar;
  /** Each auxiliary loss (load only with noise), for logging. */
  auxLosses: {
    /** Importance loss (V-MoE Appendix A.2; vmoe `_importance_auxiliary_loss`). */
    importance: tf.Scalar;
    /** GShard loss (Lepikhin et al., Algorithm 1; vmoe `_gshard_auxiliary_loss`). */
    gshard: tf.Scalar;
    /** Load loss (V-MoE Appendix A.2; vmoe `_load_auxiliary_loss`); only with router noise. */
    load?: tf.Scalar;
  };
  /** With returnWeights: dispatch (0/1) and combine weights, [g, m, n, C]. */
  dispatch?: tf.Tensor4D;
  /** With returnWeights: combine weights (the gate of each kept choice), [g, m, n, C]. */
  combine?: tf.Tensor4D;
}

/**
 * out[b, i] = t[b, index[b, i]] for t [g, m, ...] and index [g, m] int32 (forward only).
 * Written as a gather on the flattened [g·m, ...] tensor: tf.gather with batchDims = 1 returns
 * wrong rows for b ≥ 1 on the wasm backend of tfjs 4.22 when t has axes after the gathered one
 * (measured: cpu and wasm disagree on a [2, 3, 2] example).
 */
function gatherTokens(t: tf.Tensor, index: tf.Tensor): tf.Tensor {
  const [g, m, ...rest] = t.shape;
  const offsets = tf.range(0, g * m, m, 'int32').reshape([g, 1]);
  return tf.gather(t.reshape([g * m, ...rest]), tf.add(index, offsets).reshape([g * m])).reshape(t.shape);
}

/**
 * The routing decisions (no gradient): for each token and choice, the expert index and the
 * position in that expert's buffer, packed as [g, m, K, 2] float32 (exact integers).
 */
function decideTokensChoice(gates: tf.Tensor3D, k: number, batchPriority: boolean): tf.Tensor4D {
  return withoutGradient((gv) => {
    const gatesValue = gv as tf.Tensor3D;
    const [g, m, n] = gatesValue.shape;
    const { values, indices } = tf.topk(gatesValue, k); // [g, m, K], by descending gate
    let choices: tf.Tensor = oneHot(indices, n); // [g, m, K, n]
    let order: tf.Tensor | null = null;
    if (batchPriority) {
      // BPR: tokens by descending top-1 gate. tf.topk keeps equal values in index order on the
      // cpu and wasm backends (checked in test/moe/tokens-choice.test.ts), so this order is
      // stable, like vmoe's jnp.argsort.
      order = tf.topk(values.slice([0, 0, 0], [g, m, 1]).reshape([g, m]), m).indices; // [g, m]
      choices = gatherTokens(choices, order);
    }
    // K-major: all 1st choices, then all 2nd choices, …: [g, K·m, n].
    const kMajor = tf
      .transpose(choices, [0, 2, 1, 3])
      .reshape([g, k * m, n])
      .cast('float32');
    // Exclusive cumulative count of earlier choices for the same expert (vmoe: cumsum · one_hot − 1).
    const earlier = tf.cumsum(kMajor, 1, true);
    let position = tf.transpose(tf.sum(tf.mul(earlier, kMajor), -1).reshape([g, k, m]), [0, 2, 1]); // [g, m, K]
    if (order != null) {
      // Back to sequence order: the inverse permutation, by sorting the order itself.
      const inverse = tf.topk(tf.neg(order.cast('float32')), m).indices;
      position = gatherTokens(position, inverse);
    }
    return tf.stack([indices.cast('float32'), position], -1);
  }, gates) as tf.Tensor4D;
}

/** One-hot dispatch mask [g, m, n, C] from the decisions (no gradient). */
function dispatchMaskFromDecisions(decisions: tf.Tensor4D, numExperts: number, capacity: number): tf.Tensor4D {
  const [g, m, k] = decisions.shape;
  return withoutGradient((dec) => {
    const [expert, position] = tf.unstack(dec, 3); // [g, m, K] each
    const kept = tf.less(position, capacity);
    // Slot e·C + position, or −1 (an all-zero one-hot row) for a dropped choice.
    const slot = tf.where(kept, tf.add(tf.mul(expert, capacity), position), tf.fill(expert.shape, -1)).cast('int32');
    const slotOneHot = oneHot(slot, numExperts * capacity); // [g, m, K, n·C]; a token picks K distinct experts
    const mask = k === 1 ? slotOneHot.reshape([g, m, numExperts * capacity]) : tf.sum(slotOneHot, 2);
    return mask.cast('float32').reshape([g, m, numExperts, capacity]);
  }, decisions) as tf.Tensor4D;
}

/**
 * Tokens Choice top-K MoE as a pure function: x [g, m, d] → y [g, m, d] plus routing results.
 * Each group is routed independently. Gradients reach x, W_g and the expert weights.
 *
 * @param x tokens [g, m, d].
 * @param params router W_g [d, n] and experts w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d].
 * @param options K, capacity (factor or fixed), Batch Prioritized Routing, noise, auxiliary loss.
 * @throws Error if a shape does not match, K is outside [1, n], neither `capacityFactor` nor
 * `capacity` is given, or an option is not an allowed value.
 *
 * @example
 * ```ts
 * const layer = new TokensChoiceLayer({ dim: 8, numExperts: 4, options: { k: 1, capacityFactor: 1 } });
 * const x = tf.randomNormal([2, 16, 8]) as tf.Tensor3D;                 // [g, m, d]
 * const dropped = tf.tidy(() => tokensChoice(x, layer.params, { k: 2, capacityFactor: 1.0 }).dropFraction);
 * console.log(dropped.dataSync()[0]);   // fraction of tokens that no expert processed
 * tf.dispose([x, dropped]);
 * layer.dispose();
 * ```
 */
export function tokensChoice(x: tf.Tensor3D, params: RouterParams, options: TokensChoiceOptions): TokensChoiceResult {
  if (options == null) throw new Error('tokensChoice needs options {k, capacityFactor | capacity}');
  checkOptions(options, TOKENS_CHOICE_OPTION_KINDS, 'tokensChoice');
  const { g, m, n } = checkRouterInputs(x, params, 'tokensChoice');
  const k = options.k;
  checkInt(k, 'k');
  if (k > n) throw new Error(`k must be ≤ the number of experts n = ${n}, got k = ${k}`);
  const ceilOrRound = options.ceilOrRound ?? TOKENS_CHOICE_ROUNDING;
  checkOneOf(ceilOrRound, ['ceil', 'round'] as const, 'ceilOrRound');
  let capacity: number;
  if (options.capacity != null) {
    checkInt(options.capacity, 'capacity');
    capacity = options.capacity;
  } else {
    if (options.capacityFactor == null)
      throw new Error('tokensChoice needs options.capacityFactor (or options.capacity), got neither');
    capacity = computeCapacity(m * k, n, options.capacityFactor, { ceilOrRound, multipleOf: options.multipleOf });
  }
  // The natural cap (see TokensChoiceOptions.capacity): at most m choices ever reach one expert.
  capacity = Math.min(capacity, m);
  const batchPriority = options.batchPriority ?? false;
  if (typeof batchPriority !== 'boolean')
    throw new Error(`batchPriority must be true or false, got ${String(batchPriority)}`);
  const noiseStd = options.noiseStd ?? 0;
  if (typeof noiseStd !== 'number' || !Number.isFinite(noiseStd) || noiseStd < 0)
    throw new Error(`noiseStd must be a finite number ≥ 0, got ${String(noiseStd)}`);
  const auxKind: AuxLossKind = options.auxLoss ?? (noiseStd > 0 ? 'importance+load' : 'importance');
  checkOneOf(auxKind, ['importance', 'load', 'importance+load', 'gshard', 'none'] as const, 'auxLoss');
  if ((auxKind === 'load' || auxKind === 'importance+load') && !(noiseStd > 0)) {
    throw new Error(`auxLoss ${JSON.stringify(auxKind)} needs noisy gates (noiseStd > 0), got noiseStd = ${noiseStd}`);
  }
  if (options.checkFinite) {
    checkAllFiniteParams({ x, wg: params.wg, w1: params.w1, b1: params.b1, w2: params.w2, b2: params.b2 });
  }

  return tf.tidy(() => {
    const { logits, noisyLogits, gates: routingGates, noiseScale } = routerGates(x, params.wg, noiseStd, options.seed);
    const gates = routingGates as tf.Tensor3D;

    // Decide (no gradient): expert and buffer position of every choice; then the one-hot mask.
    const decisions = decideTokensChoice(gates, k, batchPriority);
    const mask = dispatchMaskFromDecisions(decisions, n, capacity); // [g, m, n, C]

    // Move (shared with Soft MoE): one-hot dispatch, experts, combine with the raw gates.
    const { dispatchT, combine } = sparseDispatchCombine(mask, gates);
    const { y } = dispatchAndCombine(x, dispatchT, combine, n, (xs) => applyExperts(xs, params), {
      constantDispatch: true,
    });

    // Routing results in the reference layouts.
    const [expertF, positionF] = tf.unstack(decisions, 3);
    const expertIndex = expertF.cast('int32') as tf.Tensor3D;
    const bufferIndex = positionF.cast('int32') as tf.Tensor3D;
    const kept = tf.less(positionF, capacity) as tf.Tensor3D;
    const choiceGates = tf.sum(tf.mul(oneHot(expertIndex, n).cast('float32'), gates.reshape([g, m, 1, n])), -1); // [g, m, K]
    const combineWeight = tf.mul(choiceGates, kept.cast('float32')) as tf.Tensor3D;
    const tokenKept = tf.any(kept, -1) as tf.Tensor2D;

    const importance = importanceLoss(noiseScale > 0 ? tf.softmax(logits) : gates); // vmoe: clean gates
    const gshard = gshardLoss(gates);
    const load = noiseScale > 0 ? loadLoss(logits, noisyLogits, { noiseStd: noiseScale, k }) : undefined;
    const auxLoss: tf.Scalar =
      auxKind === 'importance'
        ? importance
        : auxKind === 'gshard'
          ? gshard
          : auxKind === 'load'
            ? load!
            : auxKind === 'importance+load'
              ? tf.add(importance, load!)
              : tf.scalar(0);

    const result: TokensChoiceResult = {
      y,
      gates,
      expertIndex,
      combineWeight,
      bufferIndex,
      kept,
      tokenKept,
      expertLoad: expertLoad(mask),
      dropFraction: dropFraction(tokenKept),
      choiceDropFraction: choiceDropFraction(kept),
      capacity,
      auxLoss,
      auxLosses: load ? { importance, gshard, load } : { importance, gshard },
    };
    if (options.returnWeights) {
      result.dispatch = mask;
      result.combine = combine.reshape([g, m, n, capacity]) as tf.Tensor4D;
    }
    return result as unknown as tf.TensorContainer;
  }) as unknown as TokensChoiceResult;
}
