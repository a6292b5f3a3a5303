/**
 * A causally masked Soft MoE — for auto-regressive decoders, where the output at position t may
 * depend on tokens 0…t only.
 *
 * Why it is needed. "From Sparse to Soft Mixtures of Experts" (Puigcerver et al., ICLR 2024,
 * arXiv:2308.00951), §6 "Current limitations", *Auto-regressive decoding*: Soft MoE merges all
 * the tokens of a sequence into every slot, so a plain Soft MoE lets token t's output depend on
 * later tokens, which breaks causality in a decoder. The paper notes that attention-style causal
 * masks could be used, but warns that one must then avoid correlating token indices with slot
 * indices, since that biases which token positions each expert is trained on; it leaves the
 * question open. This file is one such masking, written so that the bias is explicit and
 * measurable (notebooks/09-limitations.ipynb); it is not from the paper.
 *
 * How the masking works. Each slot s (s = i·p + j: expert i, its j-th slot; S = n·p slots) gets
 * a *position* τ(s) ∈ {0, …, m−1}, the last token it may read. With logits L = X·Φ as in Soft MoE
 * (§2.1, §2.3 normalisation):
 *
 *   dispatch, eq. (1) masked:  D_is = exp(L_is) / Σ_{i' ≤ τ(s)} exp(L_i's)   for i ≤ τ(s), else 0
 *   combine,  eq. (3) masked:  C_ts = exp(L_ts) / Σ_{s': τ(s') ≤ t} exp(L_ts')  for τ(s) ≤ t, else 0
 *   X̃ = Dᵀ X,  Ỹ_s = f_⌊s/p⌋(X̃_s),  Y = C Ỹ                                  (eqs. 1–3)
 *
 * Token t reads only slots with τ(s) ≤ t, and such a slot mixes only tokens i ≤ τ(s) ≤ t, so
 * y_t is a function of x_0…x_t alone. The masks are applied by adding −1e9 to the masked logits
 * before each softmax: exp(−1e9 + …) is exactly 0 in float32, so masked weights, and the gradient
 * through them, are exact zeros (tests check both). In decoding, a slot's output is final as soon
 * as token τ(s) has arrived and can be cached.
 *
 * Default positions: τ(s) = ⌊s·m / S⌋, slots spread evenly over the sequence in slot order,
 * so τ(0) = 0 (every token has at least one slot to read; positions must include 0).
 *
 * The bias (the paper's warning, made concrete). With these masks the slot index *is* a token
 * position: slot s reads the τ(s) + 1 first tokens and serves only the m − τ(s) tokens at or
 * after τ(s). In slot order the experts hold contiguous ranges of positions, so expert 0 sees only
 * the beginning of a sequence but is read by every token (and gets gradient from all of them),
 * while the last expert sees the whole sequence but serves only its end. Experts are thus trained
 * on different token positions by construction, whatever the data — unlike the unmasked layer,
 * where every slot reads every token and is read by every token. Other position assignments
 * (`slotPositions`) move the bias around; none removes it. An unbiased but m-times more
 * expensive alternative is to run the unmasked Soft MoE on every prefix.
 */
import * as tf from '@tensorflow/tfjs';
import { checkAllFiniteParams, checkInt, checkOptions } from '../ops/check.js';
import { transposeLast2 } from '../ops/matmul.js';
import { dispatchAndCombine } from './dispatch.js';
import { applyExperts, checkExpertParams } from './experts.js';
import {
  checkSoftMoEInputs,
  softMoELogits,
  weightsResult,
  type SoftMoEParams,
  type SoftMoEResult,
} from './soft-moe.js';

/** Added to masked logits before a softmax: exp(−1e9 + logit) underflows to exactly 0 in float32. */
export const CAUSAL_MASK_LOGIT = -1e9;

/** Options of {@link causalSoftMoE}: the slot positions τ and the Soft MoE options it shares. */
export interface CausalSoftMoEOptions {
  /**
   * τ(s) for each of the n·p slots in slot order (s = expert·p + slot): the last token position
   * slot s may read; token t reads slots with τ(s) ≤ t. Integers in [0, m), at least one 0.
   * Default `evenSlotPositions(m, n·p)`.
   */
  slotPositions?: readonly number[];
  /** l2-normalise X and Φ and multiply by `scale` (§2.3), as `softMoE`. Default true. */
  normalize?: boolean;
  /** Also return logits (unmasked), dispatch and combine (masked) [g, m, n, p], slot inputs/outputs [g, n, p, d]. */
  returnWeights?: boolean;
  /** Read the input and every parameter back and reject NaN/±Inf naming the tensor. Default false (it syncs). */
  checkFinite?: boolean;
}

/** τ(s) = ⌊s·m / S⌋ for s = 0…S−1: slots spread evenly over the m positions, τ(0) = 0. */
export function evenSlotPositions(numTokens: number, numSlots: number): number[] {
  checkInt(numTokens, 'numTokens');
  checkInt(numSlots, 'numSlots');
  return Array.from({ length: numSlots }, (_, s) => Math.floor((s * numTokens) / numSlots));
}

