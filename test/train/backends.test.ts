/**
 * One training step of each ViT kind on every test backend, webgpu included (its reads are all
 * `await data()`): the losses and gradient norms of three Adam updates agree with the cpu
 * backend (the reference here, plain JavaScript float32) within 1e-4 + 1e-3·|cpu|, and the
 * updates leak no tensor ("Training: no memory leak", the tfjs-layers test name).
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { initBackend } from '../../lib/backend.js';
import { Trainer } from '../../lib/train/trainer.js';
import type { BlockKind } from '../../lib/vit/config.js';
import { ViT } from '../../lib/vit/vit.js';
import { expectClose, forEachBackend, initDefaultBackend } from '../helpers/golden.js';
import { handConfig, KINDS } from '../vit/helpers.js';

const STEPS = 3;
const BATCH = 6;

/** Fixed images [6, 8, 8, 1] and labels in 0..2 (handConfig: 8×8 images, 3 classes). */
function batch(): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return tf.tidy(() => ({
    x: tf.sin(tf.range(0, BATCH * 64, 1).mul(0.37)).reshape([BATCH, 8, 8, 1]) as tf.Tensor4D,
    y: tf.tensor1d([0, 1, 2, 2, 1, 0], 'int32'),
  }));
}

/** Losses and gradient norms of STEPS updates; checks that no tensor leaks on the way. */
async function run(kind: BlockKind): Promise<{ loss: number[]; gradNorm: number[] }> {
  const start = tf.memory().numTensors;
  // Seed 7: with seed 3 an Experts Choice top-C near-tie at the second update broke one way on cpu
  // and the other on wasm and webgpu (a 0.2% different gradient norm).
  const model = new ViT(handConfig(kind, { headInit: 'uniform', seed: 7 }));
  const trainer = new Trainer(model, { steps: STEPS, batchSize: BATCH, learningRate: 1e-2, warmupSteps: 1, seed: 0 });
  const { x, y } = batch();
  const loss: number[] = [];
  const gradNorm: number[] = [];
  let count = 0;
  for (let i = 0; i < STEPS; i++) {
    const r = await trainer.trainStep(x, y);
    loss.push(r.loss);
    gradNorm.push(r.gradNorm);
    if (i === 1) count = tf.memory().numTensors; // after the warm-up update (Adam made its moments)
  }
  expect(tf.memory().numTensors, `${kind}: tensors after the third update`).to.equal(count);
  tf.dispose([x, y]);
  trainer.dispose();
  model.dispose();
  expect(tf.memory().numTensors, `${kind}: tensors after dispose`).to.equal(start);
  return { loss, gradNorm };
}

describe('train: three updates of each ViT kind agree across backends, without leaks', function () {
  this.timeout(120000);
  const reference: Partial<Record<BlockKind, { loss: number[]; gradNorm: number[] }>> = {};
  before(async function () {
    await initBackend('cpu');
    for (const kind of KINDS) reference[kind] = await run(kind);
    await initDefaultBackend();
  });

  forEachBackend(
    () => {
      for (const kind of KINDS) {
        it(`${kind}: losses and gradient norms match the cpu backend; no tensor leaks`, async function () {
          const got = await run(kind);
          expectClose(got.loss, reference[kind]!.loss, `${kind} loss`);
          expectClose(got.gradNorm, reference[kind]!.gradNorm, `${kind} gradient norm`);
        });
      }
    },
    { webgpu: true },
  );
});
