/**
 * Pre-LayerNorm Transformer encoder block (ViT, Dosovitskiy et al. 2021, eqs. 2–3; vmoe
 * `EncoderBlock`):
 *   x' = x + MSA(LN(x))
 *   y  = x' + MLP(LN(x'))      MLP = dense, Soft MoE, Tokens Choice or Experts Choice
 * No dropout: vmoe's Soft MoE configs set `dropout_rate = attention_dropout_rate = 0`.
 */
import * as tf from '@tensorflow/tfjs';
import { prefixed, type Module } from '../core/module.js';
import { MultiHeadAttention } from './attention.js';
import type { BlockKind, ResolvedViTConfig } from './config.js';
import { SeedStream } from '../core/random.js';
import { createMlpBlock, type ForwardOptions, type MlpBlock, type MlpOutput } from './mlp.js';
import { LayerNorm } from './norm.js';

/**
 * One pre-LayerNorm encoder block (see above): x' = x + MSA(LN(x)), y = x' + MLP(LN(x')), the MLP slot
 * dense or an MoE. Owns its variables.
 */
export class EncoderBlock implements Module {
  /** LayerNorm before the attention. */
  readonly norm1: LayerNorm;
  /** Self-attention. */
  readonly attention: MultiHeadAttention;
  /** LayerNorm before the MLP slot. */
  readonly norm2: LayerNorm;
  /** The MLP slot: dense or one of the MoEs. */
  readonly mlp: MlpBlock;
  /**
   * A block with fresh weights: two LayerNorms, attention and the MLP slot of `kind`.
   *
   * @param kind what the MLP slot holds; kept as `kind`.
   * @param config the model's resolved configuration.
   * @param seeds the model's seed stream; attention takes four seeds, the MLP slot one.
   */
  constructor(
    readonly kind: BlockKind,
    config: ResolvedViTConfig,
    seeds: SeedStream,
  ) {
    // A part that fails (bad router options) must not leave the parts made before it behind.
    const made: { dispose(): void }[] = [];
    try {
      this.norm1 = new LayerNorm(config.dim, config.layerNormEps);
      made.push(this.norm1);
      this.attention = new MultiHeadAttention({
        dim: config.dim,
        numHeads: config.numHeads,
        qkNorm: config.qkNorm,
        layerNormEps: config.layerNormEps,
        seeds: [seeds.next(), seeds.next(), seeds.next(), seeds.next()],
      });
      made.push(this.attention);
      this.norm2 = new LayerNorm(config.dim, config.layerNormEps);
      made.push(this.norm2);
      this.mlp = createMlpBlock(kind, config, seeds);
    } catch (e) {
      for (const m of made) m.dispose();
      throw e;
    }
  }

  get variables(): Record<string, tf.Variable> {
    return {
      ...prefixed('norm1', this.norm1.variables),
      ...prefixed('attention', this.attention.variables),
      ...prefixed('norm2', this.norm2.variables),
      ...prefixed(this.kind === 'dense' ? 'mlp' : 'moe', this.mlp.variables),
    };
  }

  /** x [b, m, d] → y [b, m, d] and the MLP's auxiliary loss and metrics. */
  apply(x: tf.Tensor3D, options: ForwardOptions = {}): MlpOutput {
    return tf.tidy(() => {
      const afterAttention = tf.add(x, this.attention.apply(this.norm1.apply(x) as tf.Tensor3D).y) as tf.Tensor3D;
      const mlp = this.mlp.apply(this.norm2.apply(afterAttention) as tf.Tensor3D, options);
      return { ...mlp, y: tf.add(afterAttention, mlp.y) as tf.Tensor3D } as unknown as tf.TensorContainer;
    }) as unknown as MlpOutput;
  }

  /** Dispose every variable of the block. */
  dispose(): void {
    this.norm1.dispose();
    this.attention.dispose();
    this.norm2.dispose();
    this.mlp.dispose();
  }
}
