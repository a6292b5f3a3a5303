/**
 * The Soft MoE recipe levers (lib/vit/config.ts): scale init, Φ init std, logit noise in training
 * passes (vmoe SoftRouter `noise_std`), learning-rate multipliers of scale and Φ; and the
 * trainer's diagnostics on a probe batch (lib/vit/diagnostics.ts, lib/moe/diagnostics.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { softMoE } from '../../lib/moe/soft-moe.js';
import { Trainer } from '../../lib/train/trainer.js';
import { resolveViTConfig, type ViTConfig } from '../../lib/vit/config.js';
import { softMoEBlockDiagnostics } from '../../lib/vit/diagnostics.js';
import { SoftMoEBlock } from '../../lib/vit/mlp.js';
import { ViT } from '../../lib/vit/vit.js';
import { modelCost } from '../../lib/vit/cost.js';
import { loadDataset } from '../../lib/data/load.js';
import { handConfig } from './helpers.js';

const softLayer = (model: ViT) => (model.blocks[1].mlp as SoftMoEBlock).layer;
const soft = (moe: ViTConfig['moe'] = {}) => handConfig('soft', { moe: { numExperts: 2, slotsPerExpert: 2, ...moe } });

describe('vit: Soft MoE recipe levers and diagnostics', function () {
  it("defaults are vmoe's (scale 1, Φ std 1/√d, no noise, multipliers 1); bad values are rejected by name", function () {
    const moe = resolveViTConfig({ kind: 'soft' }).moe;
    expect(moe).to.include({
      scaleInit: 1,
      phiInitStd: null,
      softNoiseStd: 0,
      scaleLrMultiplier: 1,
      phiLrMultiplier: 1,
    });
    expect(() => resolveViTConfig({ moe: { scaleInit: NaN } })).to.throw(
      /moe\.scaleInit must be a finite number, got NaN/,
    );
    expect(() => resolveViTConfig({ moe: { phiInitStd: 0 } })).to.throw(/moe\.phiInitStd/);
    expect(() => resolveViTConfig({ moe: { softNoiseStd: -1 } })).to.throw(
      /moe\.softNoiseStd must be a finite number ≥ 0, got -1/,
    );
    expect(() => resolveViTConfig({ moe: { scaleLrMultiplier: Infinity } })).to.throw(
      /moe\.scaleLrMultiplier must be a finite number ≥ 0, got Infinity/,
    );
  });

  it('scaleInit sets scale; phiInitStd rescales the same Φ draw; the other weights do not change', function () {
    const base = new ViT(soft());
    const other = new ViT(soft({ scaleInit: 7.5, phiInitStd: 2 / Math.sqrt(8) }));
    expect(softLayer(other).variables.scale.dataSync()[0]).to.equal(7.5);
    const phi0 = softLayer(base).variables.phi.dataSync();
    const phi1 = softLayer(other).variables.phi.dataSync();
    phi0.forEach((v, i) => expect(phi1[i]).to.be.closeTo(2 * v, 1e-6));
    for (const [name, v] of Object.entries(base.variables)) {
      if (/moe\/(phi|scale)$/.test(name)) continue;
      expect(Array.from(other.variables[name].dataSync()), name).to.deep.equal(Array.from(v.dataSync()));
    }
    base.dispose();
    other.dispose();
  });

  it('logit noise: only in training passes, seeded by the update; evaluation equals the noiseless model', function () {
    const images = tf.randomUniform([3, 8, 8, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const plain = new ViT(soft({ scaleInit: 3 }));
    const noisy = new ViT(soft({ scaleInit: 3, softNoiseStd: 1 }));
    const logits = (m: ViT, o: { training?: boolean; step?: number }) => {
      const out = m.apply(images, o);
      const v = Array.from(out.logits.dataSync());
      tf.dispose([out.logits, out.auxLoss]);
      return v;
    };
    // A zero head hides every difference: give both models the same non-zero head.
    for (const m of [plain, noisy])
      m.variables['head/kernel'].assign(tf.tidy(() => tf.randomNormal([8, 3], 0, 1, 'float32', 9)));
    expect(logits(noisy, {})).to.deep.equal(logits(plain, {}));
    expect(logits(noisy, { training: true, step: 3 })).to.deep.equal(logits(noisy, { training: true, step: 3 }));
    expect(logits(noisy, { training: true, step: 3 })).not.to.deep.equal(logits(noisy, { training: true, step: 4 }));
    expect(logits(noisy, { training: true, step: 3 })).not.to.deep.equal(logits(plain, { training: true, step: 3 }));
    const count = tf.memory().numTensors;
    logits(noisy, { training: true, step: 5 });
    expect(tf.memory().numTensors, 'no leak with noise').to.equal(count);
    tf.dispose(images);
    plain.dispose();
    noisy.dispose();
  });

  it('softMoE: noise needs a seed and a valid std', function () {
    const layer = new ViT(soft());
    const p = softLayer(layer).params;
    const x = tf.ones([1, 4, 8]) as tf.Tensor3D;
    expect(() => softMoE(x, p, { noiseStd: 0.5 })).to.throw(/noiseStd > 0 needs an integer noiseSeed, got undefined/);
    expect(() => softMoE(x, p, { noiseStd: -0.5, noiseSeed: 1 })).to.throw(
      /noiseStd must be a finite number ≥ 0, got -0.5/,
    );
    x.dispose();
    layer.dispose();
  });

  it('scaleLrMultiplier reaches the Soft MoE scale only: the first Adam update moves it by ≈ k·lr', async function () {
    const images = tf.randomUniform([4, 8, 8, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 2, 0], 'int32');
    const moved = async (k: number) => {
      const model = new ViT(soft({ scaleLrMultiplier: k, phiLrMultiplier: 0 }));
      model.variables['head/kernel'].assign(tf.tidy(() => tf.randomNormal([8, 3], 0, 1, 'float32', 9)));
      const phi0 = Array.from(softLayer(model).variables.phi.dataSync());
      const trainer = new Trainer(model, {
        steps: 10,
        warmupSteps: 0,
        decay: 'constant',
        learningRate: 1e-3,
        adam: { clipNorm: null },
      });
      await trainer.trainStep(images, labels);
      const delta = Math.abs(softLayer(model).variables.scale.dataSync()[0] - 1);
      const phiSame = Array.from(softLayer(model).variables.phi.dataSync()).every((v, i) => v === phi0[i]);
      trainer.dispose();
      model.dispose();
      return { delta, phiSame };
    };
    // Adam's first update is lr·g/(|g| + ε) ≈ ±lr per entry (bias-corrected moments).
    const one = await moved(1);
    const ten = await moved(10);
    expect(one.delta).to.be.closeTo(1e-3, 1e-5);
    expect(ten.delta).to.be.closeTo(1e-2, 1e-4);
    expect(one.phiSame && ten.phiSame, 'phiLrMultiplier 0 freezes Φ').to.equal(true);
    tf.dispose([images, labels]);
  });

  it('the trainer records the diagnostics of every Soft MoE block before training and at each evaluation, without leaks', async function () {
    this.timeout(60000);
    const train = await loadDataset('tiny-mnist', 'train');
    const model = new ViT({
      dim: 16,
      depth: 2,
      numHeads: 2,
      mlpDim: 32,
      kind: 'soft',
      blocks: ['soft', 'soft'],
      moe: { numExperts: 4, slotsPerExpert: 2 },
    });
    const trainer = new Trainer(model, { steps: 6, batchSize: 16, learningRate: 1e-2, warmupSteps: 1 });
    const probe = tf.tidy(() => tf.randomUniform([5, 28, 28, 1], 0, 1, 'float32', 3)) as tf.Tensor4D;
    const direct = await softMoEBlockDiagnostics(model, probe);
    expect(Object.keys(direct)).to.deep.equal(['block0', 'block1']);
    expect(direct.block1.expertSimilarity?.mean, 'shared start: identical experts').to.be.closeTo(1, 1e-6);
    expect(direct.block1).to.include({ tokens: 49, slots: 8, groups: 5, scale: 1 });
    const count = tf.memory().numTensors;
    await softMoEBlockDiagnostics(model, probe);
    expect(tf.memory().numTensors, 'diagnostics leave no tensor').to.equal(count);
    await trainer.fit(train, { validation: train, evalEvery: 3, evalLimit: 32, probe });
    const steps = trainer.history.diagnostics.map((r) => r.step);
    expect(steps).to.deep.equal([0, 3, 6]);
    expect(trainer.history.diagnostics[0].blocks).to.deep.equal(direct);
    expect(trainer.history.diagnostics[2].blocks.block1.scale).not.to.equal(1);
    trainer.dispose();
    model.dispose();
    probe.dispose();
  });
});

describe('vit: Soft MoE without the §2.3 normalisation', function () {
  it('leaves scale out of the trained and counted variables, and trains', async function () {
    const model = new ViT(soft({ softOptions: { normalize: false } }));
    expect(Object.keys(model.variables).some((n) => /moe\/scale$/.test(n))).to.equal(false);
    expect(Object.keys(model.variables).some((n) => /moe\/phi$/.test(n))).to.equal(true);
    expect(modelCost(model.config).parameters).to.equal(model.parameterCount);
    const trainer = new Trainer(model, { steps: 2, warmupSteps: 0, learningRate: 1e-3 });
    const images = tf.randomUniform([4, 8, 8, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 2, 0], 'int32');
    const r = await trainer.trainStep(images, labels);
    expect(Number.isFinite(r.loss)).to.equal(true);
    trainer.dispose();
    model.dispose();
    tf.dispose([images, labels]);
  });
});
