/**
 * The sparse MoE layers the paper compares Soft MoE with (arXiv:2308.00951 §2.1, Appendix B), as
 * tf.layers layers: Tokens Choice top-K (V-MoE, Riquelme et al. 2021) and Experts Choice (Zhou et
 * al. 2022). The math is lib/moe/routers/ `tokensChoice` / `expertsChoice`; these classes own
 * the weights wg [d, n], w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d] as tf.layers variables,
 * initialised as lib/moe/layers.ts `initRouterParams` (W_g LeCun normal as vmoe's flax router,
 * experts Xavier uniform, shared or independent).
 *
 * Auxiliary loss (Tokens Choice only; Experts Choice is balanced by construction): each call
 * computes the router's auxiliary loss (importance, load, … as `auxLoss` selects), and the layer
 * registers it with `addLoss`, weighted by `auxLossWeight`. tf.layers adds every layer's losses
 * to the training loss in `model.fit` (and `model.calculateLosses()` returns them for a custom
 * loop). The loss is the one of the layer's most recent call: apply a layer once per forward.
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt, checkOneOf, checkPositive } from '../ops/check.js';
import type { CeilOrRound } from '../moe/dispatch.js';
import type { RouterParams } from '../moe/gating.js';
import { firstNoiseSeed, initRouterParams, tokensChoiceCallOptions } from '../moe/layers.js';
import { VMOE_AUX_LOSS_WEIGHT, type AuxLossKind } from '../moe/losses.js';
import { expertsChoice, type ExpertsChoiceOptions } from '../moe/routers/experts-choice.js';
import { tokensChoice, type TokensChoiceOptions } from '../moe/routers/tokens-choice.js';
import { checkOptionalBoolean, MoELayerBase, withContext, type MoELayerArgs } from './base.js';

/** Capacity settings shared by both sparse layers (give `capacityFactor` or `capacity`). */
export interface SparseCapacityArgs {
  /** Capacity factor cf > 0 (the expert capacity C follows from the tokens of each call). */
  capacityFactor?: number | null;
  /** A fixed capacity C per expert and sequence; instead of `capacityFactor`. */
  capacity?: number | null;
  /** How C is rounded: the router function's default when absent (Tokens Choice 'ceil', Experts Choice 'round'). */
  ceilOrRound?: CeilOrRound | null;
  /** Round C up to a multiple of this. Default none. */
  multipleOf?: number | null;
}

/** Check the capacity settings; return the ones given, as router options. */
function capacityOptions(args: SparseCapacityArgs): SparseCapacityArgs {
  if ((args.capacityFactor == null) === (args.capacity == null)) {
    throw new Error(
      `give exactly one of capacityFactor and capacity, got capacityFactor = ${String(args.capacityFactor)}, capacity = ${String(args.capacity)}`,
    );
  }
  if (args.capacityFactor != null) checkPositive(args.capacityFactor, 'capacityFactor');
  if (args.capacity != null) checkInt(args.capacity, 'capacity');
  if (args.ceilOrRound != null) checkOneOf(args.ceilOrRound, ['ceil', 'round'] as const, 'ceilOrRound');
  if (args.multipleOf != null) checkInt(args.multipleOf, 'multipleOf');
  return {
    capacityFactor: args.capacityFactor ?? null,
    capacity: args.capacity ?? null,
    ceilOrRound: args.ceilOrRound ?? null,
    multipleOf: args.multipleOf ?? null,
  };
}

/** The given (non-null) entries of an options record: the router function applies its defaults to the rest. */
function given<T extends object>(options: { [K in keyof T]?: T[K] | null }): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v != null)) as T;
}

/** The base of the sparse layers: router and expert weights. */
abstract class SparseMoEBase extends MoELayerBase {
  protected makeInitialWeights(_tokens: number | null, dim: number): Record<string, tf.Tensor> {
    const init = initRouterParams({
      dim,
      numExperts: this.numExperts,
      hidden: this.hiddenFor(dim),
      expertInit: this.expertInit ?? undefined,
      seed: this.initSeed(),
    });
    return { ...init };
  }

