import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { forEachBackend } from '../helpers/golden.js';
import { modelCost } from '../../lib/vit/cost.js';
import { ViT } from '../../lib/vit/vit.js';
import { handConfig, KINDS } from './helpers.js';

// Parameters of handConfig(kind), counted by hand (d 8, MLP 16, m 4 tokens, patch 4×4×1, n 2, p 1):
//   patch kernel 16·8 = 128, bias 8, position 4·8 = 32                         → 168
//   block 0 (dense): 2 LayerNorms 2·(8+8) = 32, attention 4·(8·8 + 8) = 288,
//                    MLP 8·16 + 16 + 16·8 + 8 = 280                            → 600
//   block 1: LayerNorms 32 + attention 288 = 320, plus its MLP slot:
//     dense 280                                                                → 600
//     soft  Φ 8·2·1 = 16, scale 1, 2 experts × 280 = 560                        → 897
//     tokens-choice / experts-choice  W_g 8·2 = 16, 2 experts × 280 = 560       → 896
//   encoder LayerNorm 16, head 8·3 + 3 = 27                                    → 43
const HAND_PARAMETERS = {
  dense: 168 + 600 + 600 + 43, // 1411
  soft: 168 + 600 + 897 + 43, // 1708
  'tokens-choice': 168 + 600 + 896 + 43, // 1707
  'experts-choice': 168 + 600 + 896 + 43, // 1707
};

function images(b: number, side = 8): tf.Tensor4D {
  return tf.tidy(() => tf.sin(tf.range(0, b * side * side, 1).mul(0.37)).reshape([b, side, side, 1]) as tf.Tensor4D);
}