/** Check slot positions against m tokens and S slots; returns them as a plain array. */
export function checkSlotPositions(positions: readonly number[], numTokens: number, numSlots: number): number[] {
  if (!Array.isArray(positions) || positions.length !== numSlots) {
    throw new Error(
      `slotPositions must be an array of n·p = ${numSlots} integers, got ${Array.isArray(positions) ? `${positions.length} values` : String(positions)}`,
    );
  }
  positions.forEach((t, s) => {
    if (!Number.isInteger(t) || t < 0 || t >= numTokens) {
      throw new Error(
        `slotPositions[${s}] must be an integer token position in [0, ${numTokens - 1}], got ${String(t)}`,
      );
    }
  });
  if (!positions.includes(0)) {
    throw new Error(
      `slotPositions must include 0 so that token 0 has a slot to read from, got smallest position ${Math.min(...positions)}`,
    );
  }
  return positions.slice();
}

/**
 * The two masks as 0/1 arrays: dispatchMask [S][m] (slot s may read token i: i ≤ τ(s)) and
 * combineMask [m][S] (token t may read slot s: τ(s) ≤ t).
 */
export function causalMasks(
  slotPositions: readonly number[],
  numTokens: number,
): {
  /** dispatchMask[s][i] = 1 when slot s may read token i (i ≤ τ(s)), [S][m]. */
  dispatchMask: number[][];
  /** combineMask[t][s] = 1 when token t may read slot s (τ(s) ≤ t), [m][S]. */
  combineMask: number[][];
} {
  const positions = checkSlotPositions(slotPositions, numTokens, slotPositions.length);
  const dispatchMask = positions.map((tau) => Array.from({ length: numTokens }, (_, i) => (i <= tau ? 1 : 0)));
  const combineMask = Array.from({ length: numTokens }, (_, t) => positions.map((tau) => (tau <= t ? 1 : 0)));
  return { dispatchMask, combineMask };
}

/** Additive mask: 0 where allowed, CAUSAL_MASK_LOGIT where not. */
function additiveMask(mask: number[][]): tf.Tensor2D {
  return tf.tensor2d(mask.map((row) => row.map((v) => (v ? 0 : CAUSAL_MASK_LOGIT))));
}

/**
 * Causally masked Soft MoE: x [g, m, d] → y [g, m, d], y[:, t] a function of x[:, 0…t] only.
 * Same parameters as `softMoE`; each sequence is one group. Gradients reach x and every parameter.
 *
 * @throws Error if a shape does not match (see {@link checkSoftMoEInputs}), `slotPositions` is not
 * n·p integers in [0, m) including 0, or with `checkFinite` the input holds NaN or ±Inf.
 */
export function causalSoftMoE(
  x: tf.Tensor3D,
  params: SoftMoEParams,
  options: CausalSoftMoEOptions = {},
): SoftMoEResult {
  checkOptions(
    options,
    { slotPositions: 'array', normalize: 'boolean', returnWeights: 'boolean', checkFinite: 'boolean' },
    'causalSoftMoE',
  );
  const { g, m, d, n, p } = checkSoftMoEInputs(x, params);
  checkExpertParams(params, d, n);
  const s = n * p;
  const positions = checkSlotPositions(options.slotPositions ?? evenSlotPositions(m, s), m, s);
  const normalize = options.normalize ?? true;
  if (options.checkFinite)
    checkAllFiniteParams({
      x,
      phi: params.phi,
      scale: params.scale,
      w1: params.w1,
      b1: params.b1,
      w2: params.w2,
      b2: params.b2,
    });
  const { dispatchMask, combineMask } = causalMasks(positions, m);

  return tf.tidy(() => {
    // Logits X·Φ with the §2.3 normalisation, exactly as softMoE: one 2-D product [g·m, d]·[d, n·p].
    const logits = softMoELogits(x, params, normalize);

    // Masked eq. (1): softmax over the tokens i ≤ τ(s) of each slot, in the layout Dᵀ [g, n·p, m].
    const dispatchT = tf.softmax(tf.add(transposeLast2(logits), additiveMask(dispatchMask))) as tf.Tensor3D;
    // Masked eq. (3): softmax over the slots with τ(s) ≤ t of each token, [g, m, n·p].
    const combine = tf.softmax(tf.add(logits, additiveMask(combineMask))) as tf.Tensor3D;

    // Slots, experts and combine as in the unmasked layer (eqs. 1–3), shared code in dispatch.ts.
    const {
      y,
      bufferInputs: slotInputs,
      bufferOutputs: slotOutputs,
    } = dispatchAndCombine(x, dispatchT, combine, n, (xs) => applyExperts(xs, params));

    const result: SoftMoEResult = { y };
    if (options.returnWeights)
      Object.assign(result, weightsResult({ g, m, d, n, p }, logits, dispatchT, combine, slotInputs, slotOutputs));
    return result as unknown as tf.TensorContainer;
  }) as unknown as SoftMoEResult;
}
