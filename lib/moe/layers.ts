/**
 * Layer objects: thin owners of tf.Variables around the pure functions (soft-moe.ts,
 * routers/). Functions hold the math, objects hold the variables.
 * Each layer exposes `variables` (named, for optimisers and checkpoints) and `dispose()`.
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt, checkOptions } from '../ops/check.js';
import { ownVariable, type Module } from '../core/module.js';
import { initSeed } from '../core/random.js';
import { denseMLP, type DenseMLPParams } from './dense-mlp.js';
import { initExpertParams, type ExpertInitOptions } from './experts.js';
import type { RouterParams } from './gating.js';
import {
  EXPERTS_CHOICE_OPTION_KINDS,
  expertsChoice,
  type ExpertsChoiceOptions,
  type ExpertsChoiceResult,
} from './routers/experts-choice.js';
import {
  TOKENS_CHOICE_OPTION_KINDS,
  tokensChoice,
  type TokensChoiceOptions,
  type TokensChoiceResult,
} from './routers/tokens-choice.js';
import {
  SOFT_MOE_OPTION_KINDS,
  softMoE,
  slotsFromCapacityFactor,
  type SoftMoEOptions,
  type SoftMoEParams,
  type SoftMoEResult,
} from './soft-moe.js';

/**
 * Configuration of a {@link SoftMoELayer}: sizes d, n, h, the slots per expert p (or a capacity
 * factor), expert initialisation and seed.
 */
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
  /** Initial value of `scale` (§2.3). Default 1 (vmoe `scale_init = ones`). */
  scaleInit?: number;
  /** Std of Φ's normal initialisation. Default 1/√d (vmoe `mu_init = lecun_normal()`). */
  phiInitStd?: number;
}

/** Hidden width of the expert (or dense) MLPs: `hidden` if given, else 4·d (ViT's MLP ratio, Dosovitskiy et al. 2021). */
export function resolveHidden(dim: number, hidden?: number): number {
  const h = hidden ?? 4 * dim;
  checkInt(h, 'hidden');
  return h;
}

/** Sizes and seed of a freshly initialised MoE layer (shared by the layer objects here and lib/layers/). */
export interface MoEInitConfig {
  /** Token width d. */
  dim: number;
  /** Number of experts n. */
  numExperts: number;
  /** Hidden width h of each expert MLP. */
  hidden: number;
  /** Expert initialisation (see initExpertParams). Default 'shared', as vmoe. */
  expertInit?: ExpertInitOptions['mode'];
  /** Seed of all initialisers. Default 0. */
  seed?: number;
}

/**
 * Initial Soft MoE parameters, in variable order phi, scale, w1, b1, w2, b2 (the one copy of
 * the initialisation, used by SoftMoELayer and the tf.layers SoftMoE):
 * Φ [d, n, p] LeCun normal, std 1/√d (vmoe `mu_init = lecun_normal()`; its scale does not change
 * the logits with normalisation on, since Φ is l2-normalised, but it sets how fast Adam turns Φ),
 * drawn with `initSeed(seed, 0)`, std `phiInitStd` when given; `scale` [] = `scaleInit`, default 1
 * (vmoe `scale_init = ones`); experts from initExpertParams with `initSeed(seed, 1)`.
 */
export function initSoftMoEParams(
  config: MoEInitConfig & { slotsPerExpert: number; scaleInit?: number; phiInitStd?: number },
): SoftMoEParams {
  const { dim: d, numExperts: n, slotsPerExpert: p } = config;
  const seed = config.seed ?? 0;
  const scaleInit = config.scaleInit ?? 1;
  if (typeof scaleInit !== 'number' || !Number.isFinite(scaleInit))
    throw new Error(`scaleInit must be a finite number, got ${String(scaleInit)}`);
  const phiInitStd = config.phiInitStd ?? 1 / Math.sqrt(d);
  if (typeof phiInitStd !== 'number' || !Number.isFinite(phiInitStd) || phiInitStd <= 0) {
    throw new Error(`phiInitStd must be a finite number > 0, got ${String(phiInitStd)}`);
  }
  const experts = initExpertParams(n, d, config.hidden, {
    mode: config.expertInit ?? 'shared',
    seed: initSeed(seed, 1),
  });
  const phi = tf.randomNormal([d, n, p], 0, phiInitStd, 'float32', initSeed(seed, 0)) as tf.Tensor3D;
  return { phi, scale: tf.scalar(scaleInit), ...experts };
}