forEachBackend(() => {
  describe('vit/vit: the Vision Transformer with dense and MoE blocks', function () {
    for (const kind of KINDS) {
      describe(kind, function () {
        it('logits [b, classes], a scalar auxiliary loss, and the hand-counted parameters', function () {
          const model = new ViT(handConfig(kind));
          expect(model.config.blocks).to.deep.equal(['dense', kind]);
          const x = images(3);
          const out = model.apply(x, { training: true, step: 0 });
          expect(out.logits.shape).to.deep.equal([3, 3]);
          expect(out.auxLoss.shape).to.deep.equal([]);
          expect(model.parameterCount).to.equal(HAND_PARAMETERS[kind]);
          expect(modelCost(model.config).parameters).to.equal(HAND_PARAMETERS[kind]);
          // Typed drop fractions: block 1's, for the sparse routers only (the trainer averages these).
          const sparse = kind === 'tokens-choice' || kind === 'experts-choice';
          expect(out.dropFractions).to.have.length(sparse ? 1 : 0);
          if (sparse) expect(out.dropFractions[0]).to.equal(out.metrics['block1/dropFraction']);
          // The zero-initialised head (vmoe head_kernel_zero_init) gives logits = bias = 0.
          expect(Array.from(out.logits.dataSync())).to.deep.equal(new Array(9).fill(0));
          tf.dispose([x, out.logits, out.auxLoss, ...Object.values(out.metrics)]);
          model.dispose();
        });

        it('Forward: no memory leak; dispose() frees every variable', function () {
          const before = tf.memory().numTensors;
          const model = new ViT(handConfig(kind));
          expect(tf.memory().numTensors - before).to.equal(Object.keys(model.variables).length);
          const x = images(2);
          const warm = model.apply(x, { training: true, step: 1 });
          tf.dispose([warm.logits, warm.auxLoss, ...Object.values(warm.metrics)]);
          const count = tf.memory().numTensors;
          for (let i = 0; i < 3; i++) {
            const out = model.apply(x, { training: i % 2 === 0, step: i });
            tf.dispose([out.logits, out.auxLoss, ...Object.values(out.metrics)]);
          }
          expect(tf.memory().numTensors).to.equal(count);
          x.dispose();
          model.dispose();
          expect(tf.memory().numTensors).to.equal(before);
        });
      });
    }

    it('variables have unique hierarchical names; MoE blocks name their slot "moe"', function () {
      const model = new ViT(handConfig('soft'));
      const names = Object.keys(model.variables);
      expect(new Set(names).size).to.equal(names.length);
      expect(names).to.include.members([
        'embedding/kernel',
        'embedding/pos',
        'block0/mlp/w1',
        'block1/moe/phi',
        'block1/moe/scale',
        'block1/attention/wq',
        'encoder_norm/scale',
        'head/kernel',
      ]);
      model.dispose();
    });

    it('the same seed gives the same weights; another seed different ones', function () {
      const a = new ViT(handConfig('tokens-choice')); // seed 0, the default (tfjs treats a seed of 0 as none: see SeedStream)
      const b = new ViT(handConfig('tokens-choice', { seed: 0 }));
      const c = new ViT(handConfig('tokens-choice', { seed: 1 }));
      for (const [name, v] of Object.entries(a.variables)) {
        expect(Array.from(v.dataSync()), name).to.deep.equal(Array.from(b.variables[name].dataSync()));
      }
      expect(Array.from(a.variables['block0/attention/wq'].dataSync())).not.to.deep.equal(
        Array.from(c.variables['block0/attention/wq'].dataSync()),
      );
      [a, b, c].forEach((m) => m.dispose());
    });

    it("headInit: 'zeros' (default, vmoe) gives logits 0; 'uniform' draws U(±1/√d) and leaves the other weights alone", function () {
      const zeros = new ViT(handConfig('soft'));
      const uniform = new ViT(handConfig('soft', { headInit: 'uniform' }));
      expect(zeros.config.headInit).to.equal('zeros');
      const x = images(2);
      const logits = tf.tidy(() => Array.from(zeros.apply(x).logits.dataSync()));
      expect(logits.every((v) => v === 0)).to.equal(true);
      const limit = 1 / Math.sqrt(8); // handConfig: d = 8
      for (const name of ['head/kernel', 'head/bias']) {
        const w = Array.from(uniform.variables[name].dataSync());
        expect(
          w.every((v) => Math.abs(v) <= limit && v !== 0),
          name,
        ).to.equal(true);
      }
      for (const [name, v] of Object.entries(zeros.variables)) {
        if (!name.startsWith('head/'))
          expect(Array.from(uniform.variables[name].dataSync()), name).to.deep.equal(Array.from(v.dataSync()));
      }
      expect(() => new ViT(handConfig('soft', { headInit: 'normal' as never }))).to.throw(
        /headInit must be one of .*got "normal"/,
      );
      x.dispose();
      [zeros, uniform].forEach((m) => m.dispose());
    });

    it('Tokens Choice adds its auxiliary loss; dense, Soft MoE and Experts Choice have none', function () {
      for (const kind of KINDS) {
        const model = new ViT(handConfig(kind));
        const x = images(2);
        const out = model.apply(x, { training: true, step: 0 });
        const aux = out.auxLoss.dataSync()[0];
        if (kind === 'tokens-choice') expect(aux, kind).to.be.greaterThan(0);
        else expect(aux, kind).to.equal(0);
        tf.dispose([x, out.logits, out.auxLoss, ...Object.values(out.metrics)]);
        model.dispose();
      }
    });

    it('Tokens Choice noise is seeded by the step: same step → same output, evaluation is noiseless', function () {
      const model = new ViT(handConfig('tokens-choice', { moe: { numExperts: 2, noiseStd: 50 } }));
      // Non-zero head so that routing differences reach the logits.
      model.variables['head/kernel'].assign(tf.ones([8, 3]));
      const x = images(2);
      const run = (o: { training?: boolean; step?: number }) =>
        tf.tidy(() => Array.from(model.apply(x, o).logits.dataSync()));
      expect(run({ training: true, step: 5 })).to.deep.equal(run({ training: true, step: 5 }));
      expect(run({})).to.deep.equal(run({ training: false, step: 9 }));
      const differs = [1, 2, 3, 4].some(
        (s) => JSON.stringify(run({ training: true, step: s })) !== JSON.stringify(run({})),
      );
      expect(differs, 'noise with std 50 changes some routing').to.equal(true);
      x.dispose();
      model.dispose();
    });

    it('rejects images of the wrong shape with a clear message', function () {
      const model = new ViT(handConfig('dense'));
      const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
      expect(() => model.apply(x)).to.throw(/images must be \[b, 8, 8, 1\], got \[2, 28, 28, 1\]/);
      x.dispose();
      model.dispose();
    });
  });
});
