/**
 * Patch embedding, LayerNorm and multi-head attention against plain loops in float64 written
 * from the definitions (ViT §3.1, Ba et al. 2016, Vaswani et al. 2017 §3.2.2).
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { expectClose, forEachBackend } from '../helpers/golden.js';
import { MultiHeadAttention } from '../../lib/vit/attention.js';
import { layerNorm } from '../../lib/vit/norm.js';
import { addPositions, PatchEmbed, patchify } from '../../lib/vit/patch-embed.js';

/** Deterministic test values in [-1, 1) (no tfjs randomness involved). */
function values(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + salt * 0.61) * Math.cos(0.3 * i * salt + 1));
}

forEachBackend(() => {
  describe('vit/patch-embed', function () {
    it('patchify cuts P×P patches in raster order, each flattened (row, column, channel)', function () {
      const [b, h, w, c, p] = [2, 8, 8, 2, 4];
      const data = values(b * h * w * c, 1);
      const images = tf.tensor4d(data, [b, h, w, c]);
      const got = patchify(images, p);
      expect(got.shape).to.deep.equal([b, 4, p * p * c]);
      // Plain loop: patch (pr, pc) of image n, feature (i, j, ch).
      const want: number[] = [];
      for (let n = 0; n < b; n++)
        for (let pr = 0; pr < h / p; pr++)
          for (let pc = 0; pc < w / p; pc++)
            for (let i = 0; i < p; i++)
              for (let j = 0; j < p; j++)
                for (let ch = 0; ch < c; ch++)
                  want.push(Math.fround(data[((n * h + pr * p + i) * w + pc * p + j) * c + ch]));
      expectClose(got, want, 'patches (a pure rearrangement: exact)', 0, 0);
      tf.dispose([images, got]);
    });

    it('PatchEmbed is patches·kernel + bias + position embedding', function () {
      const embed = new PatchEmbed({ imageSize: 8, channels: 1, patchSize: 4, dim: 3, seeds: [5, 6] });
      const data = values(64, 2);
      const images = tf.tensor4d(data, [1, 8, 8, 1]);
      const got = embed.apply(images);
      const kernel = embed.variables.kernel.arraySync() as number[][];
      const bias = embed.variables.bias.arraySync() as number[];
      const pos = embed.variables.pos.arraySync() as number[][];
      const want: number[] = [];
      for (let t = 0; t < 4; t++) {
        const [pr, pc] = [Math.floor(t / 2), t % 2];
        for (let e = 0; e < 3; e++) {
          let s = bias[e] + pos[t][e];
          for (let i = 0; i < 4; i++)
            for (let j = 0; j < 4; j++) s += data[(pr * 4 + i) * 8 + pc * 4 + j] * kernel[i * 4 + j][e];
          want.push(s);
        }
      }
      expectClose(got, want, 'embedded tokens');
      tf.dispose([images, got]);
      embed.dispose();
    });

    it('rejects images of the wrong size and patch sizes that do not divide', function () {
      const embed = new PatchEmbed({ imageSize: 8, channels: 1, patchSize: 4, dim: 3, seeds: [5, 6] });
      const wrong = tf.zeros([1, 9, 9, 1]) as tf.Tensor4D;
      expect(() => embed.apply(wrong)).to.throw(/images must be \[b, 8, 8, 1\], got \[1, 9, 9, 1\]/);
      expect(() => patchify(wrong, 4)).to.throw(/patchSize 4 must divide the image height 9/);
      wrong.dispose();
      embed.dispose();
    });
  });

  describe('vit/norm: LayerNorm', function () {
    it('normalises over the last axis, then scales and shifts', function () {
      const data = values(2 * 5, 3).map((v, i) => v * (i + 1));
      const scale = [0.5, 1, 1.5, 2, -1];
      const bias = [0.1, 0, -0.1, 0.2, 0];
      const got = layerNorm(tf.tensor2d(data, [2, 5]), tf.tensor1d(scale), tf.tensor1d(bias), 1e-6);
      const want: number[] = [];
      for (let r = 0; r < 2; r++) {
        const row = data.slice(r * 5, r * 5 + 5);
        const mean = row.reduce((a, b) => a + b, 0) / 5;
        const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 5;
        row.forEach((v, i) => want.push(((v - mean) / Math.sqrt(variance + 1e-6)) * scale[i] + bias[i]));
      }
      expectClose(got, want, 'layerNorm');
      got.dispose();
    });
  });

  describe('vit/attention: multi-head self-attention', function () {
    it('matches a plain loop over images, heads, queries and keys', function () {
      const [b, m, d, h] = [2, 3, 4, 2];
      const dh = d / h;
      const attention = new MultiHeadAttention({
        dim: d,
        numHeads: h,
        qkNorm: false,
        layerNormEps: 1e-6,
        seeds: [1, 2, 3, 4],
      });
      // Non-zero biases so that their placement is tested too.
      for (const name of ['bq', 'bk', 'bv', 'bo'])
        attention.variables[name].assign(tf.tensor1d(values(d, name.charCodeAt(1))));
      const xData = values(b * m * d, 7);
      const x = tf.tensor3d(xData, [b, m, d]);
      const { y, weights } = attention.apply(x, true);
      const W = (n: string) => attention.variables[n].arraySync() as number[][];
      const B = (n: string) => attention.variables[n].arraySync() as number[];
      const [wq, wk, wv, wo] = [W('wq'), W('wk'), W('wv'), W('wo')];
      const [bq, bk, bv, bo] = [B('bq'), B('bk'), B('bv'), B('bo')];
      const proj = (row: number[], w: number[][], bias: number[]) =>
        bias.map((bb, j) => bb + row.reduce((s, v, i) => s + v * w[i][j], 0));
      const wantY: number[] = [];
      const wantA: number[] = [];
      for (let n = 0; n < b; n++) {
        const rows = Array.from({ length: m }, (_, t) => xData.slice((n * m + t) * d, (n * m + t + 1) * d));
        const q = rows.map((r) => proj(r, wq, bq));
        const k = rows.map((r) => proj(r, wk, bk));
        const v = rows.map((r) => proj(r, wv, bv));
        const heads: number[][] = rows.map(() => new Array(d).fill(0));
        const probs: number[][][] = [];
        for (let hh = 0; hh < h; hh++) {
          const ph: number[][] = [];
          for (let i = 0; i < m; i++) {
            const logits = Array.from({ length: m }, (_, j) => {
              let s = 0;
              for (let e = 0; e < dh; e++) s += q[i][hh * dh + e] * k[j][hh * dh + e];
              return s / Math.sqrt(dh);
            });
            const mx = Math.max(...logits);
            const ex = logits.map((l) => Math.exp(l - mx));
            const z = ex.reduce((a, c) => a + c, 0);
            const p = ex.map((e) => e / z);
            ph.push(p);
            for (let e = 0; e < dh; e++) heads[i][hh * dh + e] = p.reduce((s, pj, j) => s + pj * v[j][hh * dh + e], 0);
          }
          probs.push(ph);
        }
        for (const row of heads) wantY.push(...proj(row, wo, bo));
        for (const ph of probs) for (const p of ph) wantA.push(...p);
      }
      expectClose(y, wantY, 'attention output');
      expectClose(weights as tf.Tensor, wantA, 'attention weights [b, h, m, m]');
      tf.dispose([x, y, weights as tf.Tensor]);
      attention.dispose();
    });

    it('with qk-norm, queries and keys are layer-normalised per head (rows of A still sum to 1)', function () {
      const attention = new MultiHeadAttention({
        dim: 8,
        numHeads: 2,
        qkNorm: true,
        layerNormEps: 1e-6,
        seeds: [1, 2, 3, 4],
      });
      expect(Object.keys(attention.variables)).to.include.members(['qScale', 'kScale']);
      const x = tf.tensor3d(values(2 * 5 * 8, 4), [2, 5, 8]);
      const { y, weights } = attention.apply(x, true);
      expect(y.shape).to.deep.equal([2, 5, 8]);
      const sums = tf.sum(weights as tf.Tensor, -1);
      expectClose(sums, new Array(2 * 2 * 5).fill(1), 'attention rows sum to 1');
      tf.dispose([x, y, weights as tf.Tensor, sums]);
      attention.dispose();
    });
  });
});

