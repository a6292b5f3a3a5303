/**
 * Forward FLOPs of one mixture-of-experts layer, per group of m tokens — the compute side of
 * Shazeer et al. 2017 (arXiv:1701.06538, §1: "conditional computation": a sparse gate evaluates
 * only k of the n experts per token) and of "From Sparse to Soft Mixtures of Experts"
 * (arXiv:2308.00951, §2.1 and §3: cost depends on the number of slots, not of experts).
 *
 * Counting, as lib/vit/cost.ts: a multiply-add is 2 FLOPs, so a [r, k]·[k, c] product is 2·r·k·c;
 * only contractions are counted, not elementwise work (softmax, GELU, bias adds, top-k
 * selection), which is O(m·n) or O(m·h) against O(m·d·h) for the products. One expert on one
 * token (or slot) is the MLP d → h → d: 2·d·h + 2·h·d = 4·d·h FLOPs.
 *
 *   dense-mlp       one MLP on every token                       4·m·d·h
 *   dense-mixture   Shazeer eq. 1 with every expert on every token: gates x·W_g (2·m·d·n),
 *                   n experts on m tokens (n·m·4dh), Σᵢ G(x)ᵢ Eᵢ(x) (2·m·n·d)   (gating.ts
 *                   `denseMixture`)
 *   tokens-choice   router 2·m·d·n; experts on their n buffers of C slots, empty slots included,
 *                   n·C·4dh, C = capacity from m·K tokens (dispatch.ts `computeCapacity`);
 *   experts-choice  the same with C from m tokens (`expertsChoiceCapacity`);
 *                   both move tokens with one-hot products [n·C, m]·[m, d] and back,
 *                   2·(2·m·n·C·d) — a gather/scatter implementation would spend no FLOPs there
 *                   (dispatch.ts explains why this library uses products)
 *   soft            logits X·Φ 2·m·d·(n·p); X̃ = Dᵀ·X and Y = C·Ỹ, 2·(2·m·n·p·d); experts on
 *                   their n·p slots n·p·4dh (paper §2.1, eqs. 1–3)
 *
 * The capacities use the routers' own defaults (TOKENS_CHOICE_ROUNDING 'ceil',
 * EXPERTS_CHOICE_ROUNDING 'round'), so `capacity` here equals what `tokensChoice` /
 * `expertsChoice` compute for the same options. lib/vit/cost.ts counts a whole ViT with these
 * per-layer counts.
 */
import { checkInt, checkOneOf, checkPositive } from '../ops/check.js';
import { computeCapacity, type CeilOrRound } from './dispatch.js';
import { expertsChoiceCapacity, EXPERTS_CHOICE_ROUNDING } from './routers/experts-choice.js';
import { TOKENS_CHOICE_ROUNDING } from './routers/tokens-choice.js';
import { slotsFromCapacityFactor } from './soft-moe.js';

/** The layers whose cost is counted. */
export type MoELayerKind = 'dense-mlp' | 'dense-mixture' | 'tokens-choice' | 'experts-choice' | 'soft';

/** Every {@link MoELayerKind}. */
export const MOE_LAYER_KINDS: readonly MoELayerKind[] = [
  'dense-mlp',
  'dense-mixture',
  'tokens-choice',
  'experts-choice',
  'soft',
];

/** Sizes of one MoE (or dense MLP) layer for the cost formulas. */
export interface MoELayerSizes {
  /** m, tokens per group (one sequence). */
  tokens: number;
  /** d, token width. */
  dim: number;
  /** h, hidden width of each expert MLP (of the MLP for 'dense-mlp'). */
  hidden: number;
  /** n, number of experts. Ignored by 'dense-mlp'. */
  experts?: number;
  /** K, experts per token (Tokens Choice). Default 1. */
  k?: number;
  /** Capacity factor of the sparse routers, or of Soft MoE when slotsPerExpert is not given. Default 1. */
  capacityFactor?: number;
  /** Capacity rounding; default the router's own (TOKENS_CHOICE_ROUNDING, EXPERTS_CHOICE_ROUNDING). */
  ceilOrRound?: CeilOrRound;
  /** Round the sparse routers' capacity up to a multiple of this (as the routers' `multipleOf`). */
  multipleOf?: number | null;
  /** The sparse routers' capacity C, given directly (as the routers' `capacity`): overrides capacityFactor. */
  capacity?: number;
  /** Soft MoE slots per expert p. Default round(m·capacityFactor/n) (`slotsFromCapacityFactor`). */
  slotsPerExpert?: number;
}

