/**
 * Parameter counts and forward FLOPs per image — the cost axis of the paper's comparisons
 * (§3, Figures 3–5 plot quality against training cost and against FLOPs).
 *
 * What is counted: every matrix product the forward pass performs, a multiply-add counted as
 * 2 FLOPs (a [r, k]·[k, c] product is 2·r·k·c FLOPs). That covers the patch projection, the
 * attention projections and the two per-head products, the MLP or expert products, the routers'
 * logits, the dispatch and combine products of the MoE layers, pooling and the head.
 * Not counted: elementwise work and reductions (LayerNorm, softmax, GELU, residual adds, bias
 * adds, top-k selection), which are O(m·d) per block against O(m·d²) for the products.
 *
 * Sparse MoEs: the experts run on their full buffers of C slots each (n·C·(4·d·h) FLOPs), empty
 * slots included, as vmoe's einsum dispatcher does. Their dispatch and combine are written as
 * one-hot products ([n·C, m]·[m, d] and back, 2·m·n·C·d FLOPs each) because a gather's gradient
 * is unavailable on wasm; a gather-based implementation would spend no FLOPs there. The per-kind
 * breakdown (`dispatchCombine`) lets a reader drop them.
 */
import { moeLayerFlops, type MoELayerFlops } from '../moe/cost.js';
import { resolveViTConfig, type BlockKind, type ResolvedViTConfig, type ViTConfig } from './config.js';

/** Forward FLOPs of one image, by component (each a sum over blocks). */
export interface FlopBreakdown {
  /** Patch projection (the position embeddings are an addition, not counted). */
  patchEmbed: number;
  /** q, k, v, output projections and the two per-head products. */
  attention: number;
  /** Dense MLPs and the experts' MLPs. */
  mlp: number;
  /** Router logits: Soft MoE X·Φ, sparse routers X·W_g. */
  router: number;
  /** Soft MoE: Dᵀ·X and C·Ỹ; sparse: one-hot dispatch and combine products. */
  dispatchCombine: number;
  /** Global average pooling (as a product with a row of 1/m) and the head. */
  head: number;
  /** Sum of the parts. */
  total: number;
}

/** Parameters and forward FLOPs of a ViT, from {@link modelCost}. */
export interface ModelCost {
  /** Trainable parameters. */
  parameters: number;
  /** Forward FLOPs of one image, by component. */
  flopsPerImage: FlopBreakdown;
  /** Per block: kind, parameters, forward FLOPs per image. */
  blocks: Array<{
    /** Kind of the block. */
    kind: BlockKind;
    /** Parameters of the block. */
    parameters: number;
    /** Forward FLOPs of the block per image. */
    flops: number;
  }>;
}

/** The FLOPs of one block's MLP slot per image (lib/moe/cost.ts, one copy of the formulas). */
function mlpSlotFlops(kind: BlockKind, config: ResolvedViTConfig): MoELayerFlops {
  const { moe, numTokens: tokens, dim } = config;
  if (kind === 'dense') return moeLayerFlops('dense-mlp', { tokens, dim, hidden: config.mlpDim });
  const { ceilOrRound, multipleOf, capacity } = moe.routerOptions;
  return moeLayerFlops(kind, {
    tokens,
    dim,
    hidden: moe.expertHidden,
    experts: moe.numExperts,
    k: moe.k,
    capacityFactor: moe.capacityFactor,
    ...(kind === 'soft' ? { slotsPerExpert: moe.slotsPerExpert ?? undefined } : { ceilOrRound, multipleOf, capacity }),
  });
}

/** Soft MoE slots per expert p, or the sparse routers' capacity C per expert and image (0 for dense). */
export function moeBufferSize(kind: BlockKind, config: ResolvedViTConfig): number {
  return mlpSlotFlops(kind, config).bufferSize;
}

/** Parameters and forward FLOPs per image of a ViT config (no tensors are created). */
export function modelCost(config: ViTConfig | ResolvedViTConfig): ModelCost {
  const c = 'numTokens' in config ? (config as ResolvedViTConfig) : resolveViTConfig(config);
  const { dim: d, mlpDim: f, numTokens: m, patchSize: P, channels: C, numClasses, numHeads } = c;
  const dh = d / numHeads;
  const flops: FlopBreakdown = {
    patchEmbed: 0,
    attention: 0,
    mlp: 0,
    router: 0,
    dispatchCombine: 0,
    head: 0,
    total: 0,
  };
  let parameters = 0;

  // Patch embedding [m, P²C]·[P²C, d]; kernel, bias, position embeddings.
  parameters += P * P * C * d + d + m * d;
  flops.patchEmbed = 2 * m * P * P * C * d;

  const blocks: ModelCost['blocks'] = [];
  for (const kind of c.blocks) {
    // Two LayerNorms (scale, bias) and attention (4 kernels [d, d] + 4 biases [d]; qk-norm scales).
    let blockParams = 2 * (2 * d) + 4 * (d * d + d) + (c.qkNorm ? 2 * dh : 0);
    // q, k, v, out projections: 4 × [m, d]·[d, d]; per head q·kᵀ [m, dh]·[dh, m] and A·v
    // [m, m]·[m, dh], over h heads: 2 × 2·m·m·d.
    const attention = 4 * (2 * m * d * d) + 2 * (2 * m * m * d);
    let mlp = 0;
    let router = 0;
    let dispatchCombine = 0;
    const n = c.moe.numExperts;
    const h = c.moe.expertHidden;
    const expertParams = n * (d * h + h + h * d + d);
    const slot = mlpSlotFlops(kind, c);
    if (kind === 'dense') {
      blockParams += d * f + f + f * d + d;
      mlp = slot.experts; // [m, d]·[d, f] and [m, f]·[f, d]
    } else if (kind === 'soft') {
      const s = n * slot.bufferSize; // slots n·p
      // Table 2 ablations (moe.softOptions): with uniform dispatch and combine, Φ and scale are
      // unused and the logits are not needed (softMoE still computes and frees them: not
      // counted); identity experts have no weights and no products.
      const { normalize, dispatch, combine, experts } = c.moe.softOptions;
      const usesPhi = dispatch !== 'uniform' || combine !== 'uniform';
      const usesExperts = experts !== 'identity';
      blockParams += (usesPhi ? d * s + (normalize ? 1 : 0) : 0) + (usesExperts ? expertParams : 0); // Φ [d, n, p], scale (§2.3 only), experts
      router = usesPhi ? slot.router : 0; // logits X·Φ
      dispatchCombine = slot.dispatchCombine; // X̃ = Dᵀ·X and Y = C·Ỹ
      mlp = usesExperts ? slot.experts : 0; // every slot through its expert
    } else {
      blockParams += d * n + expertParams; // router W_g [d, n] (no bias) and experts
      ({ router, dispatchCombine, experts: mlp } = slot); // x·W_g, one-hot products, n buffers of C slots
    }
    flops.attention += attention;
    flops.mlp += mlp;
    flops.router += router;
    flops.dispatchCombine += dispatchCombine;
    parameters += blockParams;
    blocks.push({ kind, parameters: blockParams, flops: attention + mlp + router + dispatchCombine });
  }
  // Final LayerNorm, pooling ([1, m]·[m, d]), head [d]·[d, classes].
  parameters += 2 * d + d * numClasses + numClasses;
  flops.head = 2 * m * d + 2 * d * numClasses;
  flops.total = flops.patchEmbed + flops.attention + flops.mlp + flops.router + flops.dispatchCombine + flops.head;
  return { parameters, flopsPerImage: flops, blocks };
}
