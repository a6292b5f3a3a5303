/**
 * Typed configuration of a Vision Transformer whose MLP blocks are dense, Soft MoE, Tokens
 * Choice or Experts Choice — the models compared in "From Sparse to Soft Mixtures of Experts"
 * (Puigcerver et al., ICLR 2024, arXiv:2308.00951, §3), following google-research/vmoe
 * `vmoe/nn/vit_moe.py` (VisionTransformerMoe, EncoderMoe) and the Soft MoE project configs
 * `vmoe/projects/soft_moe/configs/common.py` (`get_vit_config`, `get_vmoe_soft_router_config`,
 * `get_vmoe_experts_choose_config`).
 *
 * Shapes: images [b, H, W, C]; m = (H/P)·(W/P) tokens of width d per image; every image is one
 * routing group (vmoe sets `group_size = (image_size // patch_size)**2`).
 *
 * `resolveViTConfig` fills every default and validates; the rest of lib/vit reads only the
 * resolved config.
 */
import { checkInt, checkOneOf, checkOptions, checkPositive } from '../ops/check.js';
import { VMOE_AUX_LOSS_WEIGHT } from '../moe/losses.js';
import type { SoftMoEOptions } from '../moe/soft-moe.js';
import type { TokensChoiceOptions } from '../moe/routers/tokens-choice.js';

/** What sits in the MLP slot of an encoder block. */
export type BlockKind = 'dense' | 'soft' | 'tokens-choice' | 'experts-choice';
/** Every {@link BlockKind}, for validation and command-line parsing. */
export const BLOCK_KINDS: readonly BlockKind[] = ['dense', 'soft', 'tokens-choice', 'experts-choice'];

/**
 * Options of the sparse routers a ViT config may set beyond the ones it names itself (k,
 * capacityFactor, batchPriority, noiseStd): forwarded to `tokensChoice` and `expertsChoice`
 * (Experts Choice ignores `auxLoss`).
 */
export type SparseRouterOptions = Pick<
  TokensChoiceOptions,
  'ceilOrRound' | 'multipleOf' | 'capacity' | 'auxLoss' | 'checkFinite'
>;

