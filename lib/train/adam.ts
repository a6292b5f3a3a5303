/**
 * Adam (Kingma & Ba 2015, Algorithm 1) with optional decoupled weight decay (AdamW, Loshchilov &
 * Hutter 2019) and global-norm gradient clipping — vmoe's optimiser for every Soft MoE run
 * (`get_adam_config`: b1 0.9, b2 0.999, `gradient_clip.global_norm = 1.0`, decay on kernels only).
 *
 * For each parameter θ with gradient g at update t = 1, 2, …:
 *   g   ← g · min(1, clip / ‖g_all‖₂)                     (global norm over all gradients)
 *   m   ← β₁ m + (1 − β₁) g,     v ← β₂ v + (1 − β₂) g²
 *   θ   ← θ − lr · ( m / (1 − β₁ᵗ) / (√(v / (1 − β₂ᵗ)) + ε)  +  λ θ )   (λ only on decayed θ)
 * ε = 1e-8 as optax. Written by hand (not tf.train.adam) so that the state — the moments and t —
 * is plain named variables that checkpoints save and restore exactly, and the learning rate can
 * change every step without touching tfjs internals.
 */
import * as tf from '@tensorflow/tfjs';
import { ownVariable } from '../core/module.js';
import { checkOptions } from '../ops/check.js';

/** Options of {@link Adam}; defaults as vmoe (`get_adam_config`) and optax. */
export interface AdamOptions {
  /** Decay rate β₁ of the first moment, in [0, 1). Default 0.9 (vmoe). */
  beta1?: number;
  /** Decay rate β₂ of the second moment, in [0, 1). Default 0.999 (vmoe). */
  beta2?: number;
  /** ε added to √v̂, > 0. Default 1e-8 (optax). */
  epsilon?: number;
  /** Decoupled weight decay λ (multiplied by the learning rate). Default 0 (off). */
  weightDecay?: number;
  /** Global-norm clipping threshold, or null for none. Default 1.0 (vmoe). */
  clipNorm?: number | null;
  /**
   * Which parameters decay. Default: weight matrices (rank ≥ 2) except position embeddings and
   * Soft MoE's Φ — vmoe decays the parameters named `kernel`, and neither `posembed_input` nor the router's `mu`
   * is a kernel.
   */
  decays?: (name: string, variable: tf.Variable) => boolean;
  /**
   * Per-parameter learning-rate multiplier (update = multiplier · lr · …). Default 1 for every
   * parameter, as vmoe (one learning rate). Used for Soft MoE's `scale` and Φ
   * (lib/vit/config.ts `scaleLrMultiplier`, `phiLrMultiplier`).
   */
  lrMultiplier?: (name: string) => number;
}

/**
 * The default {@link AdamOptions.decays}: weight matrices (rank ≥ 2) except position
 * embeddings (`…/pos`) and Soft MoE's Φ (`…/phi`), as vmoe decays only `kernel` parameters.
 */
export function defaultDecays(name: string, variable: tf.Variable): boolean {
  return variable.rank >= 2 && !/(^|\/)pos$/.test(name) && !/(^|\/)phi$/.test(name);
}

/** Adam's state as plain data, for checkpoints. */
export interface AdamState {
  /** Updates applied so far (t of the last update). */
  step: number;
  /** First and second moments by parameter name. */
  m: Record<string, tf.Tensor>;
  /** Second moments by parameter name. */
  v: Record<string, tf.Tensor>;
}

/**
 * Adam (Kingma & Ba 2015, Algorithm 1) with optional decoupled weight decay (AdamW) and global-norm
 * gradient clipping, over a fixed set of named variables (see the file header for the update rule).
 * The moments and the step are plain variables, so checkpoints save and restore them exactly
 * ({@link Adam.getState}, {@link Adam.setState}); the learning rate is given to every
 * {@link Adam.apply}.
 *
 * @example
 * ```ts
 * const w = tf.variable(tf.randomNormal([4, 2]));
 * const adam = new Adam({ w }, { clipNorm: 1.0 });
 * const norm = tf.tidy(() => {
 *   const { grads } = tf.variableGrads(() => tf.sum(tf.square(w)), [w]);
 *   return adam.apply({ w: grads[w.name] }, 1e-2);   // the gradient norm before clipping
 * });
 * console.log(norm.dataSync()[0]);
 * norm.dispose(); adam.dispose(); w.dispose();
 * ```
 */
export class Adam {
  /** Decay rate β₁ of the first moment. */
  readonly beta1: number;
  /** Decay rate β₂ of the second moment. */
  readonly beta2: number;
  /** ε added to the denominator. */
  readonly epsilon: number;
  /** Decoupled weight decay λ (0 = off). */
  readonly weightDecay: number;
  /** Global-norm clipping threshold, or null for none. */
  readonly clipNorm: number | null;
  /** Updates applied so far (t of the last update). */
  step = 0;
  private readonly params: Record<string, tf.Variable>;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  private readonly decayed: Set<string>;
  private readonly multipliers: Record<string, number> = {};

