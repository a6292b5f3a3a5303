/**
 * Moving tokens to expert buffers and back — shared by Soft MoE and the sparse routers.
 *
 * "Routers decide, dispatchers move" (google-research/vmoe `vmoe/moe.py`, `EinsumDispatcher`):
 * a router returns dense weights, a dispatcher applies them. vmoe's einsums
 *
 *   buffers = einsum('GSEC,GSd->GECd', dispatch, x)      (dispatch)
 *   y       = einsum('GSEC,GECd->GSd', combine, outputs) (combine)
 *
 * are written here as batched products over the g groups, with the n·C buffer slots of all
 * experts flattened into one axis (C = capacity per expert and group; for Soft MoE, C = p slots):
 *
 *   dispatchT [g, n·C, m]   row (e, c) = weights of the m tokens sent to slot c of expert e
 *   combine   [g, m, n·C]   row i     = weights of the n·C slot outputs summed into token i
 *   buffers   = dispatchT · x                          [g, n·C, d]
 *   expert e on its C slots of every group             [n, g·C, d] (one batched product)
 *   y         = combine · expertOutputs                [g, m, d]
 *
 * Sparse routers (Tokens Choice, Experts Choice) pass one-hot dispatch rows and combine = gate on
 * the same positions; Soft MoE passes its two softmaxes (paper eqs. 1 and 3). One-hot products
 * stand in for vmoe's scatter/gather (`ExpertIndicesDispatcher`): on the wasm backend `gather`'s
 * gradient needs a kernel that tfjs-backend-wasm 4.22 lacks, while a product with a
 * one-hot matrix differentiates like any product.
 *
 * Capacity (`computeCapacity`) also lives here, as in vmoe's moe.py, since every router uses it.
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt, checkOneOf, checkOptions, checkPositive } from '../ops/check.js';
import { customOp } from '../ops/custom-grad.js';
import { batchMatMul, transposeLast2 } from '../ops/matmul.js';
import { roundHalfToEven } from '../ops/round.js';
import { transpose } from '../ops/transpose.js';

/** The experts as a function: xs [n, s, d] → [n, s, d], expert i applied to xs[i]. */
export type ExpertFn = (xs: tf.Tensor3D) => tf.Tensor3D;

/** How a capacity is rounded (vmoe `compute_capacity`'s `ceil_or_round`). */
export type CeilOrRound = 'ceil' | 'round';

/** How {@link computeCapacity} rounds a capacity (vmoe `compute_capacity`). */
export interface CapacityOptions {
  /** 'ceil' or 'round' (Python's round, halves to even: 2.5 → 2). */
  ceilOrRound: CeilOrRound;
  /** Round the capacity up to a multiple of this (vmoe's `multiple_of`); null/undefined: none. */
  multipleOf?: number | null;
}

/**
 * Capacity per expert and group, vmoe `vmoe/moe.py` `compute_capacity`:
 *   C = ceil(numTokens · cf / n)  or  round(numTokens · cf / n) (half to even),
 * then rounded up to a multiple of `multipleOf` if given. `numTokens` is m·K for Tokens Choice
 * (m tokens, K choices each) and m for Experts Choice.
 *
 * Departure from vmoe: a capacity below 1 (possible with 'round') is raised to 1, as the
 * reference vectors and the issue specify ("at least 1"), where vmoe raises an error. Soft MoE
 * keeps vmoe's error (`slotsFromCapacityFactor`), since zero slots there is a configuration bug.
 *
 * @throws Error if the counts are not positive integers, the capacity factor is not > 0, or the
 * rounding is not 'ceil' or 'round'.
 */
export function computeCapacity(
  numTokens: number,
  numExperts: number,
  capacityFactor: number,
  options: CapacityOptions,
): number {
  checkInt(numTokens, 'number of tokens to place (m·K)');
  checkInt(numExperts, 'number of experts n');
  checkPositive(capacityFactor, 'capacityFactor');
  if (options == null) throw new Error('computeCapacity needs options {ceilOrRound}');
  checkOptions(options, { ceilOrRound: ['ceil', 'round'], multipleOf: 'integer-or-null' }, 'computeCapacity');
  checkOneOf(options.ceilOrRound, ['ceil', 'round'] as const, 'ceilOrRound');
  const exact = (numTokens * capacityFactor) / numExperts;
  let capacity = options.ceilOrRound === 'ceil' ? Math.ceil(exact) : roundHalfToEven(exact);
  capacity = Math.max(1, capacity);
  const multipleOf = options.multipleOf;
  if (multipleOf != null) {
    checkInt(multipleOf, 'multipleOf');
    capacity += (multipleOf - (capacity % multipleOf)) % multipleOf;
  }
  return capacity;
}

// ---------------------------------------------------------------------------------------------
// Dispatch and combine.
// ---------------------------------------------------------------------------------------------

/**
 * dispatchT · x for a dispatch matrix that carries no gradient (one-hot rows of a sparse
 * router): the backward pass computes only dx = dispatchTᵀ · dy, skipping the product for the
 * dispatch matrix that `batchMatMul` would compute and then throw away.
 */
const constantLeftBatchMatMul = customOp(2, ([a, b], save) => {
  save([a]);
  const aShape = a.shape;
  return {
    value: batchMatMul(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, saved) => [
      tf.zeros(aShape),
      batchMatMul(transposeLast2(saved[0] as tf.Tensor3D), dy as tf.Tensor3D),
    ],
  };
});