/** Options of the MoE blocks (ignored by dense blocks). */
export interface MoEConfig {
  /** Number of experts n. Default 16. */
  numExperts?: number;
  /**
   * Soft MoE: slots per expert p. Default 1, as the paper's main Soft MoE models
   * (`pretrain_jft4b.py`: `num_slots=1`). Overrides `capacityFactor` for Soft MoE when given;
   * null (as a resolved config stores it) means "from `capacityFactor`".
   */
  slotsPerExpert?: number | null;
  /** Tokens Choice: experts per token K. Default 1. */
  k?: number;
  /**
   * Capacity factor of the sparse routers (and of Soft MoE if `slotsPerExpert` is not given).
   * Default 1.0 (`get_vmoe_experts_choose_config(capacity_factor=1.0)`).
   */
  capacityFactor?: number;
  /** Tokens Choice: Batch Prioritized Routing (Riquelme et al. 2021, V-MoE §4.1). Default false. */
  batchPriority?: boolean;
  /**
   * Tokens Choice: std of the noise on the router logits during training (vmoe `noise_std`, the
   * logits get N(0, (noiseStd/n)²)). Default 1.0, as V-MoE (`vmoe_paper` configs); evaluation
   * routes without noise.
   */
  noiseStd?: number;
  /**
   * Expert initialisation: 'shared' (every expert starts from one draw, as vmoe's
   * `split_rngs=False` in the Soft MoE configs) or 'independent'. Default 'shared'.
   */
  expertInit?: 'shared' | 'independent';
  /** Hidden width of each expert MLP. Default: the dense MLP width `mlpDim` (vmoe reuses `mlp_dim`). */
  expertHidden?: number;
  /**
   * Which blocks hold the MoE. Default: the last half, ⌊depth/2⌋ blocks (at least 1), as the
   * paper's ViT models (vmoe `pretrain_jft4b.py`: `last_n = 6` of 12 blocks for S and B).
   */
  layers?: number[];
  /**
   * Weight of the summed auxiliary (load-balancing) losses of all MoE blocks in the training
   * loss. The Tokens Choice router returns importance + load losses unweighted; V-MoE weighs
   * each by 0.005 (`vmoe_paper` configs: `importance_loss_weight = load_loss_weight = 0.005`),
   * hence the default 0.005. vmoe sums `auxiliary_loss` over blocks (`EncoderMoe`). Soft MoE and
   * Experts Choice have none (perfectly balanced by construction).
   */
  auxLossWeight?: number;
  /** Extra options forwarded to the sparse router functions (rounding, fixed capacity, loss kind, …). */
  routerOptions?: SparseRouterOptions;
  /**
   * Soft MoE only: the paper's Table 2 ablations, forwarded to `softMoE` (lib/moe/soft-moe.ts).
   * Defaults are the Soft MoE of the paper: normalize true (§2.3), dispatch and combine
   * 'softmax' (eqs. 1 and 3), experts 'mlp'. 'uniform' dispatch makes every slot the mean of all
   * tokens, 'uniform' combine every output the mean of all slots; 'identity' experts return
   * their slot unchanged. Parameters that such an ablation leaves unused (Φ and scale when both
   * weights are uniform, the experts when they are the identity) are not trained or counted.
   */
  softOptions?: SoftMoEAblation;
  /**
   * Soft MoE: initial value of `scale` (§2.3). Default 1 (vmoe SoftRouter `scale_init = ones`).
   * With the normalisation |logits| ≤ |scale|, so at 1 both softmaxes start near uniform
   * (a slot's largest dispatch weight ≤ 1/(1 + (m−1)e^{−2})). A departure available for short
   * training: measured in data/results/specialisation/ (d 32 × 2 blocks, 16 × 8 slots, 1000
   * updates), `scale` moves by ≤ 0.3 from its initial value, so at 1 the routing stays uniform
   * (median slot's max dispatch 1.27× uniform) and shared experts stay identical (cosine 0.994),
   * while 20 gives 10.6× uniform and experts at cosine 0.75 — the workbook's "specialising" recipe.
   */
  scaleInit?: number;
  /**
   * Soft MoE: std of Φ's normal initialisation. Default null = 1/√d (vmoe `mu_init =
   * lecun_normal()`). With the normalisation only Φ's direction matters, but its size sets how
   * fast Adam (steps ≈ learning rate per entry) turns it.
   */
  phiInitStd?: number | null;
  /**
   * Soft MoE: std of Gaussian noise on the router logits in training passes (vmoe SoftRouter
   * `noise_std`, default 0.0; evaluation is noiseless). Default 0.
   */
  softNoiseStd?: number;
  /**
   * Soft MoE: learning-rate multiplier of `scale` (and of Φ, `phiLrMultiplier`) in the trainer's
   * Adam. Default 1 (vmoe trains every parameter with one learning rate). Under Adam a parameter
   * moves by about the learning rate per update, so after T updates scale ≤ scaleInit + Σ_t lr_t;
   * a multiplier lets it grow within a short schedule.
   */
  scaleLrMultiplier?: number;
  /** Soft MoE: learning-rate multiplier of Φ (see `scaleLrMultiplier`). Default 1. */
  phiLrMultiplier?: number;
}

/** The Soft MoE options a ViT config may set (Table 2 ablations and the §2.3 normalisation). */
export type SoftMoEAblation = Pick<SoftMoEOptions, 'normalize' | 'dispatch' | 'combine' | 'experts'>;

