/**
 * Auxiliary losses (losses.ts) on cases worked by hand. The 4×3 gates and the 3×3 load case are
 * ported from google-research/vmoe `vmoe/nn/routing_test.py` (test_gshard_auxiliary_loss,
 * test_importance_auxiliary_loss, test_load_auxiliary_loss); the arithmetic is repeated here.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { gshardLoss, importanceLoss, loadLoss } from '../../lib/moe/losses.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';

// vmoe routing_test.py: 4 tokens × 3 experts.
const GATES = [
  [0.5, 0.4, 0.1],
  [0.3, 0.3, 0.4],
  [0.1, 0.2, 0.7],
  [0.8, 0.2, 0.0],
];
// A second group worked by hand: one-hot gates, tokens → experts 0, 1, 2, 0.
const ONE_HOT = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 0, 0],
];

describe('auxiliary losses (vmoe/nn/routing.py)', function () {
  forEachBackend(() => {
    it('GShard loss of the 4×3 gates is 1.0875 (vmoe routing_test.py)', function () {
      tf.tidy(() => {
        // mean gates per expert = [1.7, 1.1, 1.2]/4 = [0.425, 0.275, 0.3];
        // top-1 fractions = [2, 0, 2]/4; mean of products = (0.2125 + 0 + 0.15)/3 = 0.1208333;
        // × n² = 9 → 1.0875.
        expectClose(gshardLoss(tf.tensor2d(GATES)), [1.0875], 'gshard', 1e-6, 0);
      });
    });

    it('importance loss of the 4×3 gates is 0.03875 (vmoe routing_test.py)', function () {
      tf.tidy(() => {
        // importance = [1.7, 1.1, 1.2], mean 4/3, population variance 0.2066667/3 = 0.0688889;
        // CV² = 0.0688889 / (16/9) = 0.03875.
        expectClose(importanceLoss(tf.tensor2d(GATES)), [0.03875], 'importance', 1e-6, 0);
      });
    });

    it('averages per-group losses over groups', function () {
      tf.tidy(() => {
        // One-hot group: importance = [2, 1, 1], mean 4/3, variance (4/9 + 1/9 + 1/9)/3 = 2/9,
        // CV² = (2/9)/(16/9) = 0.125. GShard: mean gates = top-1 fractions = [0.5, 0.25, 0.25];
        // 9 · mean([0.25, 0.0625, 0.0625]) = 1.125.
        const both = tf.tensor3d([GATES, ONE_HOT]);
        expectClose(importanceLoss(tf.tensor2d(ONE_HOT)), [0.125], 'importance one-hot', 1e-6, 0);
        expectClose(gshardLoss(tf.tensor2d(ONE_HOT)), [1.125], 'gshard one-hot', 1e-6, 0);
        expectClose(importanceLoss(both), [(0.03875 + 0.125) / 2], 'importance, 2 groups', 1e-6, 0);
        expectClose(gshardLoss(both), [(1.0875 + 1.125) / 2], 'gshard, 2 groups', 1e-6, 0);
      });
    });

    it('load loss of the 3×3 case with noise_std 0.1 and k = 2 is 0.485738 (vmoe routing_test.py)', function () {
      tf.tidy(() => {
        const logits = tf.tensor2d([
          [0.9, 0.06, 0.04],
          [0.7, 0.18, 0.12],
          [0.85, 0.05, 0.1],
        ]);
        const noise = tf.tensor2d([
          [-0.037, 0.026, -0.018],
          [-0.074, 0.045, -0.015],
          [-0.067, -0.059, 0.073],
        ]);
        // vmoe expects 0.48573864536489236 (float32 JAX, places=6). Recomputed in float64 with
        // Python's math.erf (test/fixtures/hand/gating_losses.py): thresholds = 2nd largest noisy logit per token (0.086, 0.225, 0.173);
        // p_mean = [0.99999966, 0.27771189, 0.23410409] → CV² = 0.48573847.
        const got = loadLoss(logits, tf.add(logits, noise), { noiseStd: 0.1, k: 2 });
        expectClose(got, [0.48573847], 'load', 1e-6, 0);
      });
    });

    it('passes gradients to the gates and logits (checked against central differences in gradcheck.test.ts)', function () {
      tf.tidy(() => {
        const gates = tf.tensor2d(GATES);
        expect(tf.max(tf.abs(tf.grad((g: tf.Tensor) => importanceLoss(g))(gates))).dataSync()[0]).to.be.greaterThan(0);
        expect(tf.max(tf.abs(tf.grad((g: tf.Tensor) => gshardLoss(g))(gates))).dataSync()[0]).to.be.greaterThan(0);
      });
    });
  });
});
