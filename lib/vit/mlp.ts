/**
 * What sits in the MLP slot of an encoder block: a dense MLP or one of the MoE layers the paper
 * compares (§3; vmoe `EncoderMoe` swaps `MlpBlock` for `MlpMoeBlock` in the blocks listed in
 * `moe.layers`). Every kind has the same interface: x [b, m, d] → y [b, m, d], plus an optional
 * auxiliary loss (sparse routers' load balancing; Soft MoE and dense have none) and scalar metrics.
 * Every image is one routing group, as vmoe's `group_size = tokens per image`.
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from '../core/random.js';
import { DenseMLPLayer, ExpertsChoiceLayer, SoftMoELayer, TokensChoiceLayer } from '../moe/layers.js';
import { type Module } from '../core/module.js';
import type { BlockKind, ResolvedViTConfig } from './config.js';
import type { SeedStream } from '../core/random.js';

/** The scalar diagnostics an MLP slot reports. */
export interface MlpMetrics {
  /** Sparse routers: the fraction of token choices dropped (Tokens Choice) or of tokens no expert took (Experts Choice). */
  dropFraction?: tf.Scalar;
}

/** What the MLP slot of an encoder block returns ({@link MlpBlock.apply}). */
export interface MlpOutput {
  /** [b, m, d] */
  y: tf.Tensor3D;
  /** The block's auxiliary loss (a scalar), or null if the kind has none. */
  auxLoss: tf.Scalar | null;
  /** Scalar diagnostics, possibly empty. */
  metrics: MlpMetrics;
  /** Soft MoE blocks with `returnRouting`: their dispatch and combine weights. */
  routing?: SoftRouting;
}

/**
 * A Soft MoE block's routing weights for a batch, each [b, m, n, p] (token, expert, slot):
 * `dispatch` sums to 1 over the m tokens of each slot (eq. 1), `combine` sums to 1 over the n·p
 * slots of each token (eq. 3). What the paper draws in Fig. 10.
 */
export interface SoftRouting {
  /** Dispatch weights D (eq. 1), [b, m, n, p]. */
  dispatch: tf.Tensor4D;
  /** Combine weights C (eq. 3), [b, m, n, p]. */
  combine: tf.Tensor4D;
}

/** Per-call options of a forward pass. */
export interface ForwardOptions {
  /**
   * Training pass: sparse routers draw their noise (Tokens Choice `noiseStd`). Default false
   * (evaluation: deterministic routing, as vmoe at evaluation).
   */
  training?: boolean;
  /** The update being computed; seeds the router noise so that a resumed run draws the same. */
  step?: number;
  /**
   * Also return the dispatch and combine weights of the Soft MoE blocks (`MlpOutput.routing`,
   * `ViTOutput.routing`), to look inside a trained model. Default false. Dense and sparse
   * blocks return none.
   */
  returnRouting?: boolean;
}

/** The MLP slot of an encoder block: dense, Soft MoE, Tokens Choice or Experts Choice; owns its variables. */
export interface MlpBlock extends Module {
  /** Which kind of block this is. */
  readonly kind: BlockKind;
  /** Forward pass on tokens x [b, m, d] (one routing group per image); call inside `tf.tidy`. */
  apply(x: tf.Tensor3D, options?: ForwardOptions): MlpOutput;
}

/** The dense MLP d → mlpDim → d with GELU (vmoe/`vit_jax` `MlpBlock`), lib/moe's DenseMLPLayer. */
export class DenseMlpBlock implements MlpBlock {
  readonly kind = 'dense' as const;
  /** The lib/moe layer that holds the variables. */
  readonly layer: DenseMLPLayer;
  /**
   * A dense MLP block with fresh weights (Xavier uniform, zero biases).
   *
   * @param dim token width d.
   * @param hidden hidden width.
   * @param seeds the model's seed stream; the block takes one seed.
   */
  constructor(dim: number, hidden: number, seeds: SeedStream) {
    this.layer = new DenseMLPLayer({ dim, hidden, seed: seeds.next() });
  }
  get variables(): Record<string, tf.Variable> {
    return this.layer.variables;
  }
  apply(x: tf.Tensor3D): MlpOutput {
    return { y: this.layer.apply(x) as tf.Tensor3D, auxLoss: null, metrics: {} };
  }
  dispose(): void {
    this.layer.dispose();
  }
}