/**
 * Configuration of a {@link ViT}: image and patch size, width, depth, heads, and which blocks
 * hold which MoE (paper §3; vmoe `vit_moe.py`, `soft_moe/configs/common.py`). Every field is
 * optional; {@link resolveViTConfig} fills the defaults (a dense ViT with width 64 and 4 blocks on
 * 28×28 images) and validates.
 *
 * @example
 * ```ts
 * // The workbook's Soft MoE ViT: 16 experts × 1 slot in the last 2 of 4 blocks.
 * const config: ViTConfig = { ...SIZE_PRESETS.small, kind: 'soft', moe: { numExperts: 16, slotsPerExpert: 1 } };
 * ```
 */
export interface ViTConfig {
  /** Image height and width. Default 28 (MNIST, Fashion-MNIST). */
  imageSize?: number;
  /** Image channels. Default 1. */
  channels?: number;
  /** Patch side P; must divide imageSize. Default 4 (28/4 = 7 → 49 tokens). */
  patchSize?: number;
  /** Number of classes. Default 10. */
  numClasses?: number;
  /** Token width d (vmoe `hidden_size`). Default 64. */
  dim?: number;
  /** Number of encoder blocks (vmoe `num_layers`). Default 4. */
  depth?: number;
  /** Attention heads; must divide dim. Default 4. */
  numHeads?: number;
  /** Hidden width of the dense MLP (vmoe `mlp_dim`). Default 4·dim (ViT's ratio). */
  mlpDim?: number;
  /**
   * Kind of the MoE blocks. Default 'dense' (a plain ViT). With 'soft', 'tokens-choice' or
   * 'experts-choice' the blocks listed in `moe.layers` use that kind; the others stay dense.
   */
  kind?: BlockKind;
  /** Per-block kinds, overriding `kind` and `moe.layers` entirely (length = depth). */
  blocks?: BlockKind[];
  /** Options of the MoE blocks (experts, slots, K, capacity, auxiliary loss weight). */
  moe?: MoEConfig;
  /**
   * LayerNorm on queries and keys per head (flax `normalize_qk`). Default false: the Soft MoE
   * configs turn it on (`attention_qk_norm: True`) for stability at scale; at the sizes trained
   * here it is not needed and costs time.
   */
  qkNorm?: boolean;
  /**
   * Head initialisation: 'zeros' (default; vmoe `head_kernel_zero_init=True`, first loss exactly
   * ln(classes)) or 'uniform' (U(±1/√d) for kernel and bias, PyTorch's `nn.Linear` default).
   * A departure for short training: with a zero head the body gets no gradient until the head
   * has grown. Measured here (data/results/tuning/*_probe.json; MNIST validation after 300 updates
   * of 128, Adam 4e-3, the 'small' Soft MoE ViT, wasm): 77.9% with 'zeros', 87.2% with 'uniform'.
   * vmoe's runs last hundreds of thousands of updates, where this start-up cost is invisible.
   */
  headInit?: 'zeros' | 'uniform';
  /** LayerNorm epsilon. Default 1e-6 (flax `nn.LayerNorm`). */
  layerNormEps?: number;
  /**
   * Tokens per image m, derived from imageSize and patchSize. Only so that a resolved config
   * (`model.config`, or one read back from a checkpoint or results file) can build the same model:
   * when given it must equal (imageSize / patchSize)².
   */
  numTokens?: number;
  /** Seed of every initialiser. Default 0. */
  seed?: number;
}

