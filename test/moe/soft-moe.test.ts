import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { softMoE, slotsFromCapacityFactor, type SoftMoEParams } from '../../lib/moe/soft-moe.js';
import { expectClose, expectShape, forEachBackend, loadGolden, readAll, toTensor } from '../helpers/golden.js';

const cases = loadGolden('soft_moe');

function paramsOf(c: (typeof cases)[number]): SoftMoEParams {
  const t = (k: string) => toTensor(c.params[k]);
  return { phi: t('phi') as tf.Tensor3D, scale: t('scale') as tf.Scalar, w1: t('w1') as tf.Tensor3D, b1: t('b1') as tf.Tensor2D, w2: t('w2') as tf.Tensor3D, b2: t('b2') as tf.Tensor2D };
}

describe('softMoE (paper eqs. 1–3, §2.3)', function () {
  forEachBackend(
    () => {
      for (const c of cases) {
        describe(`golden ${c.name}`, function () {
          it('matches y, logits, dispatch, combine, slot inputs and outputs', async function () {
            const got = await readAll(() => {
              const out = softMoE(toTensor(c.inputs.x) as tf.Tensor3D, paramsOf(c), { returnWeights: true });
              return { y: out.y, logits: out.logits!, dispatch: out.dispatch!, combine: out.combine!, slot_inputs: out.slotInputs!, slot_outputs: out.slotOutputs! };
            });
            for (const [key, value] of Object.entries(got)) {
              const want = c.expected[key] as { shape: number[]; data: number[] };
              expectShape(value, want.shape, key);
              expectClose(value, want.data, key);
            }
          });

          it('matches the gradients of sum(y·r) for x, phi, scale and every expert weight', async function () {
            const names = ['x', 'phi', 'scale', 'w1', 'b1', 'w2', 'b2'] as const;
            const got = await readAll(() => {
              const x = toTensor(c.inputs.x) as tf.Tensor3D;
              const r = toTensor(c.inputs.r);
              const p = paramsOf(c);
              const f = (...args: tf.Tensor[]) => {
                const [xx, phi, scale, w1, b1, w2, b2] = args;
                const { y } = softMoE(xx as tf.Tensor3D, { phi: phi as tf.Tensor3D, scale: scale as tf.Scalar, w1: w1 as tf.Tensor3D, b1: b1 as tf.Tensor2D, w2: w2 as tf.Tensor3D, b2: b2 as tf.Tensor2D });
                return tf.sum(tf.mul(y, r));
              };
              const grads = tf.grads(f)([x, p.phi, p.scale, p.w1, p.b1, p.w2, p.b2]);
              return Object.fromEntries(names.map((name, i) => [name, grads[i]])) as Record<(typeof names)[number], tf.Tensor>;
            });
            for (const name of names) {
              expectShape(got[name], c.grads[name].shape, `grad ${name}`);
              expectClose(got[name], c.grads[name].data as number[], `grad ${name}`);
            }
          });
        });
      }
    },
    { webgpu: true },
  );
});

describe('slotsFromCapacityFactor (vmoe compute_capacity, round half to even)', function () {
  it('rounds halves to even like Python', function () {
    // 5 tokens × 1.0 / 2 experts = 2.5 → 2 (Python round), Math.round would give 3.
    expect(slotsFromCapacityFactor(5, 2, 1)).to.equal(2);
    // 7 × 1 / 2 = 3.5 → 4.
    expect(slotsFromCapacityFactor(7, 2, 1)).to.equal(4);
    // 64 × 1 / 16 = 4.
    expect(slotsFromCapacityFactor(64, 16, 1)).to.equal(4);
  });
  it('rejects a capacity that rounds to 0, naming the numbers', function () {
    expect(() => slotsFromCapacityFactor(4, 16, 1)).to.throw(/round\(4 tokens × capacity factor 1 \/ 16 experts\) = 0/);
  });
});