/**
 * Initial sparse-router MoE parameters, in variable order wg, w1, b1, w2, b2 (the one copy, used
 * by the layer objects here and the tf.layers TokensChoiceMoE / ExpertsChoiceMoE): router W_g
 * [d, n] LeCun normal, std 1/√d (vmoe's router is a flax `nn.Dense`, whose default kernel init is
 * lecun_normal), drawn with `initSeed(seed, 0)`; experts from initExpertParams with `initSeed(seed, 1)`.
 */
export function initRouterParams(config: MoEInitConfig): RouterParams {
  const seed = config.seed ?? 0;
  const experts = initExpertParams(config.numExperts, config.dim, config.hidden, {
    mode: config.expertInit ?? 'shared',
    seed: initSeed(seed, 1),
  });
  const wg = tf.randomNormal(
    [config.dim, config.numExperts],
    0,
    1 / Math.sqrt(config.dim),
    'float32',
    initSeed(seed, 0),
  ) as tf.Tensor2D;
  return { wg, ...experts };
}

/**
 * A Soft MoE layer owning phi [d, n, p], scale [] and the expert weights (initSoftMoEParams).
 *
 * @example
 * ```ts
 * const layer = new SoftMoELayer({ dim: 64, numExperts: 16, slotsPerExpert: 1, seed: 0 });
 * const x = tf.randomNormal([8, 49, 64]) as tf.Tensor3D;                // [g, m, d]
 * const y = tf.tidy(() => layer.apply(x).y);                            // [8, 49, 64]
 * const w = tf.tidy(() => layer.apply(x, { returnWeights: true }).dispatch!);   // [8, 49, 16, 1]
 * tf.dispose([x, y, w]);
 * layer.dispose();
 * ```
 */
export class SoftMoELayer implements Module {
  /** Number of experts n. */
  readonly numExperts: number;
  /** Slots per expert p. */
  readonly slotsPerExpert: number;
  /** Token width d. */
  readonly dim: number;
  /** Hidden width h of each expert MLP. */
  readonly hidden: number;
  readonly variables: Record<string, tf.Variable>;
  private readonly options: SoftMoEOptions;

  /**
   * @throws Error if a size is not a positive integer, or neither `slotsPerExpert` nor
   * `capacityFactor` with `numTokens` is given (or they give p < 1).
   */
  constructor(config: SoftMoELayerConfig) {
    if (config == null)
      throw new Error('SoftMoELayer needs a config {dim, numExperts, slotsPerExpert | capacityFactor + numTokens}');
    checkOptions(
      config,
      {
        dim: 'integer',
        numExperts: 'integer',
        hidden: 'integer',
        slotsPerExpert: 'integer',
        capacityFactor: 'number',
        numTokens: 'integer',
        expertInit: ['shared', 'independent'],
        seed: 'seed',
        options: 'object',
        scaleInit: 'number',
        phiInitStd: 'number',
      },
      'SoftMoELayer',
    );
    checkOptions(config.options, SOFT_MOE_OPTION_KINDS, 'SoftMoELayer options');
    checkInt(config.dim, 'dim');
    checkInt(config.numExperts, 'numExperts');
    this.dim = config.dim;
    this.numExperts = config.numExperts;
    this.hidden = resolveHidden(config.dim, config.hidden);
    if (config.slotsPerExpert != null) {
      checkInt(config.slotsPerExpert, 'slotsPerExpert');
      this.slotsPerExpert = config.slotsPerExpert;
    } else if (config.capacityFactor != null && config.numTokens != null) {
      this.slotsPerExpert = slotsFromCapacityFactor(config.numTokens, config.numExperts, config.capacityFactor);
    } else {
      throw new Error('SoftMoELayer needs slotsPerExpert, or capacityFactor together with numTokens');
    }
    this.options = config.options ?? {};
    const init = initSoftMoEParams({
      dim: this.dim,
      numExperts: this.numExperts,
      slotsPerExpert: this.slotsPerExpert,
      hidden: this.hidden,
      expertInit: config.expertInit,
      seed: config.seed,
      scaleInit: config.scaleInit,
      phiInitStd: config.phiInitStd,
    });
    this.variables = Object.fromEntries(Object.entries(init).map(([name, t]) => [name, ownVariable(t)]));
  }