/** The configuration with every default filled in. */
export interface ResolvedViTConfig {
  /** Image height and width. */
  imageSize: number;
  /** Image channels. */
  channels: number;
  /** Patch side P. */
  patchSize: number;
  /** Number of classes. */
  numClasses: number;
  /** Token width d. */
  dim: number;
  /** Number of encoder blocks. */
  depth: number;
  /** Attention heads. */
  numHeads: number;
  /** Hidden width of the dense MLP. */
  mlpDim: number;
  /** Kind of the MoE blocks as configured (`blocks` says what each block is). */
  kind: BlockKind;
  /** The kind of each block, length `depth`. */
  blocks: BlockKind[];
  /**
   * The MoE options with defaults; `slotsPerExpert` null means Soft MoE sizes its slots by `capacityFactor`.
   */
  moe: Required<Omit<MoEConfig, 'slotsPerExpert' | 'layers' | 'routerOptions' | 'softOptions' | 'phiInitStd'>> & {
    /** Slots per expert p, or null to derive p from `capacityFactor`. */
    slotsPerExpert: number | null;
    /** Std of Φ's normal initialisation, or null for 1/√d (vmoe lecun_normal). */
    phiInitStd: number | null;
    /** Indices of the blocks that are not dense, ascending. */
    layers: number[];
    /** Extra options for the sparse routers (empty by default). */
    routerOptions: SparseRouterOptions;
    /** Soft MoE ablation switches (default: the paper's Soft MoE). */
    softOptions: Required<SoftMoEAblation>;
  };
  /** LayerNorm on queries and keys. */
  qkNorm: boolean;
  /** Head initialisation. */
  headInit: 'zeros' | 'uniform';
  /** LayerNorm epsilon. */
  layerNormEps: number;
  /** Seed of every initialiser. */
  seed: number;
  /** Tokens per image m = (imageSize / patchSize)². */
  numTokens: number;
}

/** Named sizes for the command line and notebooks (all 28×28, patch 4 → 49 tokens). */
export const SIZE_PRESETS = {
  /** For unit tests: seconds on the tiny data set. */
  tiny: { dim: 16, depth: 2, numHeads: 2, mlpDim: 32 },
  /** The workbook's main model: width 64, 4 blocks, MLP 256 (ViT ratio 4). */
  small: { dim: 64, depth: 4, numHeads: 4, mlpDim: 256 },
  /** Wider and deeper: width 128, 6 blocks, MLP 512. */
  medium: { dim: 128, depth: 6, numHeads: 4, mlpDim: 512 },
} as const satisfies Record<string, Partial<ViTConfig>>;
/** A name of {@link SIZE_PRESETS}. */
export type SizePreset = keyof typeof SIZE_PRESETS;

/** Default MoE blocks: the last ⌊depth/2⌋ (at least one), as the paper's "last half". */
export function defaultMoELayers(depth: number): number[] {
  const lastN = Math.max(1, Math.floor(depth / 2));
  return Array.from({ length: lastN }, (_, i) => depth - lastN + i);
}

/**
 * Fill in defaults and validate; errors name the bad value and what was expected.
 *
 * @throws Error if a size is not a positive integer, `patchSize` does not divide `imageSize`,
 * `numHeads` does not divide `dim`, `moe.k` exceeds `moe.numExperts`, a kind or option is not one
 * of its allowed values, or `moe.layers` / `blocks` name blocks outside [0, depth).
 */
