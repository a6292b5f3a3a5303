/**
 * Tokens Choice and Experts Choice against the reference vectors (test/fixtures/golden, float64
 * PyTorch, see their README): outputs, gates, every routing decision, drop fractions and the
 * gradients of loss = sum(y·r) for x, wg, w1, b1, w2, b2, within 1e-4 + 1e-3·|reference|, on
 * every test backend.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { RouterParams } from '../../lib/moe/gating.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice, type TokensChoiceOptions } from '../../lib/moe/routers/tokens-choice.js';
import { expectClose, expectShape, forEachBackend, loadGolden, readAll, toTensor, type GoldenCase, type GoldenTensor, type ReadTensor } from '../helpers/golden.js';

const PARAM_NAMES = ['wg', 'w1', 'b1', 'w2', 'b2'] as const;

function paramsOf(c: GoldenCase): RouterParams {
  const t = (k: string) => toTensor(c.params[k]);
  return { wg: t('wg') as tf.Tensor2D, w1: t('w1') as tf.Tensor3D, b1: t('b1') as tf.Tensor2D, w2: t('w2') as tf.Tensor3D, b2: t('b2') as tf.Tensor2D };
}

function tcOptions(c: GoldenCase): TokensChoiceOptions {
  const cfg = c.config as { k: number; capacity_factor: number; ceil_or_round: 'ceil' | 'round'; multiple_of: number | null; batch_priority: boolean };
  return { k: cfg.k, capacityFactor: cfg.capacity_factor, ceilOrRound: cfg.ceil_or_round, multipleOf: cfg.multiple_of, batchPriority: cfg.batch_priority };
}

function ecOptions(c: GoldenCase) {
  const cfg = c.config as { capacity_factor: number; ceil_or_round: 'ceil' | 'round' };
  return { capacityFactor: cfg.capacity_factor, ceilOrRound: cfg.ceil_or_round };
}

/** Integer and boolean outputs must match exactly. */
function expectExact(got: ReadTensor, want: GoldenTensor, what: string): void {
  expectShape(got, want.shape, what);
  expect(Array.from(got.data), what).to.deep.equal((want.data as Array<number | boolean>).map(Number));
}

const GRAD_NAMES = ['x', ...PARAM_NAMES] as const;

/** Check the gradients of sum(y·r) with respect to x and every parameter against the reference. */
async function checkGrads(c: GoldenCase, forward: (x: tf.Tensor3D, p: RouterParams) => tf.Tensor3D): Promise<void> {
  const got = await readAll(() => {
    const x = toTensor(c.inputs.x);
    const r = toTensor(c.inputs.r);
    const p = paramsOf(c);
    const f = (...args: tf.Tensor[]) => {
      const [xx, wg, w1, b1, w2, b2] = args;
      const y = forward(xx as tf.Tensor3D, { wg: wg as tf.Tensor2D, w1: w1 as tf.Tensor3D, b1: b1 as tf.Tensor2D, w2: w2 as tf.Tensor3D, b2: b2 as tf.Tensor2D });
      return tf.sum(tf.mul(y, r));
    };
    const grads = tf.grads(f)([x, p.wg, p.w1, p.b1, p.w2, p.b2]);
    return Object.fromEntries(GRAD_NAMES.map((name, i) => [name, grads[i]])) as Record<(typeof GRAD_NAMES)[number], tf.Tensor>;
  });
  for (const name of GRAD_NAMES) {
    expectShape(got[name], c.grads[name].shape, `grad ${name}`);
    expectClose(got[name], c.grads[name].data as number[], `grad ${name}`);
  }
}