  /**
   * @param params the variables to update, by name (the names key the moments and the state).
   * @param options β₁, β₂, ε, weight decay, clipping, and which parameters decay.
   * @throws Error if β₁ or β₂ is outside [0, 1), ε ≤ 0, the weight decay is negative or not finite,
   * or `clipNorm` is not a finite number > 0 or null.
   */
  constructor(params: Record<string, tf.Variable>, options: AdamOptions = {}) {
    checkOptions(
      options,
      {
        beta1: 'number',
        beta2: 'number',
        epsilon: 'number',
        weightDecay: 'number',
        clipNorm: 'number-or-null',
        decays: 'function',
        lrMultiplier: 'function',
      },
      'Adam',
    );
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.clipNorm = options.clipNorm === undefined ? 1.0 : options.clipNorm;
    for (const [name, b] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`Adam ${name} must be in [0, 1), got ${String(b)}`);
    }
    if (!(this.epsilon > 0)) throw new Error(`Adam epsilon must be > 0, got ${String(this.epsilon)}`);
    if (!(this.weightDecay >= 0) || !Number.isFinite(this.weightDecay))
      throw new Error(`weightDecay must be a finite number ≥ 0, got ${String(this.weightDecay)}`);
    if (this.clipNorm != null && !(this.clipNorm > 0 && Number.isFinite(this.clipNorm))) {
      throw new Error(`clipNorm must be a finite number > 0 or null, got ${String(this.clipNorm)}`);
    }
    this.params = params;
    const decays = options.decays ?? defaultDecays;
    this.decayed = new Set(Object.keys(params).filter((n) => decays(n, params[n])));
    for (const name of Object.keys(params)) {
      const k = options.lrMultiplier?.(name) ?? 1;
      if (typeof k !== 'number' || !Number.isFinite(k) || k < 0)
        throw new Error(`Adam lrMultiplier(${JSON.stringify(name)}) must be a finite number ≥ 0, got ${String(k)}`);
      this.multipliers[name] = k;
    }
    for (const [name, p] of Object.entries(params)) {
      // tf.variable shares the initial tensor's data; dispose the tensor itself (no leak).
      this.m[name] = ownVariable(tf.zerosLike(p), undefined, false);
      this.v[name] = ownVariable(tf.zerosLike(p), undefined, false);
    }
  }

  /** Names of the parameters that receive weight decay. */
  get decayedNames(): string[] {
    return [...this.decayed];
  }

  /**
   * Apply one update from gradients keyed by parameter name. Returns the global gradient norm
   * before clipping as a scalar the caller owns (read it outside tidy, then dispose).
   */
  apply(grads: Record<string, tf.Tensor>, learningRate: number): tf.Scalar {
    if (!(learningRate >= 0) || !Number.isFinite(learningRate))
      throw new Error(`learning rate must be a finite number ≥ 0, got ${String(learningRate)}`);
    const names = Object.keys(this.params);
    for (const n of names) {
      if (grads[n] == null) throw new Error(`Adam.apply: no gradient for parameter ${JSON.stringify(n)}`);
    }
    this.step += 1;
    const t = this.step;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    return tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]))))) as tf.Scalar;
      const factor = this.clipNorm != null ? tf.div(this.clipNorm, tf.maximum(norm, this.clipNorm)) : null;
      for (const n of names) {
        const p = this.params[n];
        const g = factor ? tf.mul(grads[n], factor) : grads[n];
        const m = tf.add(tf.mul(this.m[n], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[n], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[n].assign(m);
        this.v[n].assign(v);
        let update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.epsilon));
        if (this.weightDecay > 0 && this.decayed.has(n)) update = tf.add(update, tf.mul(p, this.weightDecay));
        p.assign(tf.sub(p, tf.mul(update, learningRate * this.multipliers[n])));
      }
      return norm;
    });
  }

  /** The state (moments are the live variables: copy before mutating). */
  getState(): AdamState {
    return { step: this.step, m: { ...this.m }, v: { ...this.v } };
  }

  /** Restore moments and step; every parameter's moments must be present with matching shapes. */
  setState(state: {
    step: number;
    m: Record<string, tf.Tensor | Float32Array>;
    v: Record<string, tf.Tensor | Float32Array>;
  }): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new Error(`Adam state step must be an integer ≥ 0, got ${String(state.step)}`);
    for (const n of Object.keys(this.params)) {
      for (const [which, moments] of [
        ['m', state.m],
        ['v', state.v],
      ] as const) {
        const value = moments[n];
        if (value == null) throw new Error(`Adam state has no ${which} for parameter ${JSON.stringify(n)}`);
        const target = which === 'm' ? this.m[n] : this.v[n];
        const size = value instanceof tf.Tensor ? value.size : value.length;
        if (size !== target.size)
          throw new Error(
            `Adam state ${which}/${n} has ${size} values, the parameter has ${target.size} (shape [${target.shape.join(', ')}])`,
          );
        tf.tidy(() =>
          target.assign(
            value instanceof tf.Tensor ? value.reshape(target.shape) : tf.tensor(value, target.shape, 'float32'),
          ),
        );
      }
    }
    this.step = state.step;
  }

  /** Dispose the moment variables (the parameters belong to the caller). */
  dispose(): void {
    for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.dispose();
  }
}