  /** The built weights as the router functions take them: W_g [d, n] and the experts. */
  protected routerParams(): RouterParams {
    return { wg: this.weight<tf.Tensor2D>('wg'), ...this.expertParams() };
  }
}

/** Arguments of the TokensChoiceMoE layer; every field round-trips through `getConfig`. */
export interface TokensChoiceMoEArgs extends MoELayerArgs, SparseCapacityArgs {
  /** K, experts per token, 1 ≤ K ≤ n. */
  k: number;
  /** Batch Prioritized Routing (V-MoE §4.1). Default false. */
  batchPriority?: boolean | null;
  /** Router noise std during training (vmoe `noise_std`; the logits get N(0, (noiseStd/n)²)). Default 0. */
  noiseStd?: number | null;
  /** Which auxiliary loss (lib/moe/routers/tokens-choice.ts; default 'importance', with noise 'importance+load'). */
  auxLoss?: AuxLossKind | null;
  /** Weight of the auxiliary loss in the training loss. Default 0.005 (V-MoE); 0 adds none. */
  auxLossWeight?: number | null;
}

/** A Tokens Choice top-K MoE layer: [batch, tokens, d] → [batch, tokens, d]. */
export class TokensChoiceMoE extends SparseMoEBase {
  /** Name under which the class is registered for serialization. */
  static className = 'TokensChoiceMoE';
  /** The router options of every call (only those given; tokensChoice defaults the rest). */
  readonly options: TokensChoiceOptions;
  /** Weight of the auxiliary loss added with `addLoss` (default 0.005, V-MoE; 0 adds none). */
  readonly auxLossWeight: number;
  private readonly auxLossWeightArg: number | null;
  /** The auxiliary loss of the most recent call (a scalar, disposed with the scope of that call). */
  private lastAuxLoss: tf.Scalar | null = null;
  private noiseSeed: number | null = null;

  /**
   * A Tokens Choice layer (weights are made in `build`).
   *
   * @throws Error if K, the capacity arguments, the noise or `auxLossWeight` is invalid.
   */
  constructor(args: TokensChoiceMoEArgs) {
    super(args, 'tokens_choice_moe');
    const options = withContext(this.label, () => {
      checkInt(args.k, 'k');
      if (args.k > args.numExperts) throw new Error(`k must be ≤ numExperts = ${args.numExperts}, got k = ${args.k}`);
      const capacity = capacityOptions(args);
      checkOptionalBoolean(args.batchPriority, 'batchPriority');
      if (
        args.noiseStd != null &&
        !(typeof args.noiseStd === 'number' && Number.isFinite(args.noiseStd) && args.noiseStd >= 0)
      ) {
        throw new Error(`noiseStd must be a finite number ≥ 0, got ${String(args.noiseStd)}`);
      }
      if (args.auxLoss != null)
        checkOneOf(args.auxLoss, ['importance', 'load', 'importance+load', 'gshard', 'none'] as const, 'auxLoss');
      if ((args.auxLoss === 'load' || args.auxLoss === 'importance+load') && !((args.noiseStd ?? 0) > 0)) {
        throw new Error(
          `auxLoss ${JSON.stringify(args.auxLoss)} needs noisy gates (noiseStd > 0), got noiseStd = ${String(args.noiseStd ?? 0)}`,
        );
      }
      if (
        args.auxLossWeight != null &&
        !(typeof args.auxLossWeight === 'number' && Number.isFinite(args.auxLossWeight) && args.auxLossWeight >= 0)
      ) {
        throw new Error(`auxLossWeight must be a finite number ≥ 0, got ${String(args.auxLossWeight)}`);
      }
      return given<TokensChoiceOptions>({
        k: args.k,
        ...capacity,
        batchPriority: args.batchPriority,
        noiseStd: args.noiseStd,
        auxLoss: args.auxLoss,
      });
    });
    this.options = options;
    this.auxLossWeightArg = args.auxLossWeight ?? null;
    this.auxLossWeight = args.auxLossWeight ?? VMOE_AUX_LOSS_WEIGHT;
    if (this.seed != null) this.noiseSeed = firstNoiseSeed(this.seed);
    if (this.auxLossWeight > 0) this.addLoss(() => this.weightedAuxLoss());
  }

