/**
 * What the tf.layers MoE layers share: argument checks, the input shape [batch, tokens, d],
 * weight creation from the library's own initialisers, and the settings every MoE layer has
 * (experts, their hidden width, their initialisation, the seed).
 *
 * These layers are adapters: they create and own `LayerVariable`s (so `model.fit`, `model.save`
 * and `tf.loadLayersModel` handle them) and call the one copy of the math in lib/moe with the
 * variables' values. Each sequence of the batch is one routing group (as lib/vit and vmoe's ViT:
 * `group_size` = tokens per image).
 */
import * as tf from '@tensorflow/tfjs';
import { checkInt, checkOneOf } from '../ops/check.js';
import type { ExpertInitOptions, ExpertParams } from '../moe/experts.js';
import { resolveHidden } from '../moe/layers.js';

/** The arguments of every tf.layers layer (name, trainable, inputShape, …). */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** A shape as tf.layers passes it: null for an axis not known yet (the batch). */
export type LayerShape = (number | null)[];

/** Settings shared by the MoE layers. Every field round-trips through `getConfig`. */
export interface MoELayerArgs extends LayerArgs {
  /** Number of experts n. */
  numExperts: number;
  /** Hidden width h of each expert MLP. Default 4·d (ViT's MLP ratio), d the input width. */
  hidden?: number | null;
  /**
   * Expert initialisation (lib/moe/experts.ts `initExpertParams`): 'shared' (default) starts
   * every expert from one draw, as vmoe (`nn.vmap(..., split_rngs={'params': False})`);
   * 'independent' draws each expert separately.
   */
  expertInit?: ExpertInitOptions['mode'];
  /**
   * Seed of the initialisers (the same draws as the library's layer objects in lib/moe/layers.ts
   * with this seed). Default: none, a fresh seed per layer (Keras' convention; the layer
   * objects default to 0). The draw happens when the layer is built.
   */
  seed?: number | null;
}

const nameCounts = new Map<string, number>();
/** `prefix`_1, `prefix`_2, …: default layer names (tfjs would make 'soft_mo_e_SoftMoE1' of 'SoftMoE'). */
function uniqueName(prefix: string): string {
  const count = (nameCounts.get(prefix) ?? 0) + 1;
  nameCounts.set(prefix, count);
  return `${prefix}_${count}`;
}

/** Run `fn`, prefixing any error with `what` (the layer class and name). */
export function withContext<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

/** Check the settings shared by the MoE layers (at construction, so a bad config fails at once). */
export function checkMoELayerArgs(args: MoELayerArgs): void {
  if (args == null || typeof args !== 'object')
    throw new Error(`arguments must be an object {numExperts, …}, got ${String(args)}`);
  checkInt(args.numExperts, 'numExperts');
  if (args.hidden != null) checkInt(args.hidden, 'hidden');
  if (args.expertInit != null) checkOneOf(args.expertInit, ['shared', 'independent'] as const, 'expertInit');
  if (args.seed != null) checkInt(args.seed, 'seed', 0);
}

/** Throw unless `value` is true, false or absent. */
export function checkOptionalBoolean(value: unknown, name: string): void {
  if (value != null && typeof value !== 'boolean')
    throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

/**
 * An initialiser that hands tf.layers one tensor made by the library's own initialisers
 * (lib/moe/layers.ts), so a tf.layers layer starts from exactly the values of the layer object
 * with the same seed. `addWeight` calls `apply` once and disposes what it returns.
 */
class TensorInitializer extends tf.serialization.Serializable {
  static className = 'SoftMoEWorkbookTensorInitializer';
  constructor(private readonly value: tf.Tensor) {
    super();
  }
  fromConfigUsesCustomObjects(): boolean {
    return false;
  }
  apply(shape: LayerShape): tf.Tensor {
    if (shape.join() !== this.value.shape.join()) {
      throw new Error(`initial value has shape [${this.value.shape.join(', ')}], the weight [${shape.join(', ')}]`);
    }
    return this.value;
  }
  getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

/** The single input tensor of a call (tf.layers passes Tensor | Tensor[]). */
export function singleInput(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1)
      throw new Error(`expects one input tensor [batch, tokens, d], got a list of ${inputs.length}`);
    return inputs[0]!;
  }
  return inputs;
}

/**
 * The base of the MoE layers: input [batch, tokens, d] → output of the same shape.
 * Subclasses give the initial weights (`makeInitialWeights`) and the forward (`call`, which
 * hands the input and the weights to a lib/moe function).
 */
