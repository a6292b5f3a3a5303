/**
 * moeLayerFlops (lib/moe/cost.ts): every expected count below is worked out by hand in the
 * comment beside it from the formulas in the file comment; the capacities are cross-checked
 * against the routers themselves.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { moeLayerFlops, type MoELayerSizes } from '../../lib/moe/cost.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { disposeParams, randomRouterParams } from './random.js';

describe('moeLayerFlops (Shazeer et al. 2017 §1; paper §2.1, §3)', function () {
  // m = 10 tokens, d = 4, h = 6, n = 5 experts: one expert on one token = 4·d·h = 96 FLOPs.
  const sizes: MoELayerSizes = { tokens: 10, dim: 4, hidden: 6, experts: 5 };

  it('dense MLP: 4·m·d·h', function () {
    const f = moeLayerFlops('dense-mlp', sizes);
    expect(f.experts).to.equal(960); // 10 · 96
    expect(f.router + f.dispatchCombine).to.equal(0);
    expect(f.perToken).to.equal(96);
  });

  it('dense mixture: every expert on every token', function () {
    const f = moeLayerFlops('dense-mixture', sizes);
    expect(f.router).to.equal(400); // 2·10·4·5
    expect(f.experts).to.equal(4800); // 5 experts · 10 tokens · 96
    expect(f.dispatchCombine).to.equal(400); // Σᵢ G(x)ᵢ Eᵢ(x): 2·10·5·4
    expect(f.total).to.equal(5600);
    expect(f.perToken).to.equal(560);
  });

  it('Tokens Choice K = 2, cf = 1: C = ceil(10·2/5) = 4', function () {
    const f = moeLayerFlops('tokens-choice', { ...sizes, k: 2 });
    expect(f.bufferSize).to.equal(4);
    expect(f.router).to.equal(400); // 2·10·4·5
    expect(f.experts).to.equal(1920); // 5·4 slots · 96
    expect(f.dispatchCombine).to.equal(3200); // 2 · (2·10·(5·4)·4)
    expect(f.total).to.equal(5520);
  });

  it('Experts Choice cf = 1: C = round(10/5) = 2', function () {
    const f = moeLayerFlops('experts-choice', sizes);
    expect(f.bufferSize).to.equal(2);
    expect(f.experts).to.equal(960); // 5·2 · 96
    expect(f.dispatchCombine).to.equal(1600); // 2 · (2·10·10·4)
    expect(f.total).to.equal(400 + 960 + 1600);
  });

  it('Soft MoE: p = round(10·1/5) = 2 slots per expert, or as given', function () {
    const f = moeLayerFlops('soft', sizes);
    expect(f.bufferSize).to.equal(2);
    expect(f.router).to.equal(800); // X·Φ: 2·10·4·(5·2)
    expect(f.dispatchCombine).to.equal(1600); // Dᵀ·X and C·Ỹ: 2·(2·10·10·4)
    expect(f.experts).to.equal(960); // 10 slots · 96
    const g = moeLayerFlops('soft', { ...sizes, slotsPerExpert: 3 });
    expect(g.experts).to.equal(1440); // 15 slots · 96
  });

  it('the sparse expert FLOPs stay flat as n grows, the dense mixture grows linearly', function () {
    // m = 64, K = 1, cf = 1: n·C = 64 slots whenever n divides 64, so experts = 64·96 for every n.
    const base = { tokens: 64, dim: 4, hidden: 6 };
    for (const n of [2, 4, 8, 16, 32, 64]) {
      expect(moeLayerFlops('tokens-choice', { ...base, experts: n }).experts).to.equal(64 * 96);
      expect(moeLayerFlops('dense-mixture', { ...base, experts: n }).experts).to.equal(n * 64 * 96);
    }
  });

  it('capacities equal those the routers compute', function () {
    const m = 12;
    const x = tf.randomNormal([1, m, 4], 0, 1, 'float32', 1) as tf.Tensor3D;
    for (const [n, k, cf] of [
      [5, 1, 1],
      [3, 2, 1.25],
      [4, 1, 0.5],
      [7, 3, 2],
    ] as const) {
      const params = randomRouterParams(4, n, 3, 9);
      const tc = tokensChoice(x, params, { k, capacityFactor: cf, auxLoss: 'none' });
      const ec = expertsChoice(x, params, { capacityFactor: cf });
      expect(
        moeLayerFlops('tokens-choice', { tokens: m, dim: 4, hidden: 3, experts: n, k, capacityFactor: cf }).bufferSize,
        `TC n=${n} k=${k} cf=${cf}`,
      ).to.equal(tc.capacity);
      expect(
        moeLayerFlops('experts-choice', { tokens: m, dim: 4, hidden: 3, experts: n, capacityFactor: cf }).bufferSize,
        `EC n=${n} cf=${cf}`,
      ).to.equal(ec.capacity);
      tf.dispose([tc, ec] as unknown as tf.TensorContainer);
      disposeParams(params);
    }
    x.dispose();
  });

  it('rejects bad sizes with a clear message', function () {
    expect(() => moeLayerFlops('soft', { tokens: 10, dim: 4, hidden: 6 })).to.throw(/needs sizes.experts/);
    expect(() => moeLayerFlops('tokens-choice', { ...sizes, k: 6 })).to.throw(
      /k must be ≤ the number of experts n = 5, got k = 6/,
    );
    expect(() => moeLayerFlops('dense-mlp', { ...sizes, tokens: 2.5 })).to.throw(
      /tokens m must be an integer ≥ 1, got 2.5/,
    );
    expect(() => moeLayerFlops('sparse' as never, sizes)).to.throw(/kind must be one of/);
    expect(() => moeLayerFlops('soft', { ...sizes, capacityFactor: 0 })).to.throw(
      /capacityFactor must be a finite number > 0, got 0/,
    );
  });
});
