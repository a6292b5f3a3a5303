/**
 * Multi-head self-attention (Vaswani et al. 2017, §3.2.2; flax `nn.MultiHeadDotProductAttention`
 * as vmoe's `EncoderBlock` uses it, with `kernel_init=xavier_uniform`, zero biases):
 *
 *   q, k, v = x·Wq + bq, x·Wk + bk, x·Wv + bv              [b, m, d] each, split into h heads of dh = d/h
 *   A       = softmax(q kᵀ / √dh)   over the keys (last axis)   [b·h, m, m]
 *   out     = concat_heads(A v)·Wo + bo                    [b, m, d]
 *
 * Layout for wasm: the four projections are 2-D products; the per-head products are batched
 * products over b·h; kᵀ is produced by the transpose that splits the heads ([b, m, h, dh] →
 * [b, h, dh, m]), so no transposed product is ever requested. flax's DenseGeneral kernels
 * [d, h, dh] / [h, dh, d] are stored here reshaped to [d, d].
 *
 * Optional query/key LayerNorm per head (flax `normalize_qk`, no bias), as the Soft MoE configs.
 */
import * as tf from '@tensorflow/tfjs';
import { checkRank } from '../ops/check.js';
import { batchMatMul, linear } from '../ops/matmul.js';
import { softmax } from '../ops/nn.js';
import { transpose } from '../ops/transpose.js';
import { ownVariable, type Module } from '../core/module.js';
import { xavierUniform } from './init.js';
import { layerNorm } from './norm.js';

/** Sizes, options and seeds of a {@link MultiHeadAttention}. */
export interface AttentionConfig {
  /** Token width d. */
  dim: number;
  /** Heads h; must divide d. */
  numHeads: number;
  /** LayerNorm on queries and keys per head (flax `normalize_qk`). */
  qkNorm: boolean;
  /** Epsilon of the query/key LayerNorms. */
  layerNormEps: number;
  /** Seeds of the Wq, Wk, Wv, Wo draws. */
  seeds: [number, number, number, number];
}

/** What {@link MultiHeadAttention.apply} returns. */
export interface AttentionOutput {
  /** Output [b, m, d]. */
  y: tf.Tensor3D;
  /** Attention weights [b, h, m, m], only with `returnWeights`. */
  weights?: tf.Tensor4D;
}

/**
 * Multi-head self-attention (Vaswani et al. 2017; flax `MultiHeadDotProductAttention` as vit_jax uses it):
 * q, k, v and output projections [d, d] with biases (Xavier uniform, zero biases), softmax(q·kᵀ/√dₕ)
 * per head, optional LayerNorm on q and k.
 */
export class MultiHeadAttention implements Module {
  readonly variables: Record<string, tf.Variable>;
  /** Width per head dₕ = d / h. */
  readonly headDim: number;
  /**
   * @param config sizes, options and seeds; kept as `config`.
   * @throws Error if `numHeads` does not divide `dim`.
   */
  constructor(readonly config: AttentionConfig) {
    const { dim, numHeads, seeds } = config;
    if (dim % numHeads !== 0) throw new Error(`numHeads ${numHeads} must divide dim ${dim}`);
    this.headDim = dim / numHeads;
    // flax initialises the DenseGeneral kernel [d, h, dh] with fan_in = d, fan_out = h·dh = d.
    this.variables = {
      wq: ownVariable(xavierUniform([dim, dim], seeds[0]), 'attn_wq'),
      bq: ownVariable(tf.zeros([dim]), 'attn_bq'),
      wk: ownVariable(xavierUniform([dim, dim], seeds[1]), 'attn_wk'),
      bk: ownVariable(tf.zeros([dim]), 'attn_bk'),
      wv: ownVariable(xavierUniform([dim, dim], seeds[2]), 'attn_wv'),
      bv: ownVariable(tf.zeros([dim]), 'attn_bv'),
      wo: ownVariable(xavierUniform([dim, dim], seeds[3]), 'attn_wo'),
      bo: ownVariable(tf.zeros([dim]), 'attn_bo'),
    };
    if (config.qkNorm) {
      this.variables.qScale = ownVariable(tf.ones([this.headDim]), 'attn_q_ln');
      this.variables.kScale = ownVariable(tf.ones([this.headDim]), 'attn_k_ln');
    }
  }

  /** x [b, m, d] → [b, m, d]. */
  apply(x: tf.Tensor3D, returnWeights = false): AttentionOutput {
    checkRank(x, 3, 'attention input [b, m, d]');
    const [b, m, d] = x.shape;
    const { numHeads: h, layerNormEps } = this.config;
    if (d !== this.config.dim)
      throw new Error(`attention input width must be ${this.config.dim}, got [${x.shape.join(', ')}]`);
    const dh = this.headDim;
    const v = this.variables as Record<string, tf.Variable<tf.Rank.R2>> & Record<string, tf.Variable<tf.Rank.R1>>;
    return tf.tidy(() => {
      let q = linear(x, v.wq as tf.Tensor2D, v.bq as tf.Tensor1D).reshape([b, m, h, dh]);
      let k = linear(x, v.wk as tf.Tensor2D, v.bk as tf.Tensor1D).reshape([b, m, h, dh]);
      const value = linear(x, v.wv as tf.Tensor2D, v.bv as tf.Tensor1D).reshape([b, m, h, dh]);
      if (this.config.qkNorm) {
        q = layerNorm(q, v.qScale as tf.Tensor1D, null, layerNormEps);
        k = layerNorm(k, v.kScale as tf.Tensor1D, null, layerNormEps);
      }
      // Scale the queries by 1/√dh before the product (flax `dot_product_attention` does the same).
      const qh = transpose(tf.mul(q, 1 / Math.sqrt(dh)), [0, 2, 1, 3]).reshape([b * h, m, dh]) as tf.Tensor3D;
      const kT = transpose(k, [0, 2, 3, 1]).reshape([b * h, dh, m]) as tf.Tensor3D; // kᵀ per head
      const vh = transpose(value, [0, 2, 1, 3]).reshape([b * h, m, dh]) as tf.Tensor3D;
      const weights = softmax(batchMatMul(qh, kT)) as tf.Tensor3D; // [b·h, m, m], rows sum to 1
      const heads = batchMatMul(weights, vh); // [b·h, m, dh]
      const merged = transpose(heads.reshape([b, h, m, dh]), [0, 2, 1, 3]).reshape([b, m, d]);
      const y = linear(merged, v.wo as tf.Tensor2D, v.bo as tf.Tensor1D) as tf.Tensor3D;
      const out: AttentionOutput = { y };
      if (returnWeights) out.weights = weights.reshape([b, h, m, m]) as tf.Tensor4D;
      return out as unknown as tf.TensorContainer;
    }) as unknown as AttentionOutput;
  }

  /** Dispose every projection (and LayerNorm) variable. */
  dispose(): void {
    for (const t of Object.values(this.variables)) t.dispose();
  }
}
