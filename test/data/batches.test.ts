import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { batchesPerEpoch, batchFromIndices, batchStream, epochBatches, type Batch } from '../../lib/data/batches.js';
import { type ImageDataset } from '../../lib/data/datasets.js';
import { loadDataset } from '../../lib/data/load.js';
import { deriveSeed, permutation } from '../../lib/core/random.js';

function disposeBatch(b: Batch): void {
  b.x.dispose();
  b.y.dispose();
}

/** Indices of the first `n` batches of a generator (disposing the tensors). */
function takeIndices(gen: Generator<Batch>, n: number): number[][] {
  const out: number[][] = [];
  for (const b of gen) {
    out.push(Array.from(b.indices));
    disposeBatch(b);
    if (out.length === n) break;
  }
  return out;
}

describe('data/batches: seeded mini-batches as tensors', function () {
  let ds: ImageDataset;
  before(async function () {
    ds = await loadDataset('tiny-mnist', 'train');
  });

  it('yields x [b, 28, 28, 1] float32 and y [b] int32 holding the right images and labels', async function () {
    const gen = epochBatches(ds, { batchSize: 100, seed: 3 });
    const b = gen.next().value as Batch;
    expect(b.x.shape).to.deep.equal([100, 28, 28, 1]);
    expect(b.x.dtype).to.equal('float32');
    expect(b.y.shape).to.deep.equal([100]);
    expect(b.y.dtype).to.equal('int32');
    const x = await b.x.data();
    const y = await b.y.data();
    for (const k of [0, 37, 99]) {
      const i = b.indices[k];
      expect(y[k]).to.equal(ds.labels[i]);
      expect(Array.from(x.subarray(k * 784, (k + 1) * 784))).to.deep.equal(
        Array.from(ds.images.subarray(i * 784, (i + 1) * 784)),
      );
    }
    disposeBatch(b);
    gen.return();
  });

  it('one epoch visits every image once; the last batch is partial unless dropped', function () {
    const sizes: number[] = [];
    const seen: number[] = [];
    for (const b of epochBatches(ds, { batchSize: 100, seed: 3 })) {
      sizes.push(b.x.shape[0]);
      seen.push(...b.indices);
      disposeBatch(b);
    }
    expect(sizes).to.deep.equal([100, 100, 100, 100, 100, 12]); // 512 = 5·100 + 12
    expect([...seen].sort((a, c) => a - c)).to.deep.equal(Array.from({ length: 512 }, (_, i) => i));
    const dropped = takeIndices(epochBatches(ds, { batchSize: 100, seed: 3, dropRemainder: true }), 99);
    expect(dropped.map((b) => b.length)).to.deep.equal([100, 100, 100, 100, 100]);
    expect(batchesPerEpoch(512, 100, true)).to.equal(5);
    expect(batchesPerEpoch(512, 100, false)).to.equal(6);
  });

  it('shuffles deterministically: same seed and epoch → same order; other seed or epoch → another', function () {
    const a = takeIndices(epochBatches(ds, { batchSize: 64, seed: 11, epoch: 2 }), 8).flat();
    const again = takeIndices(epochBatches(ds, { batchSize: 64, seed: 11, epoch: 2 }), 8).flat();
    const otherSeed = takeIndices(epochBatches(ds, { batchSize: 64, seed: 12, epoch: 2 }), 8).flat();
    const otherEpoch = takeIndices(epochBatches(ds, { batchSize: 64, seed: 11, epoch: 3 }), 8).flat();
    expect(again).to.deep.equal(a);
    expect(otherSeed).to.not.deep.equal(a);
    expect(otherEpoch).to.not.deep.equal(a);
    // The documented order: permutation(count, deriveSeed(seed, epoch)).
    expect(a).to.deep.equal(Array.from(permutation(512, deriveSeed(11, 2))));
  });

  it('without a seed, batches follow the stored order (evaluation)', function () {
    const order = takeIndices(epochBatches(ds, { batchSize: 200 }), 9).flat();
    expect(order).to.deep.equal(Array.from({ length: 512 }, (_, i) => i));
  });

  it('batchStream runs across epochs, reshuffling, and resumes exactly from startStep', function () {
    // 512 / 100 → 5 full batches per epoch; steps 0..11 cover epochs 0, 1 and 2 of the stream.
    const steps: Array<{ epoch: number; step: number; indices: number[] }> = [];
    for (const b of batchStream(ds, { batchSize: 100, seed: 5 })) {
      steps.push({ epoch: b.epoch, step: b.step, indices: Array.from(b.indices) });
      disposeBatch(b);
      if (steps.length === 12) break;
    }
    expect(steps.map((s) => s.epoch)).to.deep.equal([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2]);
    expect(steps.map((s) => s.step)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(steps[5].indices).to.deep.equal(Array.from(permutation(512, deriveSeed(5, 1)).subarray(0, 100)));
    expect(steps.slice(0, 5).flatMap((s) => s.indices)).to.not.deep.equal(steps.slice(5, 10).flatMap((s) => s.indices));
    const resumed = takeIndices(batchStream(ds, { batchSize: 100, seed: 5, startStep: 7 }), 5);
    expect(resumed).to.deep.equal(steps.slice(7, 12).map((s) => s.indices));
  });

  it('Training data: no tensor leak (only the yielded tensors exist, and the caller frees them)', function () {
    takeIndices(batchStream(ds, { batchSize: 32, seed: 1 }), 2); // warm up
    const before = tf.memory().numTensors;
    const gen = batchStream(ds, { batchSize: 32, seed: 1 });
    for (let i = 0; i < 20; i++) {
      const b = gen.next().value as Batch;
      expect(tf.memory().numTensors).to.equal(before + 2);
      disposeBatch(b);
    }
    gen.return(undefined as never);
    for (const b of epochBatches(ds, { batchSize: 100, seed: 2 })) disposeBatch(b);
    const { x, y } = batchFromIndices(ds, new Int32Array([0, 1, 2]));
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('rejects bad batch sizes, seeds and steps, naming them', function () {
    expect(() => epochBatches(ds, { batchSize: 0 }).next()).to.throw(/batchSize must be an integer ≥ 1, got 0/);
    expect(() => batchStream(ds, { batchSize: 513, seed: 1 }).next()).to.throw(
      /batchSize 513 exceeds the 512 images of tiny-mnist train/,
    );
    expect(() => batchStream(ds, { batchSize: 8, seed: 1.5 }).next()).to.throw(
      /seed must be an integer in \[0, 2\^32\), got 1.5/,
    );
    expect(() => batchStream(ds, { batchSize: 8, seed: 1, startStep: -1 }).next()).to.throw(
      /startStep must be an integer ≥ 0, got -1/,
    );
    expect(() => epochBatches(ds, { batchSize: 8, epoch: 0.5 }).next()).to.throw(
      /epoch must be an integer ≥ 0, got 0.5/,
    );
    expect(() => batchFromIndices(ds, new Int32Array([512]))).to.throw(
      /batch index 512 at position 0 is outside \[0, 512\)/,
    );
  });
});