/** Buffers of all groups regrouped by expert: [g, n·C, d] → [n, g·C, d] (vmoe `_dispatch`). */
export function groupsToExperts(buffers: tf.Tensor3D, numExperts: number): tf.Tensor3D {
  const [g, s, d] = buffers.shape;
  const c = s / numExperts;
  if (g === 1) return buffers.reshape([numExperts, c, d]);
  return transpose(buffers.reshape([g, numExperts, c, d]), [1, 0, 2, 3]).reshape([numExperts, g * c, d]) as tf.Tensor3D;
}

/** The inverse of `groupsToExperts`: [n, g·C, d] → [g, n·C, d] (vmoe `_receive`). */
export function expertsToGroups(outputs: tf.Tensor3D, numGroups: number): tf.Tensor3D {
  const [n, gc, d] = outputs.shape;
  const c = gc / numGroups;
  if (numGroups === 1) return outputs.reshape([1, n * c, d]);
  return transpose(outputs.reshape([n, numGroups, c, d]), [1, 0, 2, 3]).reshape([numGroups, n * c, d]) as tf.Tensor3D;
}

/** Options of {@link dispatchAndCombine}. */
export interface DispatchOptions {
  /**
   * True when `dispatchT` is a decision without gradient (one-hot rows of a sparse router):
   * the backward pass then skips its gradient. Default false (Soft MoE's dispatch is learned).
   */
  constantDispatch?: boolean;
}

/** What {@link dispatchAndCombine} returns: the output and the expert buffers. */
export interface DispatchResult {
  /** Output Y = combine · expert outputs, [g, m, d]. */
  y: tf.Tensor3D;
  /** Expert inputs by group, [g, n·C, d] (Soft MoE: slot inputs X̃). */
  bufferInputs: tf.Tensor3D;
  /** Expert outputs by group, [g, n·C, d] (Soft MoE: slot outputs Ỹ). */
  bufferOutputs: tf.Tensor3D;
}

/**
 * Send tokens to expert buffers, apply the experts, combine the outputs back into tokens.
 *
 *   x [g, m, d], dispatchT [g, n·C, m], combine [g, m, n·C]  →  y [g, m, d]
 *
 * `experts` null means identity experts (Soft MoE's Table 2 ablation). No tidy here: callers
 * run it inside their own.
 *
 * @throws Error if `dispatchT` is not [g, n·C, m] or `combine` not [g, m, n·C].
 */
export function dispatchAndCombine(
  x: tf.Tensor3D,
  dispatchT: tf.Tensor3D,
  combine: tf.Tensor3D,
  numExperts: number,
  experts: ExpertFn | null,
  options: DispatchOptions = {},
): DispatchResult {
  const [g, m] = x.shape;
  const slots = dispatchT.shape[1];
  if (dispatchT.shape[0] !== g || dispatchT.shape[2] !== m || slots % numExperts !== 0) {
    throw new Error(`dispatchT must be [${g}, n·C, ${m}] with n = ${numExperts}, got [${dispatchT.shape.join(', ')}]`);
  }
  if (combine.shape[0] !== g || combine.shape[1] !== m || combine.shape[2] !== slots) {
    throw new Error(`combine must be [${g}, ${m}, ${slots}], got [${combine.shape.join(', ')}]`);
  }
  // Dispatch: each buffer slot receives its weighted tokens, [g, n·C, d].
  const bufferInputs = options.constantDispatch
    ? (constantLeftBatchMatMul(dispatchT, x) as tf.Tensor3D)
    : batchMatMul(dispatchT, x);
  // Expert e on its C slots of every group: one batched product over the expert axis.
  const bufferOutputs =
    experts == null ? bufferInputs : expertsToGroups(experts(groupsToExperts(bufferInputs, numExperts)), g);
  // Combine: each token sums the slot outputs with its combine weights, [g, m, d].
  const y = batchMatMul(combine, bufferOutputs);
  return { y, bufferInputs, bufferOutputs };
}

/**
 * Dispatch and combine tensors of a sparse router from its one-hot dispatch mask.
 *
 *   dispatchMask [g, m, n, C] (1 where token i sits in slot c of expert e; no gradient)
 *   gates        [g, m, n]    (router probabilities, with gradient)
 *   → dispatchT [g, n·C, m] = maskᵀ, combine [g, m, n·C] = mask · gate
 *
 * vmoe `_get_top_experts_per_item_einsum_dispatcher`: combine_weights = einsum('SE,SEC->SEC',
 * gates, dispatch_weights), i.e. the raw gate of each kept choice (not renormalised).
 */
export function sparseDispatchCombine(
  dispatchMask: tf.Tensor4D,
  gates: tf.Tensor3D,
): {
  /** The transposed one-hot dispatch, [g, n·C, m] (no gradient). */
  dispatchT: tf.Tensor3D;
  /** Combine weights mask · gate, [g, m, n·C] (gradient to the gates). */
  combine: tf.Tensor3D;
} {
  const [g, m, n, c] = dispatchMask.shape;
  const flat = dispatchMask.reshape([g, m, n * c]) as tf.Tensor3D;
  const combine = tf.mul(dispatchMask, gates.reshape([g, m, n, 1])).reshape([g, m, n * c]) as tf.Tensor3D;
  return { dispatchT: transposeLast2(flat), combine };
}