export abstract class MoELayerBase extends tf.layers.Layer {
  /** Number of experts n. */
  readonly numExperts: number;
  /** Hidden width as given (null: 4·d, resolved in `build`). */
  readonly hiddenArg: number | null;
  /** Expert initialisation as given ('shared' or 'independent'; null: the default 'shared'). */
  readonly expertInit: NonNullable<ExpertInitOptions['mode']> | null;
  /** Seed of the initial weights as given (null: a fresh seed per layer). */
  readonly seed: number | null;
  /** Input width d, known once built. */
  protected dim = 0;
  /** The weights by name, in the order `makeInitialWeights` returns them, once built. */
  protected readonly weightsByName: Record<string, tf.LayerVariable> = {};

  /** `namePrefix`: the default name's stem ('soft_moe' → soft_moe_1, soft_moe_2, …). */
  constructor(args: MoELayerArgs, namePrefix: string) {
    super(args == null || typeof args !== 'object' ? args : { ...args, name: args.name ?? uniqueName(namePrefix) });
    withContext(this.label, () => checkMoELayerArgs(args));
    this.numExperts = args.numExperts;
    this.hiddenArg = args.hidden ?? null;
    this.expertInit = args.expertInit ?? null;
    this.seed = args.seed ?? null;
    this.inputSpec = [new tf.InputSpec({ ndim: 3 })];
  }

  /** "SoftMoE soft_moe_1": how errors name this layer. */
  protected get label(): string {
    return `${this.getClassName()} ${this.name}`;
  }

  /** Check a shape [batch, tokens, d] with d known; return it as [batch, tokens, d]. */
  protected checkShape(inputShape: LayerShape | LayerShape[]): [number | null, number | null, number] {
    const nested = Array.isArray(inputShape[0]);
    if (nested && inputShape.length !== 1)
      throw new Error(`${this.label}: expects one input [batch, tokens, d], got ${inputShape.length} input shapes`);
    const shape = (nested ? inputShape[0] : inputShape) as LayerShape;
    if (!Array.isArray(shape) || shape.length !== 3) {
      throw new Error(
        `${this.label}: input must be [batch, tokens, d] (rank 3), got shape ${JSON.stringify(inputShape)}`,
      );
    }
    const [batch, tokens, d] = shape;
    if (d == null)
      throw new Error(`${this.label}: the input width d (last axis) must be known, got shape ${JSON.stringify(shape)}`);
    if (this.built && d !== this.dim) {
      throw new Error(
        `${this.label}: input width d must be ${this.dim} (the width it was built for), got shape ${JSON.stringify(shape)}`,
      );
    }
    return [batch ?? null, tokens ?? null, d];
  }

  /** Hidden width h of the experts for input width d. */
  protected hiddenFor(dim: number): number {
    return resolveHidden(dim, this.hiddenArg ?? undefined);
  }

  /** The seed of the initialisers: the given one, else a fresh draw. */
  protected initSeed(): number {
    return this.seed ?? Math.floor(Math.random() * 2 ** 31);
  }

  /** The initial weights for an input of `tokens` tokens (may be null) of width `dim`, by name. */
  protected abstract makeInitialWeights(tokens: number | null, dim: number): Record<string, tf.Tensor>;

  override build(inputShape: LayerShape | LayerShape[]): void {
    const [, tokens, dim] = this.checkShape(inputShape);
    tf.tidy(() => {
      const init = withContext(this.label, () => this.makeInitialWeights(tokens, dim));
      for (const [name, value] of Object.entries(init)) {
        this.weightsByName[name] = this.addWeight(name, value.shape, 'float32', new TensorInitializer(value));
      }
    });
    this.dim = dim;
    this.inputSpec = [new tf.InputSpec({ ndim: 3, axes: { [-1]: dim } })];
    this.built = true;
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    return [...this.checkShape(inputShape)];
  }

  /** The input of a call as a float32 [batch, tokens, d] tensor, with errors naming the layer. */
  protected checkedInput(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor3D {
    const x = withContext(this.label, () => singleInput(inputs));
    if (!(x instanceof tf.Tensor))
      throw new Error(`${this.label}: input must be a tf.Tensor [batch, tokens, d], got ${String(x)}`);
    this.checkShape(x.shape);
    if (x.dtype !== 'float32') throw new Error(`${this.label}: input must have dtype float32, got ${x.dtype}`);
    return x as tf.Tensor3D;
  }

  /** The current value of a weight (the variable itself: gradients reach it). */
  protected weight<T extends tf.Tensor>(name: string): T {
    const v = this.weightsByName[name];
    if (v == null)
      throw new Error(`${this.label}: weight ${JSON.stringify(name)} does not exist (is the layer built?)`);
    return v.read() as T;
  }

  /** The expert weights w1, b1, w2, b2. */
  protected expertParams(): ExpertParams {
    return { w1: this.weight('w1'), b1: this.weight('b1'), w2: this.weight('w2'), b2: this.weight('b2') };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      numExperts: this.numExperts,
      hidden: this.hiddenArg,
      expertInit: this.expertInit,
      seed: this.seed,
      ...super.getConfig(),
    };
  }
}
