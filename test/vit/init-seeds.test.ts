/**
 * Seeds flow down explicitly (core/random.ts initSeed / SeedStream): every variable of a model draws
 * from its own seed. Before, layers drew with `seed + 1`, `seed + 2`, which were also the seeds the
 * model's stream handed to the next block, so block 0's MLP weights were a constant multiple of
 * block 1's attention weights (correlation 1). And a layer's default seed 0 meant "unseeded" to tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { DenseMLPLayer, ExpertsChoiceLayer, SoftMoELayer, TokensChoiceLayer } from '../../lib/moe/layers.js';
import { ViT } from '../../lib/vit/vit.js';
import { handConfig, KINDS } from './helpers.js';

/** Pearson correlation of the first k entries of two arrays. */
function correlation(a: Float32Array, b: Float32Array, k: number): number {
  let ma = 0,
    mb = 0;
  for (let i = 0; i < k; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= k;
  mb /= k;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < k; i++) {
    const da = a[i] - ma,
      db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa === 0 || sbb === 0 ? 0 : sab / Math.sqrt(saa * sbb);
}

describe('initialisation seeds', () => {
  for (const kind of KINDS) {
    it(`${kind} ViT: no two weight variables are drawn from the same seed`, () => {
      const model = new ViT({ ...handConfig(kind), depth: 3 });
      try {
        const vars = Object.entries(model.variables)
          .map(([name, v]) => [name, v.dataSync() as Float32Array] as const)
          .filter(([, data]) => data.length >= 64 && data.some((x) => x !== 0));
        expect(vars.length).to.be.greaterThan(6);
        for (let i = 0; i < vars.length; i++) {
          for (let j = i + 1; j < vars.length; j++) {
            const k = Math.min(vars[i][1].length, vars[j][1].length, 512);
            const r = correlation(vars[i][1], vars[j][1], k);
            expect(Math.abs(r), `${vars[i][0]} vs ${vars[j][0]}`).to.be.lessThan(0.4);
          }
        }
      } finally {
        model.dispose();
      }
    });
  }

  it('a layer built twice with the default seed has the same parameters', () => {
    const makers = [
      () => new SoftMoELayer({ dim: 8, numExperts: 3, slotsPerExpert: 2 }),
      () => new TokensChoiceLayer({ dim: 8, numExperts: 3, options: { k: 1, capacityFactor: 1 } }),
      () => new ExpertsChoiceLayer({ dim: 8, numExperts: 3, options: { capacityFactor: 1 } }),
      () => new DenseMLPLayer({ dim: 8 }),
    ];
    const before = tf.memory().numTensors;
    for (const make of makers) {
      const a = make();
      const b = make();
      for (const name of Object.keys(a.variables)) {
        expect(Array.from(a.variables[name].dataSync()), name).to.deep.equal(Array.from(b.variables[name].dataSync()));
      }
      a.dispose();
      b.dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
  });
});
