/**
 * Central finite-difference checks of the gradients of every layer — Soft MoE, Tokens Choice,
 * Experts Choice, the dense MLP — and of the auxiliary losses, for the scalar
 * L = Σ y·r (r a fixed random tensor), against tf.grads, on every test backend.
 *
 * Float32 arithmetic sets the tolerances: L is O(1–10), so its rounding error is ~1e-6; the
 * central difference (L(θ+ε) − L(θ−ε)) / 2ε with ε = 1e-2 divides that by 0.02, giving ~1e-4 of
 * noise, and its truncation error is ε²/6 · L''' ~ 1e-5 for these smooth functions. We accept
 * |fd − analytic| ≤ 5e-4 + 5e-3·|analytic|; the worst measured error is about a tenth of that
 * (the ratio is printed per case), while a wrong gradient (missing term, transposed weight,
 * gradient through a decision) is off by O(|analytic|).
 * For the sparse routers a perturbation may flip a routing decision, where L is not
 * differentiable; such coordinates (the dispatch mask at θ ± ε differs from θ's) are skipped and
 * counted, and most coordinates must remain.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { denseMLP } from '../../lib/moe/dense-mlp.js';
import { DenseMLPLayer, ExpertsChoiceLayer, SoftMoELayer, TokensChoiceLayer } from '../../lib/moe/layers.js';
import { gshardLoss, importanceLoss, loadLoss } from '../../lib/moe/losses.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { softMoE, type SoftMoEParams } from '../../lib/moe/soft-moe.js';
import type { RouterParams } from '../../lib/moe/gating.js';
import { forEachBackend } from '../helpers/golden.js';

const EPS = 1e-2;
const ATOL = 5e-4;
const RTOL = 5e-3;
const COORDS_PER_TENSOR = 6;

/** A small deterministic generator for picking coordinates. */
function picker(seed: number): (size: number) => number {
  let s = seed >>> 0;
  return (size) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % size;
  };
}

interface Case {
  /** Names of the differentiated tensors, in order. */
  names: string[];
  /** Fresh copies of the tensors (x first, then parameters). */
  args: tf.Tensor[];
  /** The scalar loss as a function of the tensors. */
  loss: (args: tf.Tensor[]) => tf.Scalar;
  /** A fingerprint of the routing decisions (null for layers without decisions). */
  decisions?: (args: tf.Tensor[]) => tf.Tensor;
}