/**
 * Soft MoE (paper §2, eqs. 1–3) around lib/moe's SoftMoELayer, with the Table 2 ablations of
 * `moe.softOptions` forwarded to every call. An ablation that leaves parameters unused (Φ and
 * scale when dispatch and combine are both uniform, the experts when they are the identity)
 * keeps them out of `variables`: they get no gradient, so they are neither trained nor counted.
 */
export class SoftMoEBlock implements MlpBlock {
  readonly kind = 'soft' as const;
  /** The lib/moe layer that holds the variables. */
  readonly layer: SoftMoELayer;
  private readonly softOptions: ResolvedViTConfig['moe']['softOptions'];
  private readonly noiseStd: number;
  private readonly noiseSeed: number;
  /**
   * A Soft MoE block sized by `config` (n = `moe.numExperts`, p = `moe.slotsPerExpert` or from the capacity factor).
   *
   * @param config the model's resolved configuration (sizes and `moe` options).
   * @param seeds the model's seed stream; the block takes one seed.
   */
  constructor(config: ResolvedViTConfig, seeds: SeedStream) {
    const { moe } = config;
    this.softOptions = moe.softOptions;
    this.noiseStd = moe.softNoiseStd;
    const { normalize, dispatch, combine, experts } = moe.softOptions;
    const seed = seeds.next();
    // Derived from the layer's seed, not drawn from the stream: adding the noise option changed
    // no other block's weights.
    this.noiseSeed = deriveSeed(seed, 0x50f7);
    this.layer = new SoftMoELayer({
      dim: config.dim,
      numExperts: moe.numExperts,
      hidden: moe.expertHidden,
      ...(moe.slotsPerExpert != null
        ? { slotsPerExpert: moe.slotsPerExpert }
        : { capacityFactor: moe.capacityFactor, numTokens: config.numTokens }),
      expertInit: moe.expertInit,
      seed, // the layer derives the seeds of Φ and the experts from it
      options: { normalize, dispatch, combine, experts },
      scaleInit: moe.scaleInit,
      ...(moe.phiInitStd != null ? { phiInitStd: moe.phiInitStd } : {}),
    });
  }
  get variables(): Record<string, tf.Variable> {
    const { normalize, dispatch, combine, experts } = this.softOptions;
    const usesPhi = dispatch !== 'uniform' || combine !== 'uniform';
    // Without the §2.3 normalisation the logits are X·Φ and `scale` is unused (vmoe creates it only with normalisation).
    const usesScale = usesPhi && normalize;
    const usesExperts = experts !== 'identity';
    return Object.fromEntries(
      Object.entries(this.layer.variables).filter(([name]) =>
        name === 'phi' ? usesPhi : name === 'scale' ? usesScale : usesExperts,
      ),
    );
  }
  apply(x: tf.Tensor3D, options: ForwardOptions = {}): MlpOutput {
    // Logit noise in training passes only (vmoe adds it when not `deterministic`), seeded by the update.
    const noise =
      options.training && this.noiseStd > 0
        ? { noiseStd: this.noiseStd, noiseSeed: deriveSeed(this.noiseSeed, options.step ?? 0) }
        : {};
    if (!options.returnRouting) return { y: this.layer.apply(x, noise).y, auxLoss: null, metrics: {} };
    const r = this.layer.apply(x, { ...noise, returnWeights: true });
    tf.dispose([r.logits, r.slotInputs, r.slotOutputs]); // returned with the weights; not wanted here
    return {
      y: r.y,
      auxLoss: null,
      metrics: {},
      routing: { dispatch: r.dispatch as tf.Tensor4D, combine: r.combine as tf.Tensor4D },
    };
  }
  dispose(): void {
    this.layer.dispose();
  }
}

