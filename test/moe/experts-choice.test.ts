/**
 * Experts Choice routing (routers/experts-choice.ts): against a plain loop (naive.ts) on random
 * configurations, its invariants (every expert exactly full, distinct tokens, drop accounting),
 * capacity rules, and vmoe's logged metrics on a case worked by hand. Golden vectors:
 * routers-golden.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { RouterParams } from '../../lib/moe/gating.js';
import { readMetrics } from '../../lib/moe/metrics.js';
import {
  expertsChoice,
  expertsChoiceCapacity,
  type ExpertsChoiceOptions,
} from '../../lib/moe/routers/experts-choice.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';
import { naiveExpertsChoice, type Mat } from './naive.js';
import { disposeParams, naiveExperts, randomRouterParams } from './random.js';

describe('expertsChoice (Zhou et al. 2022; vmoe top-items-per-expert)', function () {
  it('computes C = round(m·cf/n) half to even, at least 1, at most m', function () {
    expect(expertsChoiceCapacity(10, 4, 1)).to.equal(2); // 2.5 → 2
    expect(expertsChoiceCapacity(14, 4, 1)).to.equal(4); // 3.5 → 4
    expect(expertsChoiceCapacity(10, 4, 1, 'ceil')).to.equal(3); // ceil(2.5)
    expect(expertsChoiceCapacity(4, 16, 1)).to.equal(1); // round(0.25) = 0 → at least 1
    expect(expertsChoiceCapacity(10, 5, 10)).to.equal(10); // round(20) capped at m = 10
    expect(expertsChoiceCapacity(10, 5, 1, 'round', 4)).to.equal(4); // 2 → multiple of 4
  });

  forEachBackend(() => {
    describe('equals a plain loop over experts and tokens', function () {
      // m = 12 tokens, n = 4 experts; expected C by hand.
      const configs: Array<{ options: ExpertsChoiceOptions; capacity: number }> = [
        { options: { capacityFactor: 1 }, capacity: 3 }, // round(3) = 3
        { options: { capacityFactor: 0.5 }, capacity: 2 }, // round(1.5) = 2 (half to even)
        { options: { capacityFactor: 2.5, ceilOrRound: 'ceil' }, capacity: 8 }, // ceil(7.5) = 8
        { options: { capacity: 5 }, capacity: 5 },
        { options: { capacityFactor: 100 }, capacity: 12 }, // capped at m: every expert takes every token
      ];
      configs.forEach(({ options, capacity }, index) => {
        it(`config ${index}: ${JSON.stringify(options)} → C = ${capacity}`, function () {
          const [g, m, d, n, h] = [3, 12, 6, 4, 8];
          const params = randomRouterParams(d, n, h, 300 + index, 3);
          const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 400 + index) as tf.Tensor3D;
          const out = expertsChoice(x, params, options);
          expect(out.capacity).to.equal(capacity);
          const gates = out.gates.arraySync() as Mat[];
          const experts = naiveExperts(params);
          const want = (x.arraySync() as Mat[]).map((xg, b) => naiveExpertsChoice(xg, gates[b], capacity, experts));
          expect(out.selectedIndexSorted.arraySync(), 'selectedIndexSorted').to.deep.equal(want.map((w) => w.selected));
          expectClose(
            out.y,
            want.flatMap((w) => w.y.flat()),
            'y',
          );
          // Invariants: every expert exactly full with distinct tokens; experts per token add up to n·C.
          expect(Array.from(out.expertLoad.dataSync())).to.deep.equal(new Array(g * n).fill(capacity));
          for (const group of out.selectedIndexSorted.arraySync() as number[][][])
            for (const tokens of group) expect(new Set(tokens).size).to.equal(capacity);
          const perToken = out.numExpertsPerToken.arraySync() as number[][];
          perToken.forEach((row) => expect(row.reduce((s, v) => s + v, 0)).to.equal(n * capacity));
          const kept = Array.from(out.tokenKept.dataSync());
          expect(kept).to.deep.equal(perToken.flat().map((v) => (v > 0 ? 1 : 0)));
          expectClose(out.dropFraction, [kept.filter((v) => !v).length / (g * m)], 'dropFraction', 1e-6, 0);
          expect(Array.from(tf.sum(out.tokenExpertMask.cast('int32'), -1).dataSync())).to.deep.equal(perToken.flat());
          if (capacity === m) expect(out.dropFraction.dataSync()[0]).to.equal(0);
          tf.dispose([x, out as unknown as tf.TensorContainer]);
          disposeParams(params);
        });
      });
    });

    it("reports vmoe's metrics, checked by hand on a 4-token case", async function () {
      // d = n = 2, wg = I: gates = softmax(x). Expert 0's gates: σ(2), σ(1), σ(−1), σ(−2) for
      // tokens 0–3, expert 1's the complements; C = round(4·1/2) = 2 → expert 0 takes tokens 0, 1 and
      // expert 1 takes tokens 2, 3: one expert per token, selected gates σ(1) = 0.7311 … σ(2) = 0.8808.
      const p = randomRouterParams(2, 2, 4, 9);
      p.wg.dispose();
      const params: RouterParams = { ...p, wg: tf.eye(2) as tf.Tensor2D };
      const x = tf.tensor3d([
        [
          [2, 0],
          [1, 0],
          [0, 1],
          [0, 2],
        ],
      ]);
      const out = expertsChoice(x, params, { capacityFactor: 1, metrics: true });
      expect(out.selectedIndexSorted.arraySync()).to.deep.equal([
        [
          [0, 1],
          [2, 3],
        ],
      ]);
      const metrics = await readMetrics(out.metrics!);
      expect(Object.keys(metrics).sort()).to.deep.equal(
        [
          'maxSelectedGate',
          'minSelectedGate',
          'numExpertsPerItemMax',
          'numExpertsPerItemMin',
          'ratioProcessedItemsByAtLeast1Experts',
          'ratioProcessedItemsByAtLeast2Experts',
        ].sort(),
      );
      expect(metrics.numExpertsPerItemMin).to.equal(1);
      expect(metrics.numExpertsPerItemMax).to.equal(1);
      expect(metrics.ratioProcessedItemsByAtLeast1Experts).to.equal(1);
      expect(metrics.ratioProcessedItemsByAtLeast2Experts).to.equal(0);
      expect(metrics.minSelectedGate).to.be.closeTo(1 / (1 + Math.exp(-1)), 1e-6);
      expect(metrics.maxSelectedGate).to.be.closeTo(1 / (1 + Math.exp(-2)), 1e-6);
      tf.dispose([x, out as unknown as tf.TensorContainer]);
      disposeParams(params);
    });
  });
});
