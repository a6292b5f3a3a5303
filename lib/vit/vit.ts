/**
 * The Vision Transformer with dense and MoE blocks (vmoe `VisionTransformerMoe` with
 * `classifier='gap'`, the setting of every Soft MoE config: no class token):
 *
 *   tokens = PatchEmbed(images) + pos                     [b, m, d]
 *   tokens = EncoderBlock_l(tokens), l = 0 … depth−1      [b, m, d]
 *   z      = mean over tokens of LN(tokens)               [b, d]     (vmoe: `encoder_norm`, then gap)
 *   logits = z·W_head + b_head                            [b, classes]
 *
 * The head kernel starts at zero by default (vmoe `head_kernel_zero_init=True`), so the first
 * loss is exactly ln(classes); `headInit: 'uniform'` draws it instead (config.ts says why).
 * vmoe sets `head_bias_init = −ln(classes)` for its sigmoid loss; with the
 * softmax cross-entropy used here a constant bias has no effect, so it starts at zero.
 *
 * The auxiliary losses of all MoE blocks are summed (vmoe `EncoderMoe`: "Sum auxiliary losses
 * from all blocks"); `lossFunction` in lib/train adds them with `moe.auxLossWeight`.
 */
import * as tf from '@tensorflow/tfjs';
import { checkOptions } from '../ops/check.js';
import { batchMatMul, linear } from '../ops/matmul.js';
import { ownVariable, prefixed, type Module } from '../core/module.js';
import { EncoderBlock } from './block.js';
import { resolveViTConfig, type ResolvedViTConfig, type ViTConfig } from './config.js';
import { fanInUniform } from './init.js';
import { SeedStream } from '../core/random.js';
import type { ForwardOptions, SoftRouting } from './mlp.js';
import { LayerNorm } from './norm.js';
import { PatchEmbed } from './patch-embed.js';

/** What {@link ViT.apply} returns. */
export interface ViTOutput {
  /** [b, classes] */
  logits: tf.Tensor2D;
  /** Sum of the MoE blocks' auxiliary losses (0 when there are none), unweighted. */
  auxLoss: tf.Scalar;
  /** Per-block scalar metrics, keyed `block{l}/{name}`. */
  metrics: Record<string, tf.Scalar>;
  /** The sparse blocks' drop fractions, in block order (the same tensors as in `metrics`). */
  dropFractions: tf.Scalar[];
  /** With `returnRouting`: each Soft MoE block's dispatch and combine weights, by block index. */
  routing?: Record<number, SoftRouting>;
}

/**
 * A Vision Transformer classifier whose MLP blocks are dense, Soft MoE, Tokens Choice or Experts
 * Choice (paper §3; vmoe `VisionTransformerMoe`, `classifier='gap'`): patch embedding with
 * position embeddings, pre-LN encoder blocks, a final LayerNorm, global average pooling and a
 * linear head. images [b, H, W, C] → logits [b, classes]. Owns its variables; dispose it.
 *
 * @example
 * ```ts
 * const model = new ViT({ ...SIZE_PRESETS.tiny, kind: 'soft', moe: { numExperts: 8, slotsPerExpert: 1 }, seed: 0 });
 * const images = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
 * const logits = tf.tidy(() => model.apply(images).logits);      // [2, 10]
 * console.log(model.parameterCount, modelCost(model.config).flopsPerImage.total);
 * tf.dispose([images, logits]);
 * model.dispose();
 * ```
 */
export class ViT implements Module {
  /** The resolved configuration (defaults filled in). */
  readonly config: ResolvedViTConfig;
  /** Patch embedding and position embeddings. */
  readonly patchEmbed: PatchEmbed;
  /** The encoder blocks, in order. */
  readonly blocks: EncoderBlock[];
  /** The LayerNorm after the last block (vmoe `encoder_norm`). */
  readonly encoderNorm: LayerNorm;
  private readonly head: Record<string, tf.Variable>;
  private disposed = false;

