/**
 * The shared dispatcher (dispatch.ts) and the paper's invariants that rest on it:
 * capacity rules (vmoe compute_capacity), zero-gradient decisions, dispatch/combine against a
 * plain loop, Soft MoE's normalisations, "no token dropped", per-sequence independence, and the
 * cross-sequence dependence of a sparse router whose group spans several sequences.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { computeCapacity, dispatchAndCombine, expertsToGroups, groupsToExperts } from '../../lib/moe/dispatch.js';
import { withoutGradient } from '../../lib/core/gradient.js';
import { applyExperts } from '../../lib/moe/experts.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { softMoE, type SoftMoEParams } from '../../lib/moe/soft-moe.js';
import type { RouterParams } from '../../lib/moe/gating.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';
import { expert } from './naive.js';
import { disposeParams, naiveExperts, randomRouterParams } from './random.js';

function randomSoftMoEParams(d: number, n: number, p: number, h: number, seed: number): SoftMoEParams {
  const r = randomRouterParams(d, n, h, seed);
  r.wg.dispose();
  return { ...r, phi: tf.randomNormal([d, n, p], 0, 1, 'float32', seed + 10) as tf.Tensor3D, scale: tf.scalar(1) };
}

describe('computeCapacity (vmoe/moe.py compute_capacity)', function () {
  it('ceil, round half to even, at least 1, up to a multiple', function () {
    expect(computeCapacity(24, 4, 1, { ceilOrRound: 'ceil' })).to.equal(6); // 24/4
    expect(computeCapacity(10, 4, 1, { ceilOrRound: 'ceil' })).to.equal(3); // ceil(2.5)
    expect(computeCapacity(10, 4, 1, { ceilOrRound: 'round' })).to.equal(2); // round(2.5) = 2, not 3
    expect(computeCapacity(14, 4, 1, { ceilOrRound: 'round' })).to.equal(4); // round(3.5) = 4
    expect(computeCapacity(3, 10, 1, { ceilOrRound: 'round' })).to.equal(1); // round(0.3) = 0 → 1
    expect(computeCapacity(24, 4, 1, { ceilOrRound: 'ceil', multipleOf: 4 })).to.equal(8); // 6 → 8
    expect(computeCapacity(24, 4, 1, { ceilOrRound: 'ceil', multipleOf: null })).to.equal(6);
  });
});

describe('dispatch.ts', function () {
  forEachBackend(() => {
    it('withoutGradient: ops without a gradient (TopK, OneHot) inside tf.grads, zero gradient out', function () {
      tf.tidy(() => {
        const v = tf.tensor2d([
          [0.1, 0.7, 0.2],
          [0.5, 0.3, 0.2],
        ]);
        // f(v) = Σ v · onehot(argmax v): gradient = the one-hot mask only (the mask itself has none).
        const g = tf.grad((t: tf.Tensor) =>
          tf.sum(
            tf.mul(
              t,
              withoutGradient((u) => tf.oneHot(tf.topk(u, 1).indices.reshape([2]), 3).cast('float32'), t),
            ),
          ),
        )(v);
        expect(g.arraySync()).to.deep.equal([
          [0, 1, 0],
          [1, 0, 0],
        ]);
      });
    });

    it('groupsToExperts and expertsToGroups are inverse regroupings [g, n·C, d] ↔ [n, g·C, d]', function () {
      tf.tidy(() => {
        const [g, n, c, d] = [3, 4, 2, 5];
        const buffers = tf.range(0, g * n * c * d).reshape([g, n * c, d]) as tf.Tensor3D;
        const byExpert = groupsToExperts(buffers, n);
        expect(byExpert.shape).to.deep.equal([n, g * c, d]);
        // Slot (group 1, expert 2, position 1) lands at expert 2, row 1·C + 1 = 3.
        const b = buffers.arraySync() as number[][][];
        expect((byExpert.arraySync() as number[][][])[2][3]).to.deep.equal(b[1][2 * c + 1]);
        expect(expertsToGroups(byExpert, g).arraySync()).to.deep.equal(b);
      });
    });

    it('dispatchAndCombine equals a loop over tokens and slots: y_i = Σ_s combine[i,s] · f_{s/C}(Σ_j dispatchT[s,j] x_j)', function () {
      const [g, m, d, n, c, h] = [2, 5, 3, 3, 2, 4];
      const params = randomRouterParams(d, n, h, 21);
      const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 22) as tf.Tensor3D;
      const dispatchT = tf.randomUniform([g, n * c, m], 0, 1, 'float32', 23) as tf.Tensor3D;
      const combine = tf.randomUniform([g, m, n * c], 0, 1, 'float32', 24) as tf.Tensor3D;
      const { y } = dispatchAndCombine(x, dispatchT, combine, n, (xs) => applyExperts(xs, params));
      const xs = x.arraySync() as number[][][];
      const dt = dispatchT.arraySync() as number[][][];
      const cw = combine.arraySync() as number[][][];
      const experts = naiveExperts(params);
      const want: number[] = [];
      for (let b = 0; b < g; b++) {
        const slotOut = dt[b].map((row, s) =>
          expert(
            Math.floor(s / c),
            xs[b][0].map((_, k) => row.reduce((acc, w, j) => acc + w * xs[b][j][k], 0)),
            experts,
          ),
        );
        for (let i = 0; i < m; i++)
          for (let k = 0; k < d; k++) want.push(cw[b][i].reduce((acc, w, s) => acc + w * slotOut[s][k], 0));
      }
      expectClose(y, want, 'y');
      tf.dispose([x, dispatchT, combine, y]);
      disposeParams(params);
    });

    describe('Soft MoE invariants (paper §2.1–2.2)', function () {
      const [g, m, d, n, p, h] = [3, 10, 8, 4, 2, 16];
      it('dispatch sums to 1 over tokens for every slot; combine sums to 1 over the n·p slots for every token', function () {
        tf.tidy(() => {
          const params = randomSoftMoEParams(d, n, p, h, 31);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 32) as tf.Tensor3D;
          const out = softMoE(x, params, { returnWeights: true });
          const dispatchPerSlot = tf.sum(out.dispatch!, 1); // [g, n, p]
          expectClose(dispatchPerSlot, new Array(g * n * p).fill(1), 'Σ_tokens dispatch', 1e-5, 0);
          const combinePerToken = tf.sum(out.combine!.reshape([g, m, n * p]), -1);
          expectClose(combinePerToken, new Array(g * m).fill(1), 'Σ_slots combine', 1e-5, 0);
        });
      });

      it('drops no token: every token has positive weight in every slot and every slot in every token', function () {
        tf.tidy(() => {
          const params = randomSoftMoEParams(d, n, p, h, 33);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 34) as tf.Tensor3D;
          const out = softMoE(x, params, { returnWeights: true });
          expect(tf.min(out.dispatch!).dataSync()[0]).to.be.greaterThan(0);
          expect(tf.min(out.combine!).dataSync()[0]).to.be.greaterThan(0);
          // Contrast: a Tokens Choice router with small capacity on the same sizes does drop tokens.
          const sparse = randomRouterParams(d, n, h, 35, 4);
          expect(tokensChoice(x, sparse, { k: 1, capacityFactor: 0.5 }).dropFraction.dataSync()[0]).to.be.greaterThan(
            0,
          );
          disposeParams(sparse);
        });
      });

      it('is per-sequence: changing one example of the batch leaves the others unchanged', function () {
        tf.tidy(() => {
          const params = randomSoftMoEParams(d, n, p, h, 36);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 37) as tf.Tensor3D;
          const changed = tf.concat(
            [x.slice([0, 0, 0], [2, m, d]), tf.randomNormal([1, m, d], 0, 3, 'float32', 38)],
            0,
          ) as tf.Tensor3D;
          const y0 = softMoE(x, params).y;
          const y1 = softMoE(changed, params).y;
          expectClose(
            y1.slice([0, 0, 0], [2, m, d]),
            y0.slice([0, 0, 0], [2, m, d]).dataSync(),
            'unchanged examples',
            1e-6,
            0,
          );
          expect(tf.max(tf.abs(tf.sub(y1, y0).slice([2, 0, 0], [1, m, d]))).dataSync()[0]).to.be.greaterThan(1e-3);
        });
      });
    });

    it('a sparse router whose group spans two sequences makes one sequence depend on the other (paper §2.2)', function () {
      tf.tidy(() => {
        // d = n = 2, wg = I: gates = softmax(token). Sequence A: 3 tokens preferring expert 0.
        // Sequence B (placed first in the group, so it has priority): 3 tokens preferring expert 1,
        // or — after the change — expert 0, which then fills expert 0's buffer (C = 3) before A.
        const p = randomRouterParams(2, 2, 4, 41);
        p.wg.dispose();
        const params: RouterParams = { ...p, wg: tf.eye(2) as tf.Tensor2D };
        const seqA = tf.tensor3d([
          [
            [1, 0],
            [2, 0],
            [1.5, 0],
          ],
        ]);
        const seqB = tf.tensor3d([
          [
            [0, 1],
            [0, 2],
            [0, 1.5],
          ],
        ]);
        const seqB2 = tf.tensor3d([
          [
            [1, 0],
            [2, 0],
            [1.5, 0],
          ],
        ]);
        const opts = { k: 1, capacity: 3 };
        const yA = (b: tf.Tensor3D) =>
          tokensChoice(tf.concat([b, seqA], 1) as tf.Tensor3D, params, opts).y.slice([0, 3, 0], [1, 3, 2]);
        // One group of 2 sequences: A's output changes when only B changes (A's tokens are dropped).
        const before = yA(seqB);
        const after = yA(seqB2);
        expect(tf.max(tf.abs(tf.sub(before, after))).dataSync()[0]).to.be.greaterThan(1e-3);
        expect(tf.max(tf.abs(after)).dataSync()[0], 'A fully dropped: output 0').to.equal(0);
        // Routed per sequence (one group each, as in this library's default), A does not see B.
        const perSequence = (b: tf.Tensor3D) =>
          tokensChoice(tf.concat([b, seqA], 0) as tf.Tensor3D, params, opts).y.slice([1, 0, 0], [1, 3, 2]);
        expectClose(perSequence(seqB2), perSequence(seqB).dataSync(), 'per-sequence groups', 0, 0);
        disposeParams(params);
      });
    });
  });
});