  /**
   * The variables as {@link softMoE} takes them: Φ [d, n, p], scale [], w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d].
   */
  get params(): SoftMoEParams {
    const v = this.variables;
    return {
      phi: v.phi as tf.Variable<tf.Rank.R3>,
      scale: v.scale as tf.Variable<tf.Rank.R0>,
      w1: v.w1 as tf.Variable<tf.Rank.R3>,
      b1: v.b1 as tf.Variable<tf.Rank.R2>,
      w2: v.w2 as tf.Variable<tf.Rank.R3>,
      b2: v.b2 as tf.Variable<tf.Rank.R2>,
    };
  }

  /** Forward pass; extra options override the layer's own for this call. */
  apply(x: tf.Tensor3D, options: SoftMoEOptions = {}): SoftMoEResult {
    return softMoE(x, this.params, { ...this.options, ...options });
  }

  /** Dispose every variable of the layer. */
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}

/** Settings shared by the sparse MoE layers. */
export interface SparseMoELayerConfig {
  /** Token width d. */
  dim: number;
  /** Number of experts n. */
  numExperts: number;
  /** Hidden width h of each expert MLP. Default 4·d (ViT's MLP ratio). */
  hidden?: number;
  /** Expert initialisation (see initExpertParams). Default 'shared', as vmoe. */
  expertInit?: ExpertInitOptions['mode'];
  /** Seed of all initialisers (and of the router noise). Default 0. */
  seed?: number;
}

/** Variables of a sparse MoE layer: router W_g [d, n] and stacked experts. */
function sparseMoEVariables(
  config: SparseMoELayerConfig,
  where: string,
): { hidden: number; variables: Record<string, tf.Variable> } {
  if (config == null) throw new Error(`${where} needs a config {dim, numExperts, options}`);
  checkOptions(
    config,
    {
      dim: 'integer',
      numExperts: 'integer',
      hidden: 'integer',
      expertInit: ['shared', 'independent'],
      seed: 'seed',
      options: 'object',
    },
    where,
  );
  checkInt(config.dim, 'dim');
  checkInt(config.numExperts, 'numExperts');
  const hidden = resolveHidden(config.dim, config.hidden);
  const init = initRouterParams({
    dim: config.dim,
    numExperts: config.numExperts,
    hidden,
    expertInit: config.expertInit,
    seed: config.seed,
  });
  return { hidden, variables: Object.fromEntries(Object.entries(init).map(([name, t]) => [name, ownVariable(t)])) };
}

function routerParamsOf(v: Record<string, tf.Variable>): RouterParams {
  return {
    wg: v.wg as tf.Variable<tf.Rank.R2>,
    w1: v.w1 as tf.Variable<tf.Rank.R3>,
    b1: v.b1 as tf.Variable<tf.Rank.R2>,
    w2: v.w2 as tf.Variable<tf.Rank.R3>,
    b2: v.b2 as tf.Variable<tf.Rank.R2>,
  };
}

export interface TokensChoiceLayerConfig extends SparseMoELayerConfig {
  /** Options of every call (k, capacityFactor, batchPriority, noiseStd, auxLoss, …). */
  options: TokensChoiceOptions;
}

/**
 * The first seed of a sparse layer's router noise, from the layer's seed; it then advances by one
 * per training call.
 */
export function firstNoiseSeed(seed: number): number {
  return seed * 1000003 + 17;
}

/**
 * The options of one Tokens Choice call of a layer (the one copy, used by TokensChoiceLayer and
 * the tf.layers TokensChoiceMoE): router noise only in training, with the seed `nextSeed()` unless
 * the options fix one; without noise, the load loss (which needs noisy gates) falls back to the
 * importance loss, as vmoe's router at evaluation.
 */