/**
 * Tokens Choice top-K (paper §2.1 "Sparse MoE"; V-MoE) around lib/moe's TokensChoiceLayer.
 * Router noise is drawn in training passes only, seeded by (block seed, update index), so a run
 * resumed from a checkpoint draws the same noise as an uninterrupted one.
 */
export class TokensChoiceBlock implements MlpBlock {
  readonly kind = 'tokens-choice' as const;
  /** The lib/moe layer that holds the variables. */
  readonly layer: TokensChoiceLayer;
  private readonly noiseSeed: number;
  /**
   * A Tokens Choice block sized by `config` (n, K, capacity factor, BPR, noise from `moe`).
   *
   * @param config the model's resolved configuration (sizes and `moe` options).
   * @param seeds the model's seed stream; the block takes one seed (and its router noise seed from it).
   */
  constructor(config: ResolvedViTConfig, seeds: SeedStream) {
    const { moe } = config;
    const seed = seeds.next(); // the layer derives the seeds of its router and experts from it
    this.noiseSeed = seeds.next();
    this.layer = new TokensChoiceLayer({
      dim: config.dim,
      numExperts: moe.numExperts,
      hidden: moe.expertHidden,
      expertInit: moe.expertInit,
      seed,
      options: {
        k: moe.k,
        capacityFactor: moe.capacityFactor,
        batchPriority: moe.batchPriority,
        noiseStd: moe.noiseStd,
        ...moe.routerOptions,
      },
    });
  }
  get variables(): Record<string, tf.Variable> {
    return this.layer.variables;
  }
  apply(x: tf.Tensor3D, options: ForwardOptions = {}): MlpOutput {
    const training = options.training ?? false;
    const r = this.layer.apply(x, training ? { training, seed: deriveSeed(this.noiseSeed, options.step ?? 0) } : {});
    return { y: r.y, auxLoss: r.auxLoss, metrics: { dropFraction: r.dropFraction } };
  }
  dispose(): void {
    this.layer.dispose();
  }
}

/** Experts Choice (Zhou et al. 2022; paper §3 baseline) around lib/moe's ExpertsChoiceLayer. */
export class ExpertsChoiceBlock implements MlpBlock {
  readonly kind = 'experts-choice' as const;
  /** The lib/moe layer that holds the variables. */
  readonly layer: ExpertsChoiceLayer;
  /**
   * An Experts Choice block sized by `config` (n and capacity factor from `moe`).
   *
   * @param config the model's resolved configuration (sizes and `moe` options).
   * @param seeds the model's seed stream; the block takes one seed.
   */
  constructor(config: ResolvedViTConfig, seeds: SeedStream) {
    const { moe } = config;
    const seed = seeds.next();
    this.layer = new ExpertsChoiceLayer({
      dim: config.dim,
      numExperts: moe.numExperts,
      hidden: moe.expertHidden,
      expertInit: moe.expertInit,
      seed,
      // The router's default rounding (EXPERTS_CHOICE_ROUNDING, 'round', as vmoe's ViT configs).
      options: { capacityFactor: moe.capacityFactor, ...moe.routerOptions },
    });
  }
  get variables(): Record<string, tf.Variable> {
    return this.layer.variables;
  }
  apply(x: tf.Tensor3D): MlpOutput {
    const r = this.layer.apply(x);
    return { y: r.y, auxLoss: null, metrics: { dropFraction: r.dropFraction } };
  }
  dispose(): void {
    this.layer.dispose();
  }
}

/** Build the MLP of one block. */
export function createMlpBlock(kind: BlockKind, config: ResolvedViTConfig, seeds: SeedStream): MlpBlock {
  switch (kind) {
    case 'dense':
      return new DenseMlpBlock(config.dim, config.mlpDim, seeds);
    case 'soft':
      return new SoftMoEBlock(config, seeds);
    case 'tokens-choice':
      return new TokensChoiceBlock(config, seeds);
    case 'experts-choice':
      return new ExpertsChoiceBlock(config, seeds);
  }
}