function evalNumber(f: () => tf.Tensor): number {
  const t = tf.tidy(f);
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

function sameDecisions(c: Case, a: tf.Tensor[], b: tf.Tensor[]): boolean {
  if (!c.decisions) return true;
  const da = tf.tidy(() => c.decisions!(a));
  const db = tf.tidy(() => c.decisions!(b));
  const equal = da.dataSync().every((v, i) => v === db.dataSync()[i]);
  tf.dispose([da, db]);
  return equal;
}

/** Returns the worst |fd − analytic| / (ATOL + RTOL·|analytic|) and the number of skipped coordinates. */
function check(c: Case, seed: number): { worst: number; checked: number; skipped: number } {
  const analytic = tf.tidy(() => tf.grads((...a: tf.Tensor[]) => c.loss(a))(c.args));
  const pick = picker(seed);
  let worst = 0;
  let checked = 0;
  let skipped = 0;
  c.args.forEach((arg, which) => {
    const base = arg.dataSync();
    const grad = analytic[which].dataSync();
    const coords = new Set<number>();
    while (coords.size < Math.min(COORDS_PER_TENSOR, arg.size)) coords.add(pick(arg.size));
    for (const index of coords) {
      const shifted = (delta: number) => {
        const data = Float32Array.from(base);
        data[index] += delta;
        return c.args.map((a, i) => (i === which ? tf.tensor(data, a.shape) : a));
      };
      const plus = shifted(EPS);
      const minus = shifted(-EPS);
      if (!sameDecisions(c, plus, c.args) || !sameDecisions(c, minus, c.args)) {
        skipped++;
      } else {
        const fd = (evalNumber(() => c.loss(plus)) - evalNumber(() => c.loss(minus))) / (2 * EPS);
        const ratio = Math.abs(fd - grad[index]) / (ATOL + RTOL * Math.abs(grad[index]));
        expect(ratio, `${c.names[which]}[${index}]: finite difference ${fd}, tf.grads ${grad[index]}`).to.be.at.most(1);
        worst = Math.max(worst, ratio);
        checked++;
      }
      tf.dispose([plus[which], minus[which]]);
    }
  });
  tf.dispose(analytic);
  return { worst, checked, skipped };
}

function cloneVars(vars: Record<string, tf.Variable>, names: string[]): tf.Tensor[] {
  return names.map((k) => tf.clone(vars[k]));
}

function routerParams(a: tf.Tensor[]): RouterParams {
  const [, wg, w1, b1, w2, b2] = a;
  return {
    wg: wg as tf.Tensor2D,
    w1: w1 as tf.Tensor3D,
    b1: b1 as tf.Tensor2D,
    w2: w2 as tf.Tensor3D,
    b2: b2 as tf.Tensor2D,
  };
}

describe('gradients by central finite differences', function () {
  const [g, m, d, n, h] = [2, 6, 4, 3, 5];
  forEachBackend(() => {
    let x: tf.Tensor3D;
    let r: tf.Tensor;
    beforeEach(function () {
      x = tf.randomNormal([g, m, d], 0, 1, 'float32', 1) as tf.Tensor3D;
      r = tf.randomNormal([g, m, d], 0, 1, 'float32', 2);
    });
    afterEach(function () {
      tf.dispose([x, r]);
    });

    const run = (c: Case, seed: number, maxSkippedFraction = 0) => {
      const { worst, checked, skipped } = check(c, seed);
      c.args.forEach((t) => t.dispose());
      expect(skipped, `skipped ${skipped} of ${checked + skipped} coordinates`).to.be.at.most(
        maxSkippedFraction * (checked + skipped),
      );
      expect(checked).to.be.greaterThan(0);
      // Printed so that the margin is visible in the test log.
      console.log(
        `        worst |fd − grad| / tolerance = ${worst.toFixed(3)} over ${checked} coordinates, ${skipped} skipped`,
      );
    };

    it('Soft MoE: x, phi, scale, w1, b1, w2, b2', function () {
      const layer = new SoftMoELayer({
        dim: d,
        numExperts: n,
        slotsPerExpert: 2,
        hidden: h,
        expertInit: 'independent',
        seed: 3,
      });
      const names = ['x', 'phi', 'scale', 'w1', 'b1', 'w2', 'b2'];
      const args = [tf.clone(x), ...cloneVars(layer.variables, names.slice(1))];
      layer.dispose();
      const loss = (a: tf.Tensor[]) => {
        const [xx, phi, scale, w1, b1, w2, b2] = a;
        const p: SoftMoEParams = {
          phi: phi as tf.Tensor3D,
          scale: scale as tf.Scalar,
          w1: w1 as tf.Tensor3D,
          b1: b1 as tf.Tensor2D,
          w2: w2 as tf.Tensor3D,
          b2: b2 as tf.Tensor2D,
        };
        return tf.sum(tf.mul(softMoE(xx as tf.Tensor3D, p).y, r)) as tf.Scalar;
      };
      run({ names, args, loss }, 11);
    });

    it('Tokens Choice (K = 2, BPR, drops): x, wg, w1, b1, w2, b2', function () {
      const layer = new TokensChoiceLayer({
        dim: d,
        numExperts: n,
        hidden: h,
        expertInit: 'independent',
        seed: 4,
        options: { k: 2, capacityFactor: 0.75, batchPriority: true },
      });
      const names = ['x', 'wg', 'w1', 'b1', 'w2', 'b2'];
      const args = [tf.clone(x), ...cloneVars(layer.variables, names.slice(1))];
      layer.dispose();
      const opts = { k: 2, capacityFactor: 0.75, batchPriority: true, returnWeights: true };
      // C = ceil(6·2·0.75/3) = 3 < 4 choices per expert on average: some choices are dropped.
      expect(
        tf.tidy(() => tokensChoice(args[0] as tf.Tensor3D, routerParams(args), opts).choiceDropFraction.dataSync()[0]),
      ).to.be.greaterThan(0);
      run(
        {
          names,
          args,
          loss: (a) => tf.sum(tf.mul(tokensChoice(a[0] as tf.Tensor3D, routerParams(a), opts).y, r)) as tf.Scalar,
          decisions: (a) => tokensChoice(a[0] as tf.Tensor3D, routerParams(a), opts).dispatch!,
        },
        12,
        0.25,
      );
    });

    it('Experts Choice: x, wg, w1, b1, w2, b2', function () {
      const layer = new ExpertsChoiceLayer({
        dim: d,
        numExperts: n,
        hidden: h,
        expertInit: 'independent',
        seed: 5,
        options: { capacityFactor: 1 },
      });
      const names = ['x', 'wg', 'w1', 'b1', 'w2', 'b2'];
      const args = [tf.clone(x), ...cloneVars(layer.variables, names.slice(1))];
      layer.dispose();
      const opts = { capacityFactor: 1, returnWeights: true };
      run(
        {
          names,
          args,
          loss: (a) => tf.sum(tf.mul(expertsChoice(a[0] as tf.Tensor3D, routerParams(a), opts).y, r)) as tf.Scalar,
          decisions: (a) => expertsChoice(a[0] as tf.Tensor3D, routerParams(a), opts).dispatch!,
        },
        13,
        0.25,
      );
    });

    it('dense MLP: x, w1, b1, w2, b2', function () {
      const layer = new DenseMLPLayer({ dim: d, hidden: h, seed: 6 });
      const names = ['x', 'w1', 'b1', 'w2', 'b2'];
      const args = [tf.clone(x), ...cloneVars(layer.variables, names.slice(1))];
      layer.dispose();
      const loss = (a: tf.Tensor[]) => {
        const [xx, w1, b1, w2, b2] = a;
        return tf.sum(
          tf.mul(
            denseMLP(xx, {
              w1: w1 as tf.Tensor2D,
              b1: b1 as tf.Tensor1D,
              w2: w2 as tf.Tensor2D,
              b2: b2 as tf.Tensor1D,
            }),
            r,
          ),
        ) as tf.Scalar;
      };
      run({ names, args, loss }, 14);
    });

    it('auxiliary losses: importance and GShard (gates), load (logits)', function () {
      const gates = tf.softmax(tf.randomNormal([g, m, n], 0, 1, 'float32', 7));
      const logits = tf.randomNormal([g, m, n], 0, 1, 'float32', 8);
      const noise = tf.randomNormal([g, m, n], 0, 0.3, 'float32', 9);
      run({ names: ['gates'], args: [tf.clone(gates)], loss: (a) => tf.mul(importanceLoss(a[0]), 10) }, 15);
      run(
        {
          names: ['gates'],
          args: [tf.clone(gates)],
          loss: (a) => gshardLoss(a[0]),
          // The top-1 counts are decisions: skip perturbations that change an argmax.
          decisions: (a) => tf.argMax(a[0], -1),
        },
        16,
        0.25,
      );
      run(
        {
          names: ['logits'],
          args: [tf.clone(logits)],
          loss: (a) => tf.mul(loadLoss(a[0], tf.add(a[0], noise), { noiseStd: 0.3, k: 2 }), 10),
          decisions: (a) => tf.topk(tf.add(a[0], noise), 2).indices,
        },
        17,
        0.25,
      );
      tf.dispose([gates, logits, noise]);
    });
  });
});