export function tokensChoiceCallOptions(
  options: TokensChoiceOptions,
  training: boolean,
  nextSeed: () => number | undefined,
): TokensChoiceOptions {
  const out: TokensChoiceOptions = { ...options };
  if (training && (out.noiseStd ?? 0) > 0) {
    out.seed ??= nextSeed();
  } else {
    out.noiseStd = 0;
    if (out.auxLoss === 'load' || out.auxLoss === 'importance+load') out.auxLoss = 'importance';
  }
  return out;
}

/**
 * A Tokens Choice top-K MoE layer (routers/tokens-choice.ts) owning W_g and the experts.
 * Router noise (options.noiseStd) is drawn only on calls with `training: true`, with a seed that
 * advances on every such call, so a run is reproducible from the layer's seed.
 *
 * @example
 * ```ts
 * const layer = new TokensChoiceLayer({ dim: 64, numExperts: 8, options: { k: 2, capacityFactor: 1.0, noiseStd: 1.0 } });
 * const x = tf.randomNormal([8, 49, 64]) as tf.Tensor3D;
 * const { y, auxLoss } = tf.tidy(() => {
 *   const r = layer.apply(x, { training: true });   // noisy gates, importance + load loss
 *   return { y: r.y, auxLoss: r.auxLoss };
 * });
 * tf.dispose([x, y, auxLoss]);
 * layer.dispose();
 * ```
 */
export class TokensChoiceLayer implements Module {
  /** Number of experts n. */
  readonly numExperts: number;
  /** Token width d. */
  readonly dim: number;
  /** Hidden width h of each expert MLP. */
  readonly hidden: number;
  readonly variables: Record<string, tf.Variable>;
  private readonly options: TokensChoiceOptions;
  private noiseSeed: number;

  /** @throws Error if a size is not a positive integer or `options` is missing. */
  constructor(config: TokensChoiceLayerConfig) {
    if (config?.options == null) throw new Error('TokensChoiceLayer needs options {k, capacityFactor}');
    checkOptions(config.options, TOKENS_CHOICE_OPTION_KINDS, 'TokensChoiceLayer options');
    const { hidden, variables } = sparseMoEVariables(config, 'TokensChoiceLayer');
    this.dim = config.dim;
    this.numExperts = config.numExperts;
    this.hidden = hidden;
    this.variables = variables;
    this.options = config.options;
    this.noiseSeed = firstNoiseSeed(config.seed ?? 0);
  }

  /** The variables as {@link tokensChoice} takes them: W_g [d, n] and the experts. */
  get params(): RouterParams {
    return routerParamsOf(this.variables);
  }

  /** Forward pass. Noise only with `training: true`; other options override the layer's. */
  apply(x: tf.Tensor3D, call: Partial<TokensChoiceOptions> & { training?: boolean } = {}): TokensChoiceResult {
    const { training, ...overrides } = call;
    const options = tokensChoiceCallOptions(
      { ...this.options, ...overrides },
      training ?? false,
      () => this.noiseSeed++,
    );
    return tokensChoice(x, this.params, options);
  }

  /** Dispose every variable of the layer. */
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}

export interface ExpertsChoiceLayerConfig extends SparseMoELayerConfig {
  /** Options of every call (capacityFactor, ceilOrRound, …). */
  options: ExpertsChoiceOptions;
}

/**
 * An Experts Choice MoE layer (routers/experts-choice.ts) owning W_g and the experts.
 *
 * @example
 * ```ts
 * const layer = new ExpertsChoiceLayer({ dim: 64, numExperts: 8, options: { capacityFactor: 1.0 } });
 * const x = tf.randomNormal([8, 49, 64]) as tf.Tensor3D;
 * const y = tf.tidy(() => layer.apply(x).y);   // [8, 49, 64]; each expert took round(49·1/8) = 6 tokens
 * tf.dispose([x, y]);
 * layer.dispose();
 * ```
 */
export class ExpertsChoiceLayer implements Module {
  /** Number of experts n. */
  readonly numExperts: number;
  /** Token width d. */
  readonly dim: number;
  /** Hidden width h of each expert MLP. */
  readonly hidden: number;
  readonly variables: Record<string, tf.Variable>;
  private readonly options: ExpertsChoiceOptions;

