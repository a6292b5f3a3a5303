/**
 * Bad input to the functional API gives an error that names the offending value and what was
 * expected (common brief: "Bad input → clear error naming the value and the expectation").
 * Each case asserts the message, including the bad value itself.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { denseMLP } from '../../lib/moe/dense-mlp.js';
import { noisyTopKGating, type RouterParams } from '../../lib/moe/gating.js';
import { TokensChoiceLayer } from '../../lib/moe/layers.js';
import { importanceLoss, loadLoss } from '../../lib/moe/losses.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice, type TokensChoiceOptions } from '../../lib/moe/routers/tokens-choice.js';
import { slotsFromCapacityFactor, softMoE } from '../../lib/moe/soft-moe.js';

// g = 2 sequences of m = 6 tokens, d = 4, n = 3 experts, h = 5.
const [G, M, D, N, H] = [2, 6, 4, 3, 5];

/** A tensor of ones with a shape chosen at run time (typed loosely on purpose: shapes may be wrong). */
function ones(shape: number[]): tf.Tensor {
  return tf.ones(shape);
}

function params(overrides: Partial<Record<keyof RouterParams, number[]>> = {}): RouterParams {
  const shape = (k: keyof RouterParams, def: number[]) => overrides[k] ?? def;
  return {
    wg: ones(shape('wg', [D, N])) as tf.Tensor2D,
    w1: ones(shape('w1', [N, D, H])) as tf.Tensor3D,
    b1: ones(shape('b1', [N, H])) as tf.Tensor2D,
    w2: ones(shape('w2', [N, H, D])) as tf.Tensor3D,
    b2: ones(shape('b2', [N, D])) as tf.Tensor2D,
  };
}
const x = () => tf.randomNormal([G, M, D], 0, 1, 'float32', 1) as tf.Tensor3D;
const tc = (options: Partial<TokensChoiceOptions>, xx = x(), p = params()) =>
  tokensChoice(xx, p, { k: 1, capacityFactor: 1, ...options } as TokensChoiceOptions);
const withNaN = () => {
  const data = new Float32Array(G * M * D).fill(0.5);
  data[5] = NaN;
  return tf.tensor3d(data, [G, M, D]);
};
const softParams = (phiShape: number[], scaleShape: number[] = []) => ({
  ...params(),
  phi: ones(phiShape) as tf.Tensor3D,
  scale: ones(scaleShape) as tf.Scalar,
});

