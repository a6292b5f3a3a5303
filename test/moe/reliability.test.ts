/**
 * Issue 12 (reliability) regressions in the library: options checked by name and type, same
 * seed → same weights, every parameter checked by `checkFinite`, the natural Tokens Choice
 * capacity cap, l2 normalisation without overflow, clear messages for odd calls.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { DenseMLPLayer, ExpertsChoiceLayer, SoftMoELayer, TokensChoiceLayer } from '../../lib/moe/layers.js';
import type { RouterParams } from '../../lib/moe/gating.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { softMoE, type SoftMoEOptions, type SoftMoEParams } from '../../lib/moe/soft-moe.js';
import { initSeed } from '../../lib/core/random.js';
import { checkOptions, nearestName } from '../../lib/ops/check.js';
import { l2Normalize } from '../../lib/ops/nn.js';
import { ViT } from '../../lib/vit/vit.js';
import type { ViTConfig } from '../../lib/vit/config.js';
import { forEachBackend } from '../helpers/golden.js';

// g = 2 sequences of m = 6 tokens, d = 4, n = 3 experts, p = 2 slots, h = 5.
const [G, M, D, N, P, H] = [2, 6, 4, 3, 2, 5];

function softParams(): SoftMoEParams {
  return {
    phi: tf.randomNormal([D, N, P], 0, 0.5, 'float32', 11) as tf.Tensor3D,
    scale: tf.scalar(1),
    w1: tf.randomNormal([N, D, H], 0, 0.5, 'float32', 12) as tf.Tensor3D,
    b1: tf.zeros([N, H]) as tf.Tensor2D,
    w2: tf.randomNormal([N, H, D], 0, 0.5, 'float32', 13) as tf.Tensor3D,
    b2: tf.zeros([N, D]) as tf.Tensor2D,
  };
}
function routerParams(): RouterParams {
  const { w1, b1, w2, b2 } = softParams();
  return { wg: tf.randomNormal([D, N], 0, 0.5, 'float32', 14) as tf.Tensor2D, w1, b1, w2, b2 };
}
const input = () => tf.randomNormal([G, M, D], 0, 1, 'float32', 1) as tf.Tensor3D;
/** A copy of `t` with a NaN at flat index `at`. */
function withNaN(t: tf.Tensor, at = 0): tf.Tensor {
  const data = t.dataSync().slice();
  data[at] = NaN;
  return tf.tensor(data, t.shape);
}
const disposeAll = (o: object) => Object.values(o).forEach((t) => (t as tf.Tensor).dispose());