  /** @throws Error if a size is not a positive integer or `options` is missing. */
  constructor(config: ExpertsChoiceLayerConfig) {
    if (config?.options == null) throw new Error('ExpertsChoiceLayer needs options {capacityFactor}');
    checkOptions(config.options, EXPERTS_CHOICE_OPTION_KINDS, 'ExpertsChoiceLayer options');
    const { hidden, variables } = sparseMoEVariables(config, 'ExpertsChoiceLayer');
    this.dim = config.dim;
    this.numExperts = config.numExperts;
    this.hidden = hidden;
    this.variables = variables;
    this.options = config.options;
  }

  /** The variables as {@link expertsChoice} takes them: W_g [d, n] and the experts. */
  get params(): RouterParams {
    return routerParamsOf(this.variables);
  }

  /** Forward pass; options given here override the layer's for this call. */
  apply(x: tf.Tensor3D, overrides: Partial<ExpertsChoiceOptions> = {}): ExpertsChoiceResult {
    return expertsChoice(x, this.params, { ...this.options, ...overrides });
  }

  /** Dispose every variable of the layer. */
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}

/** Configuration of a {@link DenseMLPLayer}: width d, hidden width h, seed. */
export interface DenseMLPLayerConfig {
  /** Token width d. */
  dim: number;
  /** Hidden width h. Default 4·d (ViT's MLP ratio). */
  hidden?: number;
  /** Seed of the initialiser. Default 0. */
  seed?: number;
}

/**
 * The dense MLP block (dense-mlp.ts), the baseline every MoE layer replaces, owning w1 [d, h],
 * b1 [h], w2 [h, d], b2 [d]. Same initialisation as one expert (initExpertParams: Xavier uniform,
 * zero biases), so that a dense layer and an MoE layer start comparably.
 *
 * @example
 * ```ts
 * const mlp = new DenseMLPLayer({ dim: 64 });            // hidden 256
 * const x = tf.randomNormal([8, 49, 64]);
 * const y = tf.tidy(() => mlp.apply(x));                  // [8, 49, 64]
 * tf.dispose([x, y]);
 * mlp.dispose();
 * ```
 */
export class DenseMLPLayer implements Module {
  /** Token width d. */
  readonly dim: number;
  /** Hidden width h. */
  readonly hidden: number;
  readonly variables: Record<string, tf.Variable>;

  /** @throws Error if `dim` or `hidden` is not a positive integer. */
  constructor(config: DenseMLPLayerConfig) {
    if (config == null) throw new Error('DenseMLPLayer needs a config {dim}');
    checkOptions(config, { dim: 'integer', hidden: 'integer', seed: 'seed' }, 'DenseMLPLayer');
    checkInt(config.dim, 'dim');
    this.dim = config.dim;
    this.hidden = resolveHidden(config.dim, config.hidden);
    const init = initExpertParams(1, this.dim, this.hidden, { seed: initSeed(config.seed ?? 0, 1) });
    const squeeze = (t: tf.Tensor, shape: number[]) => {
      const out = t.reshape(shape);
      t.dispose();
      return out;
    };
    this.variables = {
      w1: ownVariable(squeeze(init.w1, [this.dim, this.hidden])),
      b1: ownVariable(squeeze(init.b1, [this.hidden])),
      w2: ownVariable(squeeze(init.w2, [this.hidden, this.dim])),
      b2: ownVariable(squeeze(init.b2, [this.dim])),
    };
  }

  /** The variables as {@link denseMLP} takes them: w1 [d, h], b1 [h], w2 [h, d], b2 [d]. */
  get params(): DenseMLPParams {
    const v = this.variables;
    return {
      w1: v.w1 as tf.Variable<tf.Rank.R2>,
      b1: v.b1 as tf.Variable<tf.Rank.R1>,
      w2: v.w2 as tf.Variable<tf.Rank.R2>,
      b2: v.b2 as tf.Variable<tf.Rank.R1>,
    };
  }

  /** y = gelu(x·w1 + b1)·w2 + b2 on every token, x [..., d]. */
  apply(x: tf.Tensor): tf.Tensor {
    return denseMLP(x, this.params);
  }

  /** Dispose every variable of the layer. */
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}
