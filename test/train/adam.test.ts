import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { expectClose, forEachBackend } from '../helpers/golden.js';
import { Adam } from '../../lib/train/adam.js';

/** Adam in float64 from Kingma & Ba's Algorithm 1 (plus decoupled decay), for one parameter vector. */
function referenceAdam(
  theta: number[],
  grads: number[][],
  lrs: number[],
  o: { clip: number | null; wd: number },
): number[] {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const m = theta.map(() => 0);
  const v = theta.map(() => 0);
  const p = [...theta];
  grads.forEach((g0, step) => {
    const t = step + 1;
    const norm = Math.sqrt(g0.reduce((s, x) => s + x * x, 0));
    const g = o.clip != null ? g0.map((x) => x * Math.min(1, o.clip! / norm)) : g0;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const update = m[i] / (1 - b1 ** t) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps) + o.wd * p[i];
      p[i] -= lrs[step] * update;
    }
  });
  return p;
}

forEachBackend(() => {
  describe('train/adam', function () {
    const theta0 = [0.5, -1, 2, 0.25];
    const grads = [
      [0.1, -0.2, 3, 0],
      [-0.4, 0.1, 2, 0.05],
      [0.3, 0.3, -1, 0.2],
    ];
    const lrs = [0.1, 0.05, 0.01];
    for (const o of [
      { clip: null, wd: 0 },
      { clip: 1, wd: 0 },
      { clip: 0.5, wd: 0.1 },
    ]) {
      it(`matches Algorithm 1 in float64 (clip ${o.clip}, weight decay ${o.wd})`, function () {
        const w = tf.variable(tf.tensor2d(theta0, [2, 2])); // rank 2: decayed by default
        const adam = new Adam({ w }, { clipNorm: o.clip, weightDecay: o.wd });
        grads.forEach((g, i) => {
          const gt = tf.tensor2d(g, [2, 2]);
          const norm = adam.apply({ w: gt }, lrs[i]);
          expect(norm.dataSync()[0]).to.be.closeTo(Math.sqrt(g.reduce((s, x) => s + x * x, 0)), 1e-5);
          tf.dispose([gt, norm]);
        });
        expect(adam.step).to.equal(3);
        expectClose(w, referenceAdam(theta0, grads, lrs, o), 'parameters after 3 updates', 1e-6, 1e-5);
        adam.dispose();
        w.dispose();
      });
    }

    it('decays weight matrices only, not biases, position embeddings or Φ', function () {
      const vars = {
        'a/kernel': tf.variable(tf.ones([2, 2])),
        'a/bias': tf.variable(tf.ones([2])),
        'embedding/pos': tf.variable(tf.ones([3, 2])),
        'block1/moe/phi': tf.variable(tf.ones([2, 2, 1])),
        'block1/moe/w1': tf.variable(tf.ones([2, 2, 3])),
      };
      const adam = new Adam(vars, { weightDecay: 0.1 });
      expect(adam.decayedNames.sort()).to.deep.equal(['a/kernel', 'block1/moe/w1']);
      adam.dispose();
      Object.values(vars).forEach((v) => v.dispose());
    });

    it('Training: no memory leak over updates', function () {
      const w = tf.variable(tf.ones([3, 3]));
      const adam = new Adam({ w });
      const g = tf.ones([3, 3]);
      adam.apply({ w: g }, 0.1).dispose();
      const count = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) adam.apply({ w: g }, 0.1).dispose();
      expect(tf.memory().numTensors).to.equal(count);
      adam.dispose();
      tf.dispose([w, g]);
    });

    it('creating and disposing the optimiser frees its moments (no leak)', function () {
      const w = tf.variable(tf.ones([3, 3]));
      const count = tf.memory().numTensors;
      new Adam({ w }).dispose();
      expect(tf.memory().numTensors).to.equal(count);
      w.dispose();
    });

    it("lrMultiplier scales one parameter's update (float64 reference with lr × k), 0 freezes it", function () {
      const a = tf.variable(tf.tensor1d(theta0));
      const b = tf.variable(tf.tensor1d(theta0));
      const c = tf.variable(tf.tensor1d(theta0));
      const adam = new Adam({ a, b, c }, { clipNorm: null, lrMultiplier: (n) => (n === 'b' ? 10 : n === 'c' ? 0 : 1) });
      grads.forEach((g, i) => {
        const gt = tf.tensor1d(g);
        adam.apply({ a: gt, b: gt, c: gt }, lrs[i]).dispose();
        gt.dispose();
      });
      expectClose(a.dataSync(), referenceAdam(theta0, grads, lrs, { clip: null, wd: 0 }), 'a');
      expectClose(
        b.dataSync(),
        referenceAdam(
          theta0,
          grads,
          lrs.map((l) => 10 * l),
          { clip: null, wd: 0 },
        ),
        'b',
      );
      expect(Array.from(c.dataSync())).to.deep.equal(theta0);
      expect(() => new Adam({ a }, { lrMultiplier: () => -1 })).to.throw(
        /lrMultiplier\("a"\) must be a finite number ≥ 0, got -1/,
      );
      adam.dispose();
      tf.dispose([a, b, c]);
    });

    it('rejects a missing gradient and bad options', function () {
      const w = tf.variable(tf.ones([2]));
      const adam = new Adam({ w });
      expect(() => adam.apply({}, 0.1)).to.throw(/no gradient for parameter "w"/);
      expect(() => new Adam({ w }, { beta1: 1 })).to.throw(/beta1 must be in \[0, 1\), got 1/);
      expect(() => new Adam({ w }, { clipNorm: -1 })).to.throw(/clipNorm must be a finite number > 0 or null, got -1/);
      adam.dispose();
      w.dispose();
    });
  });
});