const cases: Array<[string, () => unknown, RegExp]> = [
  // Tokens Choice
  ['x of rank 2', () => tc({}, ones([M, D]) as tf.Tensor3D), /x \[g, m, d\] must have rank 3, got shape \[6, 4\]/],
  [
    'x of dtype int32',
    () => tc({}, tf.ones([G, M, D], 'int32') as tf.Tensor3D),
    /x must have dtype float32, got int32/,
  ],
  [
    'wg of the wrong width',
    () => tc({}, x(), params({ wg: [5, N] })),
    /wg must be \[4, n\] to match the input width d = 4, got \[5, 3\]/,
  ],
  [
    'wg with n = 0 experts',
    () => tc({}, x(), params({ wg: [D, 0] })),
    /wg must have n ≥ 1 experts \(columns\), got \[4, 0\]/,
  ],
  ['K > n', () => tc({ k: 4 }), /k must be ≤ the number of experts n = 3, got k = 4/],
  ['K = 0', () => tc({ k: 0 }), /k must be an integer ≥ 1, got 0/],
  ['K not an integer', () => tc({ k: 1.5 }), /k must be an integer ≥ 1, got 1.5/],
  ['capacity factor 0', () => tc({ capacityFactor: 0 }), /capacityFactor must be a finite number > 0, got 0/],
  ['capacity factor < 0', () => tc({ capacityFactor: -1 }), /capacityFactor must be a finite number > 0, got -1/],
  ['capacity factor NaN', () => tc({ capacityFactor: NaN }), /capacityFactor must be a finite number > 0, got NaN/],
  [
    'unknown ceilOrRound',
    () => tc({ ceilOrRound: 'floor' as 'ceil' }),
    /ceilOrRound must be one of "ceil", "round", got "floor"/,
  ],
  ['multipleOf 0', () => tc({ multipleOf: 0 }), /multipleOf must be an integer ≥ 1, got 0/],
  ['capacity override 0', () => tc({ capacity: 0 }), /capacity must be an integer ≥ 1, got 0/],
  [
    'neither capacityFactor nor capacity',
    () => tokensChoice(x(), params(), { k: 1 }),
    /needs options.capacityFactor \(or options.capacity\), got neither/,
  ],
  [
    'w1 with a different number of experts than wg',
    () => tc({}, x(), params({ w1: [4, D, H] })),
    /w1 must hold 3 experts \(leading axis\), got \[4, 4, 5\]/,
  ],
  [
    'w1 of the wrong width',
    () => tc({}, x(), params({ w1: [N, 7, H] })),
    /w1 must be \[n, 4, h\] to match the input width 4, got \[3, 7, 5\]/,
  ],
  ['b2 of the wrong shape', () => tc({}, x(), params({ b2: [N, 5] })), /b2 must have shape \[3, 4\].*got \[3, 5\]/],
  [
    'NaN in x with checkFinite',
    () => tc({ checkFinite: true }, withNaN()),
    /x must be finite, got NaN at flat index 5 of shape \[2, 6, 4\]/,
  ],
  [
    'Infinity in wg with checkFinite',
    () =>
      tc({ checkFinite: true }, x(), {
        ...params(),
        wg: tf.tensor2d([Infinity, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [D, N]),
      }),
    /wg must be finite, got Infinity at flat index 0/,
  ],
  ['negative noiseStd', () => tc({ noiseStd: -1 }), /noiseStd must be a finite number ≥ 0, got -1/],
  [
    'load loss without noise',
    () => tc({ auxLoss: 'load' }),
    /auxLoss "load" needs noisy gates \(noiseStd > 0\), got noiseStd = 0/,
  ],
  ['unknown auxLoss', () => tc({ auxLoss: 'zloss' as 'none' }), /auxLoss must be one of .*got "zloss"/],
  [
    'batchPriority not a boolean',
    () => tc({ batchPriority: 'yes' as unknown as boolean }),
    /batchPriority must be true or false, got "yes"/,
  ],
  // Experts Choice
  [
    'Experts Choice capacity > m',
    () => expertsChoice(x(), params(), { capacity: 7 }),
    /capacity must be ≤ the m = 6 tokens of a group .*got 7/,
  ],
  [
    'Experts Choice capacity factor ≤ 0',
    () => expertsChoice(x(), params(), { capacityFactor: -0.5 }),
    /capacityFactor must be a finite number > 0, got -0.5/,
  ],
  [
    'Experts Choice unknown ceilOrRound',
    () => expertsChoice(x(), params(), { capacityFactor: 1, ceilOrRound: 'up' as 'ceil' }),
    /ceilOrRound must be one of "ceil", "round", got "up"/,
  ],
  [
    'Experts Choice x of rank 4',
    () => expertsChoice(tf.ones([1, G, M, D]) as unknown as tf.Tensor3D, params(), { capacityFactor: 1 }),
    /x \[g, m, d\] must have rank 3, got shape \[1, 2, 6, 4\]/,
  ],
  // Soft MoE
  [
    'Soft MoE with p = 0 slots',
    () => softMoE(x(), softParams([D, N, 0])),
    /phi must have n ≥ 1 experts and p ≥ 1 slots per expert, got \[4, 3, 0\]/,
  ],
  [
    'Soft MoE with n = 0 experts',
    () => softMoE(x(), softParams([D, 0, 2])),
    /phi must have n ≥ 1 experts and p ≥ 1 slots per expert, got \[4, 0, 2\]/,
  ],
  [
    'Soft MoE phi of the wrong width',
    () => softMoE(x(), softParams([5, N, 2])),
    /phi must be \[4, n, p\] to match the input width d = 4, got \[5, 3, 2\]/,
  ],
  [
    'Soft MoE scale not a scalar',
    () => softMoE(x(), softParams([D, N, 1], [1])),
    /scale must have rank 0, got shape \[1\] \(rank 1\)/,
  ],
  [
    'Soft MoE capacity factor 0',
    () => slotsFromCapacityFactor(6, 3, 0),
    /capacityFactor must be a finite number > 0, got 0/,
  ],
  // Gating, losses, dense MLP, layers
  [
    'noisy top-k with K > n',
    () =>
      noisyTopKGating(
        tf.ones([M, D]),
        { wg: tf.ones([D, N]) as tf.Tensor2D, wNoise: tf.ones([D, N]) as tf.Tensor2D },
        { k: 5 },
      ),
    /k must be ≤ the number of experts n = 3, got k = 5/,
  ],
  [
    'noisy top-k with W_noise of another shape',
    () =>
      noisyTopKGating(
        tf.ones([M, D]),
        { wg: tf.ones([D, N]) as tf.Tensor2D, wNoise: tf.ones([D, 2]) as tf.Tensor2D },
        { k: 1 },
      ),
    /wNoise must have shape \[4, 3\].*got \[4, 2\]/,
  ],
  [
    'importance loss of a vector',
    () => importanceLoss(tf.ones([3])),
    /gates must be \[m, n\] or \[g, m, n\], got shape \[3\]/,
  ],
  [
    'load loss with noiseStd 0',
    () => loadLoss(tf.ones([M, N]), tf.ones([M, N]), { noiseStd: 0, k: 1 }),
    /noiseStd must be a finite number > 0, got 0/,
  ],
  [
    'dense MLP w1 of the wrong width',
    () =>
      denseMLP(tf.ones([M, D]), {
        w1: tf.ones([3, H]) as tf.Tensor2D,
        b1: tf.ones([H]) as tf.Tensor1D,
        w2: tf.ones([H, 3]) as tf.Tensor2D,
        b2: tf.ones([3]) as tf.Tensor1D,
      }),
    /w1 must be \[4, h\] to match the input width 4, got \[3, 5\]/,
  ],
  [
    'layer with dim 0',
    () => new TokensChoiceLayer({ dim: 0, numExperts: N, options: { k: 1, capacityFactor: 1 } }),
    /dim must be an integer ≥ 1, got 0/,
  ],
];

describe('bad input: errors name the value and the expectation', function () {
  for (const [name, fn, message] of cases) {
    it(name, function () {
      const before = tf.memory().numTensors;
      expect(() => tf.tidy(() => void fn())).to.throw(message);
      expect(tf.memory().numTensors, 'no tensor left behind by the failed call').to.equal(before);
    });
  }
});
