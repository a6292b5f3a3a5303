/**
 * Shazeer et al. (2017) gating (gating.ts). Expected values computed in float64 by
 * test/fixtures/hand/gating_losses.py (standard library only: math.exp, log1p, erf; written for
 * this test from eqs. 2–5 and Appendix A), with the inputs below:
 *   x = [[1, −0.5, 2], [0.3, 0.8, −1.2]], W_g and W_noise as below, ε = NOISE, k = 2.
 *   clean = x·W_g = [[0.15, 0, 1, 0.4], [0.51, 0.02, −0.81, −0.14]]
 *   H = clean + ε·softplus(x·W_noise) = [[0.57718, −0.66846, 1.14888, 1.47769],
 *                                        [0.32920, 0.68526, −1.40587, 0.16198]]
 *   top-2: token 0 → experts 3, 2 (margin to the 3rd: 0.57); token 1 → experts 1, 0 (margin 0.17)
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { denseMixture, noisyTopKGating, noisyTopKLoad, softmaxGating } from '../../lib/moe/gating.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';
import { expert } from './naive.js';
import { disposeParams, naiveExperts, randomRouterParams } from './random.js';

const X = [
  [1, -0.5, 2],
  [0.3, 0.8, -1.2],
];
const WG = [
  [0.5, -0.2, 0.1, 0.0],
  [0.3, 0.4, -0.6, 0.2],
  [-0.1, 0.2, 0.3, 0.25],
];
const WNOISE = [
  [0.1, 0.2, -0.3, 0.0],
  [-0.2, 0.1, 0.0, 0.3],
  [0.05, -0.1, 0.2, 0.1],
];
const NOISE = [
  [0.5, -1.0, 0.2, 1.5],
  [-0.3, 0.8, -1.1, 0.4],
];

describe('gating (Shazeer et al. 2017)', function () {
  forEachBackend(() => {
    it('softmax gating: G(x) = softmax(x·W_g), rows sum to 1', function () {
      tf.tidy(() => {
        const g = softmaxGating(tf.tensor2d(X), tf.tensor2d(WG));
        // softmax([0.15, 0, 1, 0.4]) and softmax([0.51, 0.02, −0.81, −0.14]), float64 by hand.
        const soft = (v: number[]) => v.map((a) => Math.exp(a) / v.reduce((s, b) => s + Math.exp(b), 0));
        expectClose(g, [...soft([0.15, 0, 1, 0.4]), ...soft([0.51, 0.02, -0.81, -0.14])], 'gates', 1e-6, 1e-5);
      });
    });

    it('noisy top-k gating matches the hand-computed case (given noise)', function () {
      tf.tidy(() => {
        const out = noisyTopKGating(
          tf.tensor2d(X),
          { wg: tf.tensor2d(WG), wNoise: tf.tensor2d(WNOISE) },
          { k: 2, noise: tf.tensor2d(NOISE) },
        );
        expectClose(
          out.noisyLogits,
          [0.5771776, -0.6684596, 1.1488793, 1.4776895, 0.3292041, 0.6852588, -1.4058682, 0.1619784],
          'H',
          1e-5,
          1e-5,
        );
        expectClose(out.gates, [0, 0, 0.4185302, 0.5814698, 0.411915, 0.588085, 0, 0], 'G', 1e-5, 1e-5);
        expect(Array.from(out.topKMask.dataSync())).to.deep.equal([0, 0, 1, 1, 1, 1, 0, 0]);
        // Shazeer's smooth load estimate, eqs. 8–10 (same script): Σ over the 2 tokens of P(x, i).
        expectClose(noisyTopKLoad(out, 2), [0.8393625, 0.475051, 0.7327167, 0.6697391], 'Load', 1e-5, 1e-5);
      });
    });

    it('without noise: softmax over the top k of the clean logits', function () {
      tf.tidy(() => {
        const out = noisyTopKGating(
          tf.tensor2d(X),
          { wg: tf.tensor2d(WG), wNoise: tf.tensor2d(WNOISE) },
          { k: 2, noisy: false },
        );
        // top-2 of [0.15, 0, 1, 0.4] = experts 2, 3: softmax([1, 0.4]); of [0.51, 0.02, …] = experts 0, 1.
        expectClose(out.gates, [0, 0, 0.6456563, 0.3543437, 0.6201064, 0.3798936, 0, 0], 'G', 1e-5, 1e-5);
      });
    });

    it('seeded noise: same seed, same gates; exactly k nonzero gates per token; gradients reach W_g and W_noise', function () {
      tf.tidy(() => {
        const x = tf.randomNormal([16, 3], 0, 1, 'float32', 1);
        const params = { wg: tf.tensor2d(WG), wNoise: tf.tensor2d(WNOISE) };
        const a = noisyTopKGating(x, params, { k: 2, seed: 3 }).gates;
        const b = noisyTopKGating(x, params, { k: 2, seed: 3 }).gates;
        const c = noisyTopKGating(x, params, { k: 2, seed: 4 }).gates;
        expect(Array.from(a.dataSync())).to.deep.equal(Array.from(b.dataSync()));
        expect(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]).to.be.greaterThan(1e-3);
        expect(Array.from(tf.sum(tf.greater(a, 0).cast('int32'), -1).dataSync())).to.deep.equal(new Array(16).fill(2));
        expectClose(tf.sum(a, -1), new Array(16).fill(1), 'rows sum to 1', 1e-6, 0);
        const r = tf.randomNormal([16, 4], 0, 1, 'float32', 5);
        const [gWg, gWn] = tf.grads((wg: tf.Tensor, wn: tf.Tensor) =>
          tf.sum(
            tf.mul(
              noisyTopKGating(x, { wg: wg as tf.Tensor2D, wNoise: wn as tf.Tensor2D }, { k: 2, seed: 3 }).gates,
              r,
            ),
          ),
        )([params.wg, params.wNoise]);
        expect(tf.max(tf.abs(gWg)).dataSync()[0]).to.be.greaterThan(1e-4);
        expect(tf.max(tf.abs(gWn)).dataSync()[0]).to.be.greaterThan(1e-4);
      });
    });

    it('denseMixture: y = Σᵢ G(x)ᵢ Eᵢ(x) (eq. 1) equals a loop over experts', function () {
      const params = randomRouterParams(3, 4, 5, 7);
      tf.tidy(() => {
        const x = tf.tensor2d(X);
        const gates = softmaxGating(x, params.wg) as tf.Tensor2D;
        const y = denseMixture(x, gates, params);
        const gv = gates.arraySync();
        const experts = naiveExperts(params);
        const want = X.flatMap((xi, t) => {
          const out = [0, 0, 0];
          for (let e = 0; e < 4; e++) expert(e, xi, experts).forEach((v, j) => (out[j] += gv[t][e] * v));
          return out;
        });
        expectClose(y, want, 'y');
      });
      disposeParams(params);
    });
  });
});
