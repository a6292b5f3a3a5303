/**
 * Tokens Choice top-K routing (routers/tokens-choice.ts): against a plain loop (naive.ts) on
 * random configurations, the paper's invariants (capacity, at most K experts per token, K-major
 * priority, BPR and plain order), and the auxiliary-loss wiring. The golden vectors are checked in
 * routers-golden.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { TokensChoiceLayer } from '../../lib/moe/layers.js';
import { importanceLoss } from '../../lib/moe/losses.js';
import { tokensChoice, type TokensChoiceOptions } from '../../lib/moe/routers/tokens-choice.js';
import type { RouterParams } from '../../lib/moe/gating.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';
import { naiveTokensChoice, type Mat } from './naive.js';
import { disposeParams, naiveExperts, randomRouterParams } from './random.js';

/** Router whose logits are the token itself: d = n, wg = I, so gates = softmax(x). */
function identityRouter(n: number, h = 4, seed = 3): RouterParams {
  const p = randomRouterParams(n, n, h, seed);
  p.wg.dispose();
  return { ...p, wg: tf.eye(n) as tf.Tensor2D };
}

function ints(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

describe('tokensChoice (paper §2.1, Appendix B; vmoe top-experts-per-item)', function () {
  forEachBackend(() => {
    describe('equals a plain loop over tokens and choices', function () {
      // Expected capacities by hand, m = 10 tokens, n = 5 experts:
      const configs: Array<{ options: TokensChoiceOptions; capacity: number }> = [
        { options: { k: 1, capacityFactor: 1 }, capacity: 2 }, // ceil(10·1·1/5) = 2
        { options: { k: 2, capacityFactor: 0.625, ceilOrRound: 'round' }, capacity: 2 }, // round(2.5) = 2 (half to even)
        { options: { k: 2, capacityFactor: 0.875, ceilOrRound: 'round', batchPriority: true }, capacity: 4 }, // round(3.5) = 4
        { options: { k: 3, capacityFactor: 1.25, multipleOf: 4, batchPriority: true }, capacity: 8 }, // ceil(7.5) = 8, a multiple of 4
        { options: { k: 2, capacityFactor: 0.5, multipleOf: 3 }, capacity: 3 }, // ceil(2) = 2 → 3
        { options: { k: 1, capacity: 1, batchPriority: true }, capacity: 1 }, // override
      ];
      configs.forEach(({ options, capacity }, index) => {
        it(`config ${index}: ${JSON.stringify(options)} → C = ${capacity}`, function () {
          const [g, m, d, n, h] = [3, 10, 6, 5, 8];
          const params = randomRouterParams(d, n, h, 100 + index, 3);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 200 + index) as tf.Tensor3D;
          const out = tokensChoice(x, params, options);
          expect(out.capacity).to.equal(capacity);
          const gates = out.gates.arraySync() as Mat[];
          const xs = x.arraySync() as Mat[];
          const experts = naiveExperts(params);
          const want = xs.map((xg, b) =>
            naiveTokensChoice(xg, gates[b], options.k, capacity, options.batchPriority ?? false, experts),
          );
          expect(out.expertIndex.arraySync(), 'expertIndex').to.deep.equal(want.map((w) => w.expertIndex));
          expect(out.bufferIndex.arraySync(), 'bufferIndex').to.deep.equal(want.map((w) => w.bufferIndex));
          expect(
            (out.kept.arraySync() as number[][][]).map((a) => a.map((r) => r.map(Boolean))),
            'kept',
          ).to.deep.equal(want.map((w) => w.kept));
          expectClose(
            out.y,
            want.flatMap((w) => w.y.flat()),
            'y',
          );
          tf.dispose([x, out as unknown as tf.TensorContainer]);
          disposeParams(params);
        });
      });
    });

    it('never exceeds capacity, never uses more than K experts per token, one token per slot', function () {
      tf.tidy(() => {
        const [g, m, d, n, h, k] = [4, 16, 8, 4, 8, 2];
        // A peaked router (scale 4) so that most tokens want the same experts and overflow.
        const params = randomRouterParams(d, n, h, 7, 4);
        const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 8) as tf.Tensor3D;
        const out = tokensChoice(x, params, { k, capacityFactor: 0.5, returnWeights: true });
        const C = out.capacity; // ceil(16·2·0.5/4) = 4
        expect(C).to.equal(4);
        expect(Math.max(...ints(out.expertLoad)), 'expert load ≤ C').to.be.at.most(C);
        const dispatch = out.dispatch!.arraySync() as number[][][][]; // [g, m, n, C]
        for (let b = 0; b < g; b++) {
          for (let e = 0; e < n; e++) {
            for (let c = 0; c < C; c++) {
              const occupants = dispatch[b].reduce((s, tok) => s + tok[e][c], 0);
              expect(occupants, `slot (${b}, ${e}, ${c})`).to.be.at.most(1);
            }
          }
          for (let i = 0; i < m; i++) {
            const experts = dispatch[b][i].filter((slots) => slots.some((v) => v > 0)).length;
            const slots = dispatch[b][i].flat().reduce((s, v) => s + v, 0);
            expect(experts, `experts of token (${b}, ${i})`).to.be.at.most(k);
            expect(slots, `slots of token (${b}, ${i})`).to.equal(experts); // one slot per expert
          }
        }
        // This case does drop choices (otherwise the capacity bound would be vacuous).
        expect(out.choiceDropFraction.dataSync()[0]).to.be.greaterThan(0);
        // Combine weights are the raw gates of the kept choices: each token's sum is ≤ 1.
        const combineSums = tf.sum(out.combine!.reshape([g, m, -1]), -1).dataSync();
        expect(Math.max(...combineSums)).to.be.at.most(1 + 1e-6);
      });
    });

    it('gives every 1st choice priority over any 2nd choice (K-major order)', function () {
      tf.tidy(() => {
        // Token 0 prefers expert 0 then 1; token 1 prefers expert 1 then 0; C = 1.
        const x = tf.tensor3d([
          [
            [2, 0],
            [0, 2],
          ],
        ]);
        const out = tokensChoice(x, identityRouter(2), { k: 2, capacity: 1 });
        expect(out.expertIndex.arraySync()).to.deep.equal([
          [
            [0, 1],
            [1, 0],
          ],
        ]);
        // Both 1st choices take position 0; both 2nd choices come after them (position 1, dropped).
        // Token-major order would have let token 0's 2nd choice take expert 1 before token 1.
        expect(out.bufferIndex.arraySync()).to.deep.equal([
          [
            [0, 1],
            [0, 1],
          ],
        ]);
        expect(ints(out.kept)).to.deep.equal([1, 0, 1, 0]);
      });
    });

    it('orders tokens by sequence position without BPR and by descending top-1 gate with BPR', function () {
      tf.tidy(() => {
        // Three tokens all preferring expert 0, with top-1 gates σ(0.5) < σ(1) < σ(2); C = 1.
        const x = tf.tensor3d([
          [
            [0.5, 0],
            [1, 0],
            [2, 0],
          ],
        ]);
        const plain = tokensChoice(x, identityRouter(2), { k: 1, capacity: 1 });
        expect(plain.bufferIndex.arraySync()).to.deep.equal([[[0], [1], [2]]]);
        expect(ints(plain.tokenKept)).to.deep.equal([1, 0, 0]);
        const bpr = tokensChoice(x, identityRouter(2), { k: 1, capacity: 1, batchPriority: true });
        expect(bpr.bufferIndex.arraySync()).to.deep.equal([[[2], [1], [0]]]);
        expect(ints(bpr.tokenKept)).to.deep.equal([0, 0, 1]);
        // Drop fractions over the 3 tokens: 2/3 in both orders.
        expectClose(plain.dropFraction, [2 / 3], 'plain drop fraction', 1e-6, 0);
        expectClose(bpr.dropFraction, [2 / 3], 'BPR drop fraction', 1e-6, 0);
      });
    });

    it('keeps sequence order among tokens with equal top-1 gates under BPR (a stable sort, like jnp.argsort)', function () {
      tf.tidy(() => {
        // Tokens 1–4 identical (equal gates), token 0 weaker; C = 2 → BPR keeps tokens 1 and 2.
        const x = tf.tensor3d([
          [
            [0.1, 0],
            [1, 0],
            [1, 0],
            [1, 0],
            [1, 0],
          ],
        ]);
        const out = tokensChoice(x, identityRouter(2), { k: 1, capacity: 2, batchPriority: true });
        expect(out.bufferIndex.arraySync()).to.deep.equal([[[4], [0], [1], [2], [3]]]);
        expect(ints(out.tokenKept)).to.deep.equal([0, 1, 1, 0, 0]);
      });
    });

    it('combines with the raw gates (not renormalised over the K choices)', function () {
      tf.tidy(() => {
        const x = tf.tensor3d([
          [
            [1, 0.5, 0],
            [0, 0.2, 1],
          ],
        ]);
        const out = tokensChoice(x, identityRouter(3), { k: 2, capacityFactor: 2 });
        // softmax([1, 0.5, 0]) = [0.5065, 0.3072, 0.1863]: the two kept gates sum to 0.8137, not 1.
        const gates = out.gates.arraySync() as number[][][];
        expectClose(
          out.combineWeight,
          [gates[0][0][0], gates[0][0][1], gates[0][1][2], gates[0][1][1]],
          'combineWeight',
        );
        expectClose(out.combineWeight.slice([0, 0, 0], [1, 1, 2]).sum(), [0.5065 + 0.3072], 'sum of token 0', 2e-4, 0);
      });
    });

    it('TokensChoiceLayer: noise only with training: true, a fresh reproducible draw per training call', function () {
      const make = () =>
        new TokensChoiceLayer({
          dim: 6,
          numExperts: 4,
          hidden: 8,
          seed: 2,
          options: { k: 1, capacityFactor: 1, noiseStd: 1 },
        });
      const [a, b] = [make(), make()];
      tf.tidy(() => {
        const x = tf.randomNormal([2, 8, 6], 0, 1, 'float32', 3) as tf.Tensor3D;
        const gates = (l: TokensChoiceLayer, training: boolean) =>
          Array.from(l.apply(x, { training }).gates.dataSync());
        const clean = Array.from(tf.softmax(tf.matMul(x.reshape([16, 6]), a.variables.wg)).dataSync());
        expectClose(gates(a, false), clean, 'evaluation: clean gates', 1e-6, 1e-5);
        expect(gates(a, false), 'evaluation is deterministic').to.deep.equal(gates(a, false));
        const a1 = gates(a, true);
        const a2 = gates(a, true);
        expect(a1, 'each training call draws new noise').to.not.deep.equal(a2);
        expect([gates(b, true), gates(b, true)], 'same layer seed, same draws').to.deep.equal([a1, a2]);
        expect(a.apply(x, { training: false }).auxLosses.load, 'no load loss without noise').to.equal(undefined);
      });
      a.dispose();
      b.dispose();
    });

    describe('auxiliary losses', function () {
      const [g, m, d, n, h] = [2, 8, 6, 4, 8];
      it('is the importance loss of the gates by default without noise (vmoe, deterministic)', function () {
        tf.tidy(() => {
          const params = randomRouterParams(d, n, h, 11);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 12) as tf.Tensor3D;
          const out = tokensChoice(x, params, { k: 2, capacityFactor: 1 });
          expectClose(out.auxLoss, importanceLoss(out.gates).dataSync(), 'auxLoss', 1e-7, 1e-5);
          expect(out.auxLosses.load).to.equal(undefined);
          const gshard = tokensChoice(x, params, { k: 2, capacityFactor: 1, auxLoss: 'gshard' });
          expectClose(gshard.auxLoss, gshard.auxLosses.gshard.dataSync(), 'gshard');
          expect(tokensChoice(x, params, { k: 2, capacityFactor: 1, auxLoss: 'none' }).auxLoss.dataSync()[0]).to.equal(
            0,
          );
        });
      });

      it('adds the load loss with noise, importance on the clean gates; the noise follows the seed', function () {
        tf.tidy(() => {
          const params = randomRouterParams(d, n, h, 13);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 14) as tf.Tensor3D;
          const clean = tokensChoice(x, params, { k: 2, capacityFactor: 1 });
          const a = tokensChoice(x, params, { k: 2, capacityFactor: 1, noiseStd: 1, seed: 5 });
          const b = tokensChoice(x, params, { k: 2, capacityFactor: 1, noiseStd: 1, seed: 5 });
          const c = tokensChoice(x, params, { k: 2, capacityFactor: 1, noiseStd: 1, seed: 6 });
          expect(Array.from(a.gates.dataSync())).to.deep.equal(Array.from(b.gates.dataSync()));
          expect(tf.max(tf.abs(tf.sub(a.gates, c.gates))).dataSync()[0]).to.be.greaterThan(1e-4);
          expect(tf.max(tf.abs(tf.sub(a.gates, clean.gates))).dataSync()[0]).to.be.greaterThan(1e-4);
          expectClose(
            a.auxLosses.importance,
            clean.auxLosses.importance.dataSync(),
            'importance on clean gates',
            1e-7,
            1e-5,
          );
          expectClose(
            a.auxLoss,
            [a.auxLosses.importance.dataSync()[0] + a.auxLosses.load!.dataSync()[0]],
            'importance + load',
            1e-7,
            1e-5,
          );
        });
      });

      it('passes gradients from the auxiliary loss into wg (no gradient through the top-k choice)', function () {
        tf.tidy(() => {
          const params = randomRouterParams(d, n, h, 15);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 16) as tf.Tensor3D;
          for (const auxLoss of ['importance', 'load', 'gshard'] as const) {
            const grad = tf.grad(
              (wg: tf.Tensor) =>
                tokensChoice(
                  x,
                  { ...params, wg: wg as tf.Tensor2D },
                  { k: 2, capacityFactor: 1, noiseStd: 1, seed: 1, auxLoss },
                ).auxLoss,
            )(params.wg);
            expect(tf.max(tf.abs(grad)).dataSync()[0], auxLoss).to.be.greaterThan(1e-6);
          }
        });
      });
    });
  });
});