export function resolveViTConfig(config: ViTConfig = {}): ResolvedViTConfig {
  checkOptions(
    config,
    {
      imageSize: 'integer',
      channels: 'integer',
      patchSize: 'integer',
      numClasses: 'integer',
      dim: 'integer',
      depth: 'integer',
      numHeads: 'integer',
      mlpDim: 'integer',
      kind: BLOCK_KINDS,
      blocks: 'array',
      moe: 'object',
      qkNorm: 'boolean',
      headInit: ['zeros', 'uniform'],
      layerNormEps: 'number',
      seed: 'seed',
      numTokens: 'integer',
    },
    'ViT config',
  );
  checkOptions(
    config.moe,
    {
      numExperts: 'integer',
      slotsPerExpert: 'integer-or-null',
      k: 'integer',
      capacityFactor: 'number',
      batchPriority: 'boolean',
      noiseStd: 'number',
      expertInit: ['shared', 'independent'],
      expertHidden: 'integer',
      layers: 'array',
      auxLossWeight: 'number',
      routerOptions: 'object',
      softOptions: 'object',
      scaleInit: 'number',
      phiInitStd: 'number-or-null',
      softNoiseStd: 'number',
      scaleLrMultiplier: 'number',
      phiLrMultiplier: 'number',
    },
    'ViT config',
    'moe.',
  );
  checkOptions(
    config.moe?.softOptions,
    {
      normalize: 'boolean',
      dispatch: ['softmax', 'uniform'],
      combine: ['softmax', 'uniform'],
      experts: ['mlp', 'identity'],
    },
    'ViT config',
    'moe.softOptions.',
  );
  const imageSize = config.imageSize ?? 28;
  const channels = config.channels ?? 1;
  const patchSize = config.patchSize ?? 4;
  const numClasses = config.numClasses ?? 10;
  const dim = config.dim ?? 64;
  const depth = config.depth ?? 4;
  const numHeads = config.numHeads ?? 4;
  const mlpDim = config.mlpDim ?? 4 * dim;
  checkInt(imageSize, 'imageSize');
  checkInt(channels, 'channels');
  checkInt(patchSize, 'patchSize');
  checkInt(numClasses, 'numClasses', 2);
  checkInt(dim, 'dim');
  checkInt(depth, 'depth');
  checkInt(numHeads, 'numHeads');
  checkInt(mlpDim, 'mlpDim');
  if (imageSize % patchSize !== 0) {
    throw new Error(`patchSize ${patchSize} must divide imageSize ${imageSize} (patches do not overlap or pad)`);
  }
  if (dim % numHeads !== 0) throw new Error(`numHeads ${numHeads} must divide dim ${dim}`);
  const kind = config.kind ?? 'dense';
  checkOneOf(kind, BLOCK_KINDS, 'kind');

  const moeIn = config.moe ?? {};
  const numExperts = moeIn.numExperts ?? 16;
  checkInt(numExperts, 'moe.numExperts');
  const k = moeIn.k ?? 1;
  checkInt(k, 'moe.k');
  if (k > numExperts) throw new Error(`moe.k = ${k} must be ≤ moe.numExperts = ${numExperts}`);
  const capacityFactor = moeIn.capacityFactor ?? 1.0;
  checkPositive(capacityFactor, 'moe.capacityFactor');
  const slotsPerExpert = moeIn.slotsPerExpert ?? (moeIn.capacityFactor == null ? 1 : null);
  if (slotsPerExpert != null) checkInt(slotsPerExpert, 'moe.slotsPerExpert');
  const expertInit = moeIn.expertInit ?? 'shared';
  checkOneOf(expertInit, ['shared', 'independent'] as const, 'moe.expertInit');
  const expertHidden = moeIn.expertHidden ?? mlpDim;
  checkInt(expertHidden, 'moe.expertHidden');
  const auxLossWeight = moeIn.auxLossWeight ?? VMOE_AUX_LOSS_WEIGHT;
  const noiseStd = moeIn.noiseStd ?? 1.0;
  if (!Number.isFinite(noiseStd) || noiseStd < 0)
    throw new Error(`moe.noiseStd must be a finite number ≥ 0, got ${String(noiseStd)}`);
  if (!Number.isFinite(auxLossWeight) || auxLossWeight < 0) {
    throw new Error(`moe.auxLossWeight must be a finite number ≥ 0, got ${String(auxLossWeight)}`);
  }
  const softIn = moeIn.softOptions ?? {};
  const softOptions: Required<SoftMoEAblation> = {
    normalize: softIn.normalize ?? true,
    dispatch: softIn.dispatch ?? 'softmax',
    combine: softIn.combine ?? 'softmax',
    experts: softIn.experts ?? 'mlp',
  };
  if (typeof softOptions.normalize !== 'boolean')
    throw new Error(`moe.softOptions.normalize must be true or false, got ${String(softOptions.normalize)}`);
  checkOneOf(softOptions.dispatch, ['softmax', 'uniform'] as const, 'moe.softOptions.dispatch');
  checkOneOf(softOptions.combine, ['softmax', 'uniform'] as const, 'moe.softOptions.combine');
  checkOneOf(softOptions.experts, ['mlp', 'identity'] as const, 'moe.softOptions.experts');
  const scaleInit = moeIn.scaleInit ?? 1;
  if (typeof scaleInit !== 'number' || !Number.isFinite(scaleInit))
    throw new Error(`moe.scaleInit must be a finite number, got ${String(scaleInit)}`);
  const phiInitStd = moeIn.phiInitStd ?? null;
  if (phiInitStd != null) checkPositive(phiInitStd, 'moe.phiInitStd');
  const softNoiseStd = moeIn.softNoiseStd ?? 0;
  if (typeof softNoiseStd !== 'number' || !Number.isFinite(softNoiseStd) || softNoiseStd < 0) {
    throw new Error(`moe.softNoiseStd must be a finite number ≥ 0, got ${String(softNoiseStd)}`);
  }
  const scaleLrMultiplier = moeIn.scaleLrMultiplier ?? 1;
  const phiLrMultiplier = moeIn.phiLrMultiplier ?? 1;
  for (const [name, v] of [
    ['scaleLrMultiplier', scaleLrMultiplier],
    ['phiLrMultiplier', phiLrMultiplier],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new Error(`moe.${name} must be a finite number ≥ 0, got ${String(v)}`);
  }
  const layers = moeIn.layers ?? defaultMoELayers(depth);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= depth)
      throw new Error(`moe.layers entries must be block indices in [0, ${depth - 1}], got ${String(l)}`);
  }

  let blocks: BlockKind[];
  if (config.blocks != null) {
    if (config.blocks.length !== depth)
      throw new Error(`blocks must list one kind per block (${depth}), got ${config.blocks.length}`);
    config.blocks.forEach((b, i) => checkOneOf(b, BLOCK_KINDS, `blocks[${i}]`));
    blocks = [...config.blocks];
  } else {
    blocks = Array.from({ length: depth }, (_, i) => (kind !== 'dense' && layers.includes(i) ? kind : 'dense'));
  }
  const seed = config.seed ?? 0;
  checkInt(seed, 'seed', 0);
  const headInit = config.headInit ?? 'zeros';
  checkOneOf(headInit, ['zeros', 'uniform'] as const, 'headInit');
  const layerNormEps = config.layerNormEps ?? 1e-6;
  checkPositive(layerNormEps, 'layerNormEps');
  const side = imageSize / patchSize;
  const resolved: ResolvedViTConfig = {
    imageSize,
    channels,
    patchSize,
    numClasses,
    dim,
    depth,
    numHeads,
    mlpDim,
    kind,
    blocks,
    moe: {
      numExperts,
      slotsPerExpert,
      k,
      capacityFactor,
      batchPriority: moeIn.batchPriority ?? false,
      noiseStd,
      expertInit,
      expertHidden,
      layers: blocks.flatMap((b, i) => (b === 'dense' ? [] : [i])),
      auxLossWeight,
      routerOptions: moeIn.routerOptions ?? {},
      softOptions,
      scaleInit,
      phiInitStd,
      softNoiseStd,
      scaleLrMultiplier,
      phiLrMultiplier,
    },
    qkNorm: config.qkNorm ?? false,
    headInit,
    layerNormEps,
    seed,
    numTokens: side * side,
  };
  if (config.numTokens != null && config.numTokens !== resolved.numTokens) {
    throw new Error(
      `ViT config numTokens ${config.numTokens} disagrees with imageSize ${resolved.imageSize} / patchSize ${resolved.patchSize}: (${resolved.imageSize}/${resolved.patchSize})² = ${resolved.numTokens}`,
    );
  }
  return resolved;
}
