import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { oneHot } from '../../lib/ops/one-hot.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { forEachBackend } from '../helpers/golden.js';

describe('oneHot for any depth (tfjs rejects depth 1)', function () {
  forEachBackend(() => {
    it('depth 1: index 0 → [1], out of range → [0]', function () {
      const out = oneHot(tf.tensor1d([0, -1, 0], 'int32'), 1);
      expect(out.shape).to.deep.equal([3, 1]);
      expect(Array.from(out.dataSync())).to.deep.equal([1, 0, 1]);
      out.dispose();
    });
    it('depth ≥ 2 agrees with tf.oneHot', function () {
      const idx = tf.tensor1d([2, 0, -1], 'int32');
      const out = oneHot(idx, 3);
      expect(Array.from(out.dataSync())).to.deep.equal([0, 0, 1, 1, 0, 0, 0, 0, 0]);
      tf.dispose([idx, out]);
    });
    it('rejects depth 0, naming it', function () {
      expect(() => oneHot(tf.tensor1d([0], 'int32'), 0)).to.throw(/depth must be an integer ≥ 1, got 0/);
    });
    it('routers work with a single expert (n = 1): every token goes to it and y = expert(x)', function () {
      tf.tidy(() => {
        const [g, m, d, h] = [2, 5, 3, 4];
        const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 7) as tf.Tensor3D;
        const params = {
          wg: tf.randomNormal([d, 1], 0, 1, 'float32', 8) as tf.Tensor2D,
          w1: tf.randomNormal([1, d, h], 0, 1, 'float32', 9) as tf.Tensor3D,
          b1: tf.zeros([1, h]) as tf.Tensor2D,
          w2: tf.randomNormal([1, h, d], 0, 1, 'float32', 10) as tf.Tensor3D,
          b2: tf.zeros([1, d]) as tf.Tensor2D,
        };
        // With n = 1 the gate is softmax over one expert = 1 and capacity ceil(m·1·1/1) = m.
        const tc = tokensChoice(x, params, { k: 1, capacityFactor: 1 });
        const ec = expertsChoice(x, params, { capacityFactor: 1 });
        expect(tc.dropFraction.dataSync()[0]).to.equal(0);
        expect(ec.dropFraction.dataSync()[0]).to.equal(0);
        const diff = tf.max(tf.abs(tf.sub(tc.y, ec.y))).dataSync()[0];
        expect(diff).to.be.below(1e-5);
      });
    });
  });
});