  /** auxLossWeight × the auxiliary loss of the latest call (0 if that call's scope has ended). */
  private weightedAuxLoss(): tf.Scalar {
    if (this.lastAuxLoss == null || this.lastAuxLoss.isDisposed) return tf.scalar(0);
    return tf.mul(this.lastAuxLoss, this.auxLossWeight);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean } = {}): tf.Tensor {
    const options = tokensChoiceCallOptions(this.options, kwargs.training ?? false, () =>
      this.noiseSeed == null ? undefined : this.noiseSeed++,
    );
    // Keep y and the auxiliary loss: they live in the caller's scope (model.fit's gradient scope
    // reads the loss through addLoss after the forward).
    const { y, auxLoss } = tf.tidy(() => {
      const result = tokensChoice(this.checkedInput(inputs), this.routerParams(), options);
      return { y: result.y, auxLoss: result.auxLoss };
    });
    // A call outside any scope would otherwise keep the previous loss alive until disposal.
    if (this.lastAuxLoss != null && this.lastAuxLoss !== auxLoss) this.lastAuxLoss.dispose();
    this.lastAuxLoss = auxLoss;
    return y;
  }

  override dispose(): ReturnType<tf.layers.Layer['dispose']> {
    this.lastAuxLoss?.dispose();
    this.lastAuxLoss = null;
    return super.dispose();
  }

  /** The constructor arguments, for serialization (round-trips through the constructor). */
  override getConfig(): tf.serialization.ConfigDict {
    const o = this.options;
    return {
      k: o.k,
      capacityFactor: o.capacityFactor ?? null,
      capacity: o.capacity ?? null,
      ceilOrRound: o.ceilOrRound ?? null,
      multipleOf: o.multipleOf ?? null,
      batchPriority: o.batchPriority ?? null,
      noiseStd: o.noiseStd ?? null,
      auxLoss: o.auxLoss ?? null,
      auxLossWeight: this.auxLossWeightArg,
      ...super.getConfig(),
    };
  }
}

/** Arguments of the ExpertsChoiceMoE layer; every field round-trips through `getConfig`. */
export type ExpertsChoiceMoEArgs = MoELayerArgs & SparseCapacityArgs;

/** An Experts Choice MoE layer (each expert takes its top-C tokens): [batch, tokens, d] → same. */
export class ExpertsChoiceMoE extends SparseMoEBase {
  /** Name under which the class is registered for serialization. */
  static className = 'ExpertsChoiceMoE';
  /** The router options of every call (only those given; expertsChoice defaults the rest). */
  readonly options: ExpertsChoiceOptions;

  /**
   * An Experts Choice layer (weights are made in `build`).
   *
   * @throws Error if the capacity arguments are invalid.
   */
  constructor(args: ExpertsChoiceMoEArgs) {
    super(args, 'experts_choice_moe');
    this.options = withContext(this.label, () => given<ExpertsChoiceOptions>(capacityOptions(args)));
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => expertsChoice(this.checkedInput(inputs), this.routerParams(), this.options).y);
  }

  /** The constructor arguments, for serialization (round-trips through the constructor). */
  override getConfig(): tf.serialization.ConfigDict {
    const o = this.options;
    return {
      capacityFactor: o.capacityFactor ?? null,
      capacity: o.capacity ?? null,
      ceilOrRound: o.ceilOrRound ?? null,
      multipleOf: o.multipleOf ?? null,
      ...super.getConfig(),
    };
  }
}

tf.serialization.registerClass(TokensChoiceMoE, 'soft-moe-workbook');
tf.serialization.registerClass(ExpertsChoiceMoE, 'soft-moe-workbook');