/** Forward FLOPs of one layer per group (sequence), by part; a multiply-add counts 2. */
export interface MoELayerFlops {
  /** Which layer was counted. */
  kind: MoELayerKind;
  /** Router or gating products (x·W_g, X·Φ). */
  router: number;
  /** Moving tokens to experts and back (one-hot or soft products; the mixture sum). */
  dispatchCombine: number;
  /** The expert (or dense) MLPs. */
  experts: number;
  /** router + dispatchCombine + experts, per group of m tokens. */
  total: number;
  /** total / m. */
  perToken: number;
  /** Tokens (or slots) each expert processes per group: C, p, or m (dense mixture). 0 for dense-mlp. */
  bufferSize: number;
}

/**
 * Forward FLOPs of one layer per group of `tokens` tokens (see the file comment).
 *
 * @throws Error if `kind` is unknown, a size is not a positive integer, or the sizes the kind needs
 * (experts, K, capacity factor or slots) are missing or out of range.
 */
export function moeLayerFlops(kind: MoELayerKind, sizes: MoELayerSizes): MoELayerFlops {
  checkOneOf(kind, MOE_LAYER_KINDS, 'kind');
  if (sizes == null) throw new Error('moeLayerFlops needs sizes {tokens, dim, hidden, experts?, …}');
  const { tokens: m, dim: d, hidden: h } = sizes;
  checkInt(m, 'tokens m');
  checkInt(d, 'dim d');
  checkInt(h, 'hidden h');
  const mlp = 4 * d * h; // one expert (or MLP) on one token or slot
  let router = 0;
  let dispatchCombine = 0;
  let experts = 0;
  let bufferSize = 0;
  if (kind === 'dense-mlp') {
    experts = m * mlp;
  } else {
    const n = sizes.experts;
    if (n == null)
      throw new Error(`moeLayerFlops(${JSON.stringify(kind)}) needs sizes.experts (the number of experts n), got none`);
    checkInt(n, 'experts n');
    const cf = sizes.capacityFactor ?? 1;
    checkPositive(cf, 'capacityFactor');
    if (kind === 'dense-mixture') {
      bufferSize = m;
      router = 2 * m * d * n;
      experts = n * m * mlp;
      dispatchCombine = 2 * m * n * d;
    } else if (kind === 'soft') {
      const p = sizes.slotsPerExpert ?? slotsFromCapacityFactor(m, n, cf);
      checkInt(p, 'slotsPerExpert p');
      bufferSize = p;
      router = 2 * m * d * n * p;
      dispatchCombine = 2 * (2 * m * n * p * d);
      experts = n * p * mlp;
    } else {
      const k = sizes.k ?? 1;
      checkInt(k, 'k');
      if (k > n) throw new Error(`k must be ≤ the number of experts n = ${n}, got k = ${k}`);
      const capacity =
        sizes.capacity ??
        (kind === 'tokens-choice'
          ? computeCapacity(m * k, n, cf, {
              ceilOrRound: sizes.ceilOrRound ?? TOKENS_CHOICE_ROUNDING,
              multipleOf: sizes.multipleOf,
            })
          : expertsChoiceCapacity(m, n, cf, sizes.ceilOrRound ?? EXPERTS_CHOICE_ROUNDING, sizes.multipleOf));
      checkInt(capacity, 'capacity C');
      bufferSize = capacity;
      router = 2 * m * d * n;
      dispatchCombine = 2 * (2 * m * n * capacity * d);
      experts = n * capacity * mlp;
    }
  }
  const total = router + dispatchCombine + experts;
  return { kind, router, dispatchCombine, experts, total, perToken: total / m, bufferSize };
}