  /**
   * @param config sizes and block kinds; every field optional (see {@link resolveViTConfig}).
   * @throws Error if the configuration is invalid (see {@link resolveViTConfig}).
   */
  constructor(config: ViTConfig = {}) {
    this.config = resolveViTConfig(config);
    const c = this.config;
    const seeds = new SeedStream(c.seed);
    // Everything made so far is disposed if a later part fails (bad routerOptions, out of memory):
    // a failed constructor leaves no tensors behind.
    const made: { dispose(): void }[] = [];
    try {
      this.patchEmbed = new PatchEmbed({
        imageSize: c.imageSize,
        channels: c.channels,
        patchSize: c.patchSize,
        dim: c.dim,
        seeds: [seeds.next(), seeds.next()],
      });
      made.push(this.patchEmbed);
      this.blocks = [];
      for (const kind of c.blocks) {
        const block = new EncoderBlock(kind, c, seeds);
        made.push(block);
        this.blocks.push(block);
      }
      this.encoderNorm = new LayerNorm(c.dim, c.layerNormEps);
      made.push(this.encoderNorm);
      // Drawn after every other variable, so the choice does not change the other weights.
      const [kernelSeed, biasSeed] = [seeds.next(), seeds.next()];
      const [kernelShape, biasShape] = [[c.dim, c.numClasses], [c.numClasses]];
      const uniform = c.headInit === 'uniform';
      const kernel = ownVariable(
        uniform ? fanInUniform(kernelShape, c.dim, kernelSeed) : tf.zeros(kernelShape),
        'head_kernel',
      );
      made.push(kernel);
      const bias = ownVariable(uniform ? fanInUniform(biasShape, c.dim, biasSeed) : tf.zeros(biasShape), 'head_bias');
      this.head = { kernel, bias };
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  }

  /** All variables by hierarchical name, in a stable order (checkpoints and optimisers rely on it). */
  get variables(): Record<string, tf.Variable> {
    return {
      ...prefixed('embedding', this.patchEmbed.variables),
      ...Object.assign({}, ...this.blocks.map((b, i) => prefixed(`block${i}`, b.variables))),
      ...prefixed('encoder_norm', this.encoderNorm.variables),
      ...prefixed('head', this.head),
    };
  }

  /** Total number of parameters (every variable's size). */
  get parameterCount(): number {
    return Object.values(this.variables).reduce((s, v) => s + v.size, 0);
  }

  /** images [b, H, W, C] → logits [b, classes], summed auxiliary loss, metrics. */
  apply(images: tf.Tensor4D, options: ForwardOptions = {}): ViTOutput {
    if (this.disposed) throw new Error('this ViT has been disposed');
    checkOptions(options, { training: 'boolean', step: 'seed', returnRouting: 'boolean' }, 'ViT.apply');
    return tf.tidy(() => {
      let x = this.patchEmbed.apply(images);
      const auxLosses: tf.Scalar[] = [];
      const metrics: Record<string, tf.Scalar> = {};
      const dropFractions: tf.Scalar[] = [];
      const routing: Record<number, SoftRouting> = {};
      this.blocks.forEach((block, i) => {
        const out = block.apply(x, options);
        x = out.y;
        if (out.auxLoss) auxLosses.push(out.auxLoss);
        if (out.routing) routing[i] = out.routing;
        for (const [k, v] of Object.entries(out.metrics)) metrics[`block${i}/${k}`] = v;
        if (out.metrics.dropFraction) dropFractions.push(out.metrics.dropFraction);
      });
      const [b, m, d] = x.shape;
      const normed = this.encoderNorm.apply(x) as tf.Tensor3D;
      // Global average pooling over the m tokens as a product with a row of 1/m: on wasm a mean
      // over a non-last axis transposes first.
      const pooled = batchMatMul(tf.fill([b, 1, m], 1 / m) as tf.Tensor3D, normed).reshape([b, d]);
      const logits = linear(
        pooled,
        this.head.kernel as tf.Variable<tf.Rank.R2>,
        this.head.bias as tf.Variable<tf.Rank.R1>,
      ) as tf.Tensor2D;
      const auxLoss = auxLosses.length > 0 ? (tf.addN(auxLosses) as tf.Scalar) : tf.scalar(0);
      return {
        logits,
        auxLoss,
        metrics,
        dropFractions,
        ...(options.returnRouting ? { routing } : {}),
      } as unknown as tf.TensorContainer;
    }) as unknown as ViTOutput;
  }

  /** Dispose every variable of the model; later calls do nothing. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.patchEmbed.dispose();
    for (const b of this.blocks) b.dispose();
    this.encoderNorm.dispose();
    for (const v of Object.values(this.head)) v.dispose();
  }
}