forEachBackend(() => {
  describe('vit/norm and vit/patch-embed: closed-form gradients', function () {
    it('LayerNorm and the position-embedding add have the gradients of the composed ops', function () {
      const x = tf.tensor3d(
        values(3 * 5 * 6, 11).map((v, i) => v * (1 + (i % 7))),
        [3, 5, 6],
      );
      const scale = tf.tensor1d(values(6, 12));
      const bias = tf.tensor1d(values(6, 13));
      const pos = tf.tensor2d(values(5 * 6, 14), [5, 6]);
      const r = tf.tensor3d(values(3 * 5 * 6, 15), [3, 5, 6]);
      const composed = (xx: tf.Tensor, s: tf.Tensor, b: tf.Tensor, p: tf.Tensor) => {
        const xp = tf.add(xx, p);
        const mean = tf.mean(xp, -1, true);
        const c = tf.sub(xp, mean);
        const y = tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), 1e-6))), s), b);
        return tf.sum(tf.mul(y, r));
      };
      const ours = (xx: tf.Tensor, s: tf.Tensor, b: tf.Tensor, p: tf.Tensor) =>
        tf.sum(
          tf.mul(
            layerNorm(addPositions(xx as tf.Tensor3D, p as tf.Tensor2D), s as tf.Tensor1D, b as tf.Tensor1D, 1e-6),
            r,
          ),
        );
      const want = tf.grads(composed)([x, scale, bias, pos]);
      const got = tf.grads(ours)([x, scale, bias, pos]);
      ['x', 'scale', 'bias', 'pos'].forEach((name, i) =>
        expectClose(got[i], Array.from(want[i].dataSync()), `d${name}`, 1e-5, 1e-4),
      );
      tf.dispose([x, scale, bias, pos, r, ...want, ...got]);
    });
  });
});
