/**
 * Memory: "Forward: no memory leak" and "Training step: no memory leak" for every layer object
 * (the tfjs-layers test names). Warm up once (Adam creates its moment variables on the first
 * step), read tf.memory().numTensors, run again, expect the same count; then dispose the layer and
 * the optimizer and expect every tensor the test made to be gone.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { DenseMLPLayer, ExpertsChoiceLayer, SoftMoELayer, TokensChoiceLayer } from '../../lib/moe/layers.js';
import { type Module } from '../../lib/core/module.js';
import { forEachBackend } from '../helpers/golden.js';

const [G, M, D, N, H] = [2, 8, 6, 4, 12];

interface LayerCase {
  name: string;
  make: () => Module;
  /** The scalar training loss of one forward pass (task loss + auxiliary loss where there is one). */
  loss: (layer: Module, x: tf.Tensor3D, r: tf.Tensor) => tf.Scalar;
}

const layers: LayerCase[] = [
  {
    name: 'SoftMoELayer',
    make: () => new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: 2, hidden: H }),
    loss: (l, x, r) => tf.sum(tf.mul((l as SoftMoELayer).apply(x, { metrics: true }).y, r)),
  },
  {
    name: 'TokensChoiceLayer (K = 2, BPR, noisy, importance + load)',
    make: () =>
      new TokensChoiceLayer({
        dim: D,
        numExperts: N,
        hidden: H,
        options: { k: 2, capacityFactor: 1, batchPriority: true, noiseStd: 1 },
      }),
    loss: (l, x, r) => {
      const out = (l as TokensChoiceLayer).apply(x, { training: true, returnWeights: true });
      return tf.add(tf.sum(tf.mul(out.y, r)), tf.mul(out.auxLoss, 0.01));
    },
  },
  {
    name: 'ExpertsChoiceLayer',
    make: () =>
      new ExpertsChoiceLayer({ dim: D, numExperts: N, hidden: H, options: { capacityFactor: 1, metrics: true } }),
    loss: (l, x, r) => tf.sum(tf.mul((l as ExpertsChoiceLayer).apply(x).y, r)),
  },
  {
    name: 'DenseMLPLayer',
    make: () => new DenseMLPLayer({ dim: D, hidden: H }),
    loss: (l, x, r) => tf.sum(tf.mul((l as DenseMLPLayer).apply(x), r)),
  },
];

describe('layers: memory', function () {
  forEachBackend(
    () => {
      for (const c of layers) {
        describe(c.name, function () {
          it('Forward: no memory leak', async function () {
            const start = tf.memory().numTensors;
            const layer = c.make();
            const x = tf.randomNormal([G, M, D], 0, 1, 'float32', 1) as tf.Tensor3D;
            const r = tf.randomNormal([G, M, D], 0, 1, 'float32', 2);
            tf.tidy(() => c.loss(layer, x, r)).dispose(); // warm-up
            const before = tf.memory().numTensors;
            const loss = tf.tidy(() => c.loss(layer, x, r));
            expect(Number.isFinite((await loss.data())[0])).to.equal(true);
            loss.dispose();
            expect(tf.memory().numTensors).to.equal(before);
            tf.dispose([x, r]);
            layer.dispose();
            expect(tf.memory().numTensors, 'after dispose').to.equal(start);
          });

          it('Training step: no memory leak (Adam on the layer variables)', async function () {
            const start = tf.memory().numTensors;
            const layer = c.make();
            const variables = Object.values(layer.variables);
            const optimizer = tf.train.adam(1e-2);
            const x = tf.randomNormal([G, M, D], 0, 1, 'float32', 3) as tf.Tensor3D;
            const r = tf.randomNormal([G, M, D], 0, 1, 'float32', 4);
            const step = () => optimizer.minimize(() => c.loss(layer, x, r), true, variables)!;
            const first = step(); // warm-up: Adam creates its moment variables
            const firstLoss = (await first.data())[0];
            first.dispose();
            const before = tf.memory().numTensors;
            for (let i = 0; i < 3; i++) step().dispose();
            expect(tf.memory().numTensors).to.equal(before);
            // The steps changed the variables (the loss moved): gradients reached them.
            const last = tf.tidy(() => c.loss(layer, x, r));
            expect((await last.data())[0]).to.not.equal(firstLoss);
            last.dispose();
            tf.dispose([x, r]);
            optimizer.dispose();
            layer.dispose();
            expect(tf.memory().numTensors, 'after dispose').to.equal(start);
          });
        });
      }
    },
    { webgpu: true },
  );
});