describe('sparse routers against the reference vectors', function () {
  forEachBackend(
    () => {
      for (const c of loadGolden('tokens_choice')) {
        describe(`tokensChoice golden ${c.name}`, function () {
          it('matches y, gates, expertIndex, combineWeight, bufferIndex, kept, tokenKept, expertLoad, drop fractions, capacity', async function () {
            let capacity = -1;
            const got = await readAll(() => {
              const out = tokensChoice(toTensor(c.inputs.x) as tf.Tensor3D, paramsOf(c), tcOptions(c));
              capacity = out.capacity;
              const { y, gates, combineWeight, expertIndex, bufferIndex, kept, tokenKept, expertLoad, dropFraction, choiceDropFraction } = out;
              return { y, gates, combineWeight, expertIndex, bufferIndex, kept, tokenKept, expertLoad, dropFraction, choiceDropFraction };
            });
            const e = c.expected as Record<string, GoldenTensor>;
            expect(capacity, 'capacity').to.equal(c.expected.capacity);
            for (const [key, value] of [['y', got.y], ['gates', got.gates], ['combine_weight', got.combineWeight]] as const) {
              expectShape(value, e[key].shape, key);
              expectClose(value, e[key].data as number[], key);
            }
            expectExact(got.expertIndex, e.expert_index, 'expert_index');
            expectExact(got.bufferIndex, e.buffer_index, 'buffer_index');
            expectExact(got.kept, e.kept, 'kept');
            expectExact(got.tokenKept, e.token_kept, 'token_kept');
            expectExact(got.expertLoad, e.expert_load, 'expert_load');
            expectClose(got.dropFraction, [c.expected.drop_fraction as number], 'drop_fraction', 1e-6, 0);
            expectClose(got.choiceDropFraction, [c.expected.choice_drop_fraction as number], 'choice_drop_fraction', 1e-6, 0);
          });
          it('matches the gradients of sum(y·r) for x, wg, w1, b1, w2, b2', async function () {
            await checkGrads(c, (x, p) => tokensChoice(x, p, tcOptions(c)).y);
          });
        });
      }
      for (const c of loadGolden('experts_choice')) {
        describe(`expertsChoice golden ${c.name}`, function () {
          it('matches y, gates, selectedIndexSorted, tokenExpertMask, numExpertsPerToken, tokenKept, drop fraction, capacity', async function () {
            let capacity = -1;
            const got = await readAll(() => {
              const out = expertsChoice(toTensor(c.inputs.x) as tf.Tensor3D, paramsOf(c), ecOptions(c));
              capacity = out.capacity;
              const { y, gates, selectedIndexSorted, tokenExpertMask, numExpertsPerToken, tokenKept, dropFraction, expertLoad } = out;
              return { y, gates, selectedIndexSorted, tokenExpertMask, numExpertsPerToken, tokenKept, dropFraction, expertLoad };
            });
            const e = c.expected as Record<string, GoldenTensor>;
            expect(capacity, 'capacity').to.equal(c.expected.capacity);
            for (const [key, value] of [['y', got.y], ['gates', got.gates]] as const) {
              expectShape(value, e[key].shape, key);
              expectClose(value, e[key].data as number[], key);
            }
            expectExact(got.selectedIndexSorted, e.selected_index_sorted, 'selected_index_sorted');
            expectExact(got.tokenExpertMask, e.token_expert_mask, 'token_expert_mask');
            expectExact(got.numExpertsPerToken, e.num_experts_per_token, 'num_experts_per_token');
            expectExact(got.tokenKept, e.token_kept, 'token_kept');
            expectClose(got.dropFraction, [c.expected.drop_fraction as number], 'drop_fraction', 1e-6, 0);
            // Every expert is exactly full: load = C for each expert (by construction of the router).
            expect(Array.from(got.expertLoad.data)).to.deep.equal(new Array(got.expertLoad.data.length).fill(capacity));
          });
          it('matches the gradients of sum(y·r) for x, wg, w1, b1, w2, b2', async function () {
            await checkGrads(c, (x, p) => expertsChoice(x, p, ecOptions(c)).y);
          });
        });
      }
    },
    { webgpu: true },
  );
});
