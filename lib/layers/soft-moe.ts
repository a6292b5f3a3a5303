/**
 * Soft MoE as a tf.layers layer — "From Sparse to Soft Mixtures of Experts" (Puigcerver et al.,
 * ICLR 2024, arXiv:2308.00951), §2, eqs. 1–3 and the §2.3 normalisation. The math is
 * lib/moe/soft-moe.ts `softMoE`; this class only owns the weights as tf.layers variables.
 *
 *   const model = tf.sequential({ layers: [
 *     tf.layers.dense({ inputShape: [49, 16], units: 32 }),          // tokens [b, 49, 32]
 *     new SoftMoE({ numExperts: 4, slotsPerExpert: 2 }),              // [b, 49, 32]
 *     tf.layers.globalAveragePooling1d(),
 *     tf.layers.dense({ units: 10, activation: 'softmax' }),
 *   ] });
 *
 * Weights: phi [d, n, p], scale [], w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d], initialised
 * as lib/moe/layers.ts `initSoftMoEParams` (Φ LeCun normal as vmoe's `mu_init`, scale 1, experts
 * Xavier uniform, shared or independent).
 */
import * as tf from '@tensorflow/tfjs';
import { checkOneOf, checkPositive, checkInt } from '../ops/check.js';
import { initSoftMoEParams } from '../moe/layers.js';
import { slotsFromCapacityFactor, softMoE, type SoftMoEOptions, type WeightMode } from '../moe/soft-moe.js';
import { checkOptionalBoolean, MoELayerBase, withContext, type MoELayerArgs } from './base.js';

/** The softMoE options a SoftMoE layer passes on every call (the Table 2 ablations). */
export type SoftMoELayerOptions = Pick<SoftMoEOptions, 'normalize' | 'dispatch' | 'combine' | 'experts'>;

/** Arguments of the SoftMoE layer; every field round-trips through `getConfig`. */
export interface SoftMoEArgs extends MoELayerArgs {
  /** Slots per expert p. Give this or `capacityFactor`. */
  slotsPerExpert?: number | null;
  /**
   * Capacity factor: p = round(m·cf/n) for m tokens, as vmoe's SoftRouter without `num_slots`
   * (lib/moe/soft-moe.ts `slotsFromCapacityFactor`); needs the token count m in the input shape.
   */
  capacityFactor?: number | null;
  /** l2-normalise X and Φ and multiply by the learned `scale` (§2.3). Default true. */
  normalize?: boolean | null;
  /** 'softmax' (eq. 1, default) or 'uniform' (Table 2 ablation). */
  dispatch?: WeightMode | null;
  /** 'softmax' (eq. 3, default) or 'uniform' (Table 2 ablation). */
  combine?: WeightMode | null;
  /** 'mlp' (default) or 'identity' (Table 2 ablation; the expert weights then go unused). */
  experts?: 'mlp' | 'identity' | null;
}

/**
 * A Soft MoE layer for tf.sequential / tf.model: [batch, tokens, d] → [batch, tokens, d].
 *
 * @example
 * ```ts
 * const model = tf.sequential({
 *   layers: [tf.layers.inputLayer({ inputShape: [49, 64] }), new SoftMoE({ numExperts: 16, slotsPerExpert: 1 })],
 * });
 * model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
 * const y = model.predict(tf.zeros([2, 49, 64])) as tf.Tensor;   // [2, 49, 64]
 * y.dispose();
 * ```
 */
export class SoftMoE extends MoELayerBase {
  /** Name under which the class is registered for serialization (`model.save` / `tf.loadLayersModel`). */
  static className = 'SoftMoE';
  /** Slots per expert as given (null: from `capacityFactor`). */
  readonly slotsPerExpertArg: number | null;
  /** Capacity factor as given (null: `slotsPerExpert` was given). */
  readonly capacityFactor: number | null;
  /** The Soft MoE options of every call (normalisation and Table 2 ablations). */
  readonly options: SoftMoELayerOptions;
  /** Slots per expert p, known once built (from `slotsPerExpert`, or from the capacity factor). */
  slotsPerExpert: number | null;

  /**
   * A Soft MoE layer (weights are made in `build`, when d and m are known).
   *
   * @throws Error unless exactly one of `slotsPerExpert` and `capacityFactor` is given, or if an argument is invalid.
   */
  constructor(args: SoftMoEArgs) {
    super(args, 'soft_moe');
    withContext(this.label, () => {
      if ((args.slotsPerExpert == null) === (args.capacityFactor == null)) {
        throw new Error(
          `give exactly one of slotsPerExpert and capacityFactor, got slotsPerExpert = ${String(args.slotsPerExpert)}, capacityFactor = ${String(args.capacityFactor)}`,
        );
      }
      if (args.slotsPerExpert != null) checkInt(args.slotsPerExpert, 'slotsPerExpert');
      if (args.capacityFactor != null) checkPositive(args.capacityFactor, 'capacityFactor');
      checkOptionalBoolean(args.normalize, 'normalize');
      if (args.dispatch != null) checkOneOf(args.dispatch, ['softmax', 'uniform'] as const, 'dispatch');
      if (args.combine != null) checkOneOf(args.combine, ['softmax', 'uniform'] as const, 'combine');
      if (args.experts != null) checkOneOf(args.experts, ['mlp', 'identity'] as const, 'experts');
    });
    this.slotsPerExpertArg = args.slotsPerExpert ?? null;
    this.slotsPerExpert = this.slotsPerExpertArg;
    this.capacityFactor = args.capacityFactor ?? null;
    // Only the options given: softMoE applies its own defaults to the rest.
    const options: SoftMoELayerOptions = {};
    if (args.normalize != null) options.normalize = args.normalize;
    if (args.dispatch != null) options.dispatch = args.dispatch;
    if (args.combine != null) options.combine = args.combine;
    if (args.experts != null) options.experts = args.experts;
    this.options = options;
  }

  protected makeInitialWeights(tokens: number | null, dim: number): Record<string, tf.Tensor> {
    if (this.slotsPerExpert == null) {
      if (tokens == null)
        throw new Error(
          `capacityFactor ${this.capacityFactor} needs the number of tokens in the input shape, got [batch, null, ${dim}]; give slotsPerExpert instead, or a fixed token count`,
        );
      this.slotsPerExpert = slotsFromCapacityFactor(tokens, this.numExperts, this.capacityFactor!);
    }
    const init = initSoftMoEParams({
      dim,
      numExperts: this.numExperts,
      slotsPerExpert: this.slotsPerExpert,
      hidden: this.hiddenFor(dim),
      expertInit: this.expertInit ?? undefined,
      seed: this.initSeed(),
    });
    return { ...init };
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = this.checkedInput(inputs);
      const params = {
        phi: this.weight<tf.Tensor3D>('phi'),
        scale: this.weight<tf.Scalar>('scale'),
        ...this.expertParams(),
      };
      return softMoE(x, params, this.options).y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      slotsPerExpert: this.slotsPerExpertArg,
      capacityFactor: this.capacityFactor,
      normalize: this.options.normalize ?? null,
      dispatch: this.options.dispatch ?? null,
      combine: this.options.combine ?? null,
      experts: this.options.experts ?? null,
      ...super.getConfig(),
    };
  }
}

tf.serialization.registerClass(SoftMoE, 'soft-moe-workbook');
