/**
 * Layer objects: thin owners of tf.Variables around the pure functions (soft-moe.ts,
 * routers/). Functions hold the math, objects hold the variables (../shared/ARCHITECTURE.md).
 * Each layer exposes `variables` (named, for optimisers and checkpoints) and `dispose()`.
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt } from '../ops/check.js';
import { initExpertParams, type ExpertInitOptions } from './experts.js';
import { softMoE, slotsFromCapacityFactor, type SoftMoEOptions, type SoftMoEParams, type SoftMoEResult } from './soft-moe.js';

/** A module that owns named variables. */
export interface Module {
  /** Variables by name, in a stable order (checkpoints rely on it). */
  readonly variables: Record<string, tf.Variable>;
  dispose(): void;
}

/** Make a trainable variable from a freshly made tensor and release the tensor (no leak). */
export function ownVariable(initial: tf.Tensor, name?: string, trainable = true): tf.Variable {
  const v = tf.variable(initial, trainable, name ? `${name}_${variableCounter++}` : undefined);
  initial.dispose();
  return v;
}
let variableCounter = 0;

/** Prefix every key of a module's variables, to nest modules. */
export function prefixed(prefix: string, vars: Record<string, tf.Variable>): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [`${prefix}/${k}`, v]));
}

export interface SoftMoELayerConfig {
  /** Token width d. */
  dim: number;
  /** Number of experts n. */
  numExperts: number;
  /** Hidden width h of each expert MLP. Default 4·d (ViT's MLP ratio). */
  hidden?: number;
  /** Slots per expert p. Give this or `capacityFactor` with `numTokens`. */
  slotsPerExpert?: number;
  /** Capacity factor: p = round(m·cf/n) as in vmoe (needs `numTokens`). */
  capacityFactor?: number;
  /** Tokens per sequence m, only needed with `capacityFactor`. */
  numTokens?: number;
  /** Expert initialisation (see initExpertParams). Default 'shared', as vmoe. */
  expertInit?: ExpertInitOptions['mode'];
  /** Seed of all initialisers. Default 0. */
  seed?: number;
  /** Forwarded to softMoE on every call (normalize, dispatch/combine ablations, …). */
  options?: SoftMoEOptions;
}

/**
 * A Soft MoE layer owning phi [d, n, p], scale [] and the expert weights.
 * Φ is initialised with LeCun normal, std 1/√d (vmoe `mu_init = lecun_normal()`); its scale
 * is irrelevant with normalisation on, since Φ is l2-normalised. `scale` starts at 1 (vmoe
 * `scale_init = ones`).
 */
export class SoftMoELayer implements Module {
  readonly numExperts: number;
  readonly slotsPerExpert: number;
  readonly dim: number;
  readonly hidden: number;
  readonly variables: Record<string, tf.Variable>;
  private readonly options: SoftMoEOptions;

  constructor(config: SoftMoELayerConfig) {
    checkInt(config.dim, 'dim');
    checkInt(config.numExperts, 'numExperts');
    this.dim = config.dim;
    this.numExperts = config.numExperts;
    this.hidden = config.hidden ?? 4 * config.dim;
    checkInt(this.hidden, 'hidden');
    if (config.slotsPerExpert != null) {
      checkInt(config.slotsPerExpert, 'slotsPerExpert');
      this.slotsPerExpert = config.slotsPerExpert;
    } else if (config.capacityFactor != null && config.numTokens != null) {
      this.slotsPerExpert = slotsFromCapacityFactor(config.numTokens, config.numExperts, config.capacityFactor);
    } else {
      throw new Error('SoftMoELayer needs slotsPerExpert, or capacityFactor together with numTokens');
    }
    this.options = config.options ?? {};
    const seed = config.seed ?? 0;
    const d = this.dim;
    const n = this.numExperts;
    const p = this.slotsPerExpert;
    const experts = initExpertParams(n, d, this.hidden, { mode: config.expertInit ?? 'shared', seed: seed + 1 });
    this.variables = {
      phi: ownVariable(tf.randomNormal([d, n, p], 0, 1 / Math.sqrt(d), 'float32', seed)),
      scale: ownVariable(tf.scalar(1)),
      w1: ownVariable(experts.w1),
      b1: ownVariable(experts.b1),
      w2: ownVariable(experts.w2),
      b2: ownVariable(experts.b2),
    };
  }

  get params(): SoftMoEParams {
    const v = this.variables;
    return { phi: v.phi as tf.Variable<tf.Rank.R3>, scale: v.scale as tf.Variable<tf.Rank.R0>, w1: v.w1 as tf.Variable<tf.Rank.R3>, b1: v.b1 as tf.Variable<tf.Rank.R2>, w2: v.w2 as tf.Variable<tf.Rank.R3>, b2: v.b2 as tf.Variable<tf.Rank.R2> };
  }

  /** Forward pass; extra options override the layer's own for this call. */
  apply(x: tf.Tensor3D, options: SoftMoEOptions = {}): SoftMoEResult {
    return softMoE(x, this.params, { ...this.options, ...options });
  }

  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}