forEachBackend(() => {
  describe('moe: reliability (issue 12)', function () {
    describe('options are checked by name and type', function () {
      it('checkOptions: unknown keys with "did you mean", the allowed list, wrong types, null', function () {
        const spec = { dispatch: ['softmax', 'uniform'], normalize: 'boolean', seed: 'seed' } as const;
        expect(() => checkOptions({ dispach: 'uniform' }, spec, 'f')).to.throw(
          'f: unknown option "dispach" — did you mean "dispatch"? Allowed: dispatch, normalize, seed',
        );
        expect(() => checkOptions({ colour: 1 }, spec, 'f')).to.throw(
          /unknown option "colour" Allowed: dispatch, normalize, seed$/,
        );
        expect(() => checkOptions({ normalize: 'no' }, spec, 'f')).to.throw(
          'f: normalize must be true or false, got "no"',
        );
        expect(() => checkOptions({ dispatch: 'bogus' }, spec, 'f')).to.throw(
          'f: dispatch must be one of "softmax", "uniform", got "bogus"',
        );
        for (const bad of [NaN, 1.5, -1])
          expect(() => checkOptions({ seed: bad }, spec, 'f')).to.throw(`f: seed must be an integer ≥ 0, got ${bad}`);
        expect(() => checkOptions(null, spec, 'f')).to.throw('f: options must be an object (or left out), got null');
        expect(() => checkOptions({ normalize: undefined }, spec, 'f')).to.not.throw();
        expect(nearestName('batchPriorty', ['batchPriority', 'capacity'])).to.equal('batchPriority');
        expect(nearestName('numExpert', ['numExperts'])).to.equal('numExperts');
        expect(nearestName('zzz', ['numExperts'])).to.equal(null);
      });

      it('softMoE, tokensChoice, expertsChoice reject misspelled and mistyped options', function () {
        const x = input();
        const sp = softParams();
        const rp = routerParams();
        expect(() => softMoE(x, sp, { dispach: 'uniform' } as SoftMoEOptions)).to.throw(
          /softMoE: unknown option "dispach" — did you mean "dispatch"\?/,
        );
        expect(() => softMoE(x, sp, { normalize: 'no' } as unknown as SoftMoEOptions)).to.throw(
          'softMoE: normalize must be true or false, got "no"',
        );
        expect(() => softMoE(x, sp, null as unknown as SoftMoEOptions)).to.throw(
          'softMoE: options must be an object (or left out), got null',
        );
        expect(() => tokensChoice(x, rp, { k: 1, capacityFactor: 1, batchPriorty: true } as never)).to.throw(
          /tokensChoice: unknown option "batchPriorty" — did you mean "batchPriority"\?/,
        );
        expect(() => tokensChoice(x, rp, { k: 1, capacityFactor: 1, seed: 1.5 })).to.throw(
          'tokensChoice: seed must be an integer ≥ 0, got 1.5',
        );
        expect(() => expertsChoice(x, rp, { capacityFactor: 1, metric: true } as never)).to.throw(
          /expertsChoice: unknown option "metric" — did you mean "metrics"\?/,
        );
        x.dispose();
        disposeAll(sp);
        disposeAll(rp);
      });

      it('layers and the ViT reject misspelled options, bad enums and bad seeds before making any tensor', function () {
        const before = tf.memory().numTensors;
        expect(
          () => new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: 1, expertInit: 'bogus' as 'shared' }),
        ).to.throw('SoftMoELayer: expertInit must be one of "shared", "independent", got "bogus"');
        expect(
          () =>
            new SoftMoELayer({
              dim: D,
              numExperts: N,
              slotsPerExpert: 1,
              options: { dispach: 'uniform' } as SoftMoEOptions,
            }),
        ).to.throw(/unknown option "dispach"/);
        for (const seed of [NaN, 1.5, -1]) {
          expect(() => new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: 1, seed })).to.throw(
            `SoftMoELayer: seed must be an integer ≥ 0, got ${seed}`,
          );
          expect(() => new DenseMLPLayer({ dim: D, seed })).to.throw(
            `DenseMLPLayer: seed must be an integer ≥ 0, got ${seed}`,
          );
        }
        expect(
          () =>
            new TokensChoiceLayer({
              dim: D,
              numExperts: N,
              options: { k: 1, capacityFactor: 1, batchPriorty: true } as never,
            }),
        ).to.throw(/did you mean "batchPriority"/);
        expect(() => new ExpertsChoiceLayer({ dim: D, numExperts: N, option: {} } as never)).to.throw(
          /ExpertsChoiceLayer needs options/,
        );
        expect(() => new ViT({ kind: 'soft', moe: { numExpert: 4 } } as ViTConfig)).to.throw(
          /ViT config: unknown option "moe\.numExpert" — did you mean "moe\.numExperts"\?/,
        );
        expect(
          () => new ViT({ kind: 'soft', moe: { softOptions: { normalize: 'no' } } } as unknown as ViTConfig),
        ).to.throw('ViT config: moe.softOptions.normalize must be true or false, got "no"');
        expect(
          () => new ViT({ kind: 'tokens-choice', moe: { routerOptions: { batchPriorty: true } as never } }),
        ).to.throw(/did you mean "batchPriority"/);
        expect(() => new ViT({ dims: 32 } as ViTConfig)).to.throw(/unknown option "dims" — did you mean "dim"\?/);
        expect(tf.memory().numTensors).to.equal(before);
      });
    });

    describe('seeds', function () {
      it('a layer built twice with the default seed gets identical parameters; explicit seeds keep their weights', async function () {
        for (const make of [
          () => new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: P }),
          () => new TokensChoiceLayer({ dim: D, numExperts: N, options: { k: 1, capacityFactor: 1 } }),
          () => new ExpertsChoiceLayer({ dim: D, numExperts: N, options: { capacityFactor: 1 } }),
        ]) {
          const [a, b] = [make(), make()];
          for (const name of Object.keys(a.variables)) {
            expect(Array.from(await a.variables[name].data()), name).to.deep.equal(
              Array.from(await b.variables[name].data()),
            );
          }
          a.dispose();
          b.dispose();
        }
        // Φ is drawn with the seed initSeed(seed, 0) (lib/core/random.ts), never 0 = "unseeded".
        const layer = new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: P, seed: 7 });
        const direct = tf.randomNormal([D, N, P], 0, 1 / Math.sqrt(D), 'float32', initSeed(7, 0));
        expect(Array.from(await layer.variables.phi.data())).to.deep.equal(Array.from(await direct.data()));
        layer.dispose();
        direct.dispose();
      });
    });

    describe('checkFinite checks every parameter, by name', function () {
      it('softMoE: NaN in phi, scale, w1, b1, w2 or b2 is named', function () {
        const x = input();
        for (const name of ['phi', 'scale', 'w1', 'b1', 'w2', 'b2'] as const) {
          const p = softParams();
          const bad = { ...p, [name]: withNaN(p[name]) } as SoftMoEParams;
          expect(() => softMoE(x, bad, { checkFinite: true }), name).to.throw(
            new RegExp(`^${name} must be finite, got NaN at flat index 0`),
          );
          disposeAll(p);
          bad[name].dispose();
        }
        x.dispose();
      });

      it('tokensChoice and expertsChoice: NaN in wg or an expert weight is named', function () {
        const x = input();
        for (const name of ['wg', 'w1', 'b1', 'w2', 'b2'] as const) {
          const p = routerParams();
          const bad = { ...p, [name]: withNaN(p[name]) } as RouterParams;
          expect(() => tokensChoice(x, bad, { k: 1, capacityFactor: 1, checkFinite: true }), name).to.throw(
            new RegExp(`^${name} must be finite`),
          );
          expect(() => expertsChoice(x, bad, { capacityFactor: 1, checkFinite: true }), name).to.throw(
            new RegExp(`^${name} must be finite`),
          );
          disposeAll(p);
          bad[name].dispose();
        }
        x.dispose();
      });

      it('documented: without checkFinite one NaN token turns its whole sequence to NaN (every router), the other sequence stays finite', async function () {
        const x = withNaN(input(), 2 * D + 1) as tf.Tensor3D; // token 2 of sequence 0
        const sp = softParams();
        const rp = routerParams();
        const outputs = {
          soft: softMoE(x, sp).y,
          'tokens-choice': tokensChoice(x, rp, { k: 1, capacityFactor: 2 }),
          'experts-choice': expertsChoice(x, rp, { capacityFactor: 2 }),
        };
        for (const [name, out] of Object.entries(outputs)) {
          const y = (out instanceof tf.Tensor ? out : out.y) as tf.Tensor3D;
          const [first, second] = (await y.array()) as number[][][];
          expect(first.flat().every(Number.isNaN), `${name}: sequence 0`).to.equal(true);
          expect(second.flat().every(Number.isFinite), `${name}: sequence 1`).to.equal(true);
          tf.dispose(out as unknown as tf.TensorContainer);
        }
        x.dispose();
        disposeAll(sp);
        disposeAll(rp);
      });
    });

    describe('Tokens Choice capacity has its natural cap m', function () {
      it('capacity 1e7 and capacityFactor 1e6 give the output of capacity m, and the backend still works', async function () {
        const x = input();
        const p = routerParams();
        const reference = tokensChoice(x, p, { k: 2, capacity: M });
        for (const options of [
          { k: 2, capacity: 1e7 },
          { k: 2, capacityFactor: 1e6 },
        ]) {
          const r = tokensChoice(x, p, options);
          expect(r.capacity).to.equal(M);
          expect(Array.from(await r.y.data())).to.deep.equal(Array.from(await reference.y.data()));
          tf.dispose(r as unknown as tf.TensorContainer);
        }
        tf.dispose(reference as unknown as tf.TensorContainer);
        const sum = tf.add(tf.scalar(1), tf.scalar(2));
        expect((await sum.data())[0]).to.equal(3);
        sum.dispose();
        x.dispose();
        disposeAll(p);
      });
    });

    describe('clear messages', function () {
      it('an int32 expert weight is named (not "fast-wasm: expected float32 tensors")', function () {
        const x = input();
        const p = softParams();
        const b1 = tf.zeros([N, H], 'int32') as tf.Tensor2D;
        expect(() => softMoE(x, { ...p, b1 })).to.throw('b1 must have dtype float32, got int32');
        const rp = routerParams();
        expect(() => tokensChoice(x, { ...rp, b1 }, { k: 1, capacityFactor: 1 })).to.throw(
          'b1 must have dtype float32, got int32',
        );
        const phi = tf.zeros([D, N, P], 'int32') as tf.Tensor3D;
        expect(() => softMoE(x, { ...p, phi })).to.throw('phi must have dtype float32, got int32');
        [x, b1, phi].forEach((t) => t.dispose());
        disposeAll(p);
        disposeAll(rp);
      });

      it('a ViT whose constructor fails leaves no tensors behind', function () {
        const before = tf.memory().numTensors;
        // Blocks 0 and 1 are dense; block 2's Soft MoE fails (p = round(49·0.01/16) = 0 slots)
        // after its norms and attention exist.
        expect(() => new ViT({ kind: 'soft', moe: { capacityFactor: 0.01 } })).to.throw(
          /slots per expert = round\(49 tokens × capacity factor 0\.01 \/ 16 experts\) = 0/,
        );
        expect(tf.memory().numTensors).to.equal(before);
      });
    });

    describe('l2 normalisation does not overflow', function () {
      it('rows of size 1e20 normalise to unit length, rows of 1e-20 follow the eps formula, ordinary rows are unchanged', async function () {
        const rows = [
          [3e20, 4e20, 0, 0],
          [-1e20, 1e20, 1e20, -1e20],
          [3e-20, 4e-20, 0, 0],
          [3, 4, 0, 0],
          [0, 0, 0, 0],
        ];
        const v = tf.tensor2d(rows);
        const y = (await l2Normalize(v, -1).array()) as number[][];
        const yT = (await tf.tidy(() => l2Normalize(v.transpose(), 0).transpose()).array()) as number[][];
        // Expected in float64 from the definition y = v / √(Σv² + 1e-6).
        const expected = rows.map((r) => {
          const s = r.reduce((a, b) => a + b * b, 0);
          return r.map((x) => x / Math.sqrt(s + 1e-6));
        });
        for (const out of [y, yT]) {
          out.forEach((row, i) =>
            row.forEach((value, j) =>
              expect(value, `row ${i}, ${j}`).to.be.closeTo(expected[i][j], 1e-6 * Math.abs(expected[i][j]) + 1e-30),
            ),
          );
        }
        v.dispose();
      });

      it('Soft MoE dispatch stays a softmax (not uniform) for inputs near 1e20', async function () {
        const p = softParams();
        const x = tf.tidy(() => tf.mul(input(), 1e20)) as tf.Tensor3D;
        const small = tf.tidy(() => tf.div(x, 1e20)) as tf.Tensor3D;
        const big = softMoE(x, p, { returnWeights: true });
        const ref = softMoE(small, p, { returnWeights: true });
        // l2 normalisation makes the logits scale-free: the dispatch weights must agree.
        const [a, b] = [await (big.dispatch as tf.Tensor).data(), await (ref.dispatch as tf.Tensor).data()];
        a.forEach((value, i) => expect(value).to.be.closeTo(b[i], 1e-5));
        expect(Math.max(...Array.from(b)) - Math.min(...Array.from(b))).to.be.greaterThan(0.01);
        tf.dispose([x, small, big as unknown as tf.TensorContainer, ref as unknown as tf.TensorContainer]);
        disposeAll(p);
      });
    });
  });
});
