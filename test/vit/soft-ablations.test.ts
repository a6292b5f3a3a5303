/**
 * The paper's Table 2 ablations reach the Soft MoE blocks of a ViT through `moe.softOptions`
 * (uniform dispatch, uniform combine, identity experts), are counted by modelCost, train, and
 * are selectable from the command line.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { findProjectRoot } from '../../lib/data/paths.js';
import { softMoE } from '../../lib/moe/soft-moe.js';
import { Trainer } from '../../lib/train/trainer.js';
import { resolveViTConfig, type SoftMoEAblation } from '../../lib/vit/config.js';
import { modelCost } from '../../lib/vit/cost.js';
import { SeedStream } from '../../lib/core/random.js';
import { SoftMoEBlock } from '../../lib/vit/mlp.js';
import { ViT } from '../../lib/vit/vit.js';
import { handConfig } from './helpers.js';

// Parameters of handConfig('soft') by hand (see test/vit/vit.test.ts): 1708 in total, of which
// the Soft MoE block's Φ [8, 2, 1] = 16 and scale 1, and its 2 experts × (8·16 + 16 + 16·8 + 8) = 560.
const ABLATIONS: Array<{ name: string; options: SoftMoEAblation; parameters: number }> = [
  { name: 'soft dispatch, uniform combine', options: { combine: 'uniform' }, parameters: 1708 },
  { name: 'uniform dispatch, soft combine', options: { dispatch: 'uniform' }, parameters: 1708 },
  {
    name: 'uniform dispatch and combine (Φ, scale unused)',
    options: { dispatch: 'uniform', combine: 'uniform' },
    parameters: 1708 - 16 - 1,
  },
  { name: 'identity experts (expert weights unused)', options: { experts: 'identity' }, parameters: 1708 - 560 },
];

describe('vit: Soft MoE ablations (paper Table 2) through moe.softOptions', function () {
  it('defaults to the paper Soft MoE and rejects unknown modes by name', function () {
    expect(resolveViTConfig({ kind: 'soft' }).moe.softOptions).to.deep.equal({
      normalize: true,
      dispatch: 'softmax',
      combine: 'softmax',
      experts: 'mlp',
    });
    expect(
      resolveViTConfig({ kind: 'soft', moe: { softOptions: { combine: 'uniform' } } }).moe.softOptions.combine,
    ).to.equal('uniform');
    expect(() => resolveViTConfig({ moe: { softOptions: { dispatch: 'hard' as never } } })).to.throw(
      /moe\.softOptions\.dispatch must be one of "softmax", "uniform", got "hard"/,
    );
    expect(() => resolveViTConfig({ moe: { softOptions: { experts: 'none' as never } } })).to.throw(
      /moe\.softOptions\.experts must be one of "mlp", "identity", got "none"/,
    );
  });

  it('the block forwards the options: uniform dispatch and combine with identity experts give every token the mean token', async function () {
    // With D = 1/m and C = 1/s every slot is the mean token x̄, identity experts keep it, and
    // every output is the mean of s copies of x̄: y_i = x̄ for all i (eqs. 1–3 with constant weights).
    const config = resolveViTConfig(
      handConfig('soft', {
        moe: {
          numExperts: 2,
          slotsPerExpert: 3,
          softOptions: { dispatch: 'uniform', combine: 'uniform', experts: 'identity' },
        },
      }),
    );
    const block = new SoftMoEBlock(config, new SeedStream(5));
    const x = tf.tidy(() => tf.sin(tf.range(0, 2 * 4 * 8, 1).mul(0.71)).reshape([2, 4, 8]) as tf.Tensor3D);
    const before = tf.memory().numTensors;
    const out = block.apply(x);
    const y = (await out.y.array()) as number[][][];
    const xs = (await x.array()) as number[][][];
    out.y.dispose();
    expect(tf.memory().numTensors).to.equal(before);
    for (let g = 0; g < 2; g++) {
      const mean = xs[g][0].map((_, c) => xs[g].reduce((sum, token) => sum + token[c], 0) / 4);
      for (let i = 0; i < 4; i++) for (let c = 0; c < 8; c++) expect(y[g][i][c]).to.be.closeTo(mean[c], 1e-5);
    }
    expect(Object.keys(block.variables)).to.deep.equal([]);
    x.dispose();
    block.dispose();
  });

  it('uniform dispatch alone changes the output exactly as softMoE({dispatch: "uniform"}) does', async function () {
    const config = resolveViTConfig(
      handConfig('soft', { moe: { numExperts: 2, softOptions: { dispatch: 'uniform' } } }),
    );
    const block = new SoftMoEBlock(config, new SeedStream(5));
    const x = tf.tidy(() => tf.cos(tf.range(0, 3 * 4 * 8, 1).mul(0.53)).reshape([3, 4, 8]) as tf.Tensor3D);
    const [got, uniform, soft] = await Promise.all(
      [
        block.apply(x).y,
        softMoE(x, block.layer.params, { dispatch: 'uniform' }).y,
        softMoE(x, block.layer.params).y,
      ].map(async (t) => {
        const a = Array.from(await t.data());
        t.dispose();
        return a;
      }),
    );
    expect(got).to.deep.equal(uniform);
    expect(Math.max(...got.map((v, i) => Math.abs(v - soft[i])))).to.be.greaterThan(1e-4);
    x.dispose();
    block.dispose();
  });

  for (const { name, options, parameters } of ABLATIONS) {
    it(`${name}: counted by hand and by modelCost, and an Adam step trains it without leaking`, async function () {
      const model = new ViT(handConfig('soft', { moe: { numExperts: 2, softOptions: options } }));
      expect(model.parameterCount).to.equal(parameters);
      expect(modelCost(model.config).parameters).to.equal(parameters);
      const trainer = new Trainer(model, { steps: 3, batchSize: 4, seed: 1 });
      const images = tf.tidy(() => tf.sin(tf.range(0, 4 * 64, 1).mul(0.37)).reshape([4, 8, 8, 1]) as tf.Tensor4D);
      const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
      await trainer.trainStep(images, labels); // warm-up (Adam creates its moments)
      const count = tf.memory().numTensors;
      const r = await trainer.trainStep(images, labels);
      expect(Number.isFinite(r.loss)).to.equal(true);
      expect(tf.memory().numTensors).to.equal(count);
      tf.dispose([images, labels]);
      trainer.dispose();
      model.dispose();
    });
  }

  it('modelCost drops the router FLOPs of uniform-uniform and the expert FLOPs of identity experts', function () {
    const full = modelCost(handConfig('soft')).flopsPerImage;
    const uniform = modelCost(
      handConfig('soft', { moe: { numExperts: 2, softOptions: { dispatch: 'uniform', combine: 'uniform' } } }),
    ).flopsPerImage;
    const identity = modelCost(
      handConfig('soft', { moe: { numExperts: 2, softOptions: { experts: 'identity' } } }),
    ).flopsPerImage;
    // Soft block, m 4, d 8, s 2 slots, h 16: router 2·4·8·2 = 128; experts 2 slots · 2·(2·8·16) = 1024.
    expect(full.router - uniform.router).to.equal(128);
    expect(full.mlp - identity.mlp).to.equal(1024);
    expect(uniform.dispatchCombine).to.equal(full.dispatchCombine);
  });

  it('npm run train names the ablation in the results file (--dispatch, --combine, --experts-fn)', function () {
    const root = findProjectRoot();
    const log = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'lib', 'cli', 'train.ts'),
        '--dataset',
        'tiny-mnist',
        '--size',
        'tiny',
        '--experts',
        '4',
        '--steps',
        '6',
        '--results-dir',
        join(root, 'build', 'no-such-results'),
        '--dry-run',
        '--sweep',
        'model=soft,soft+dispatch=uniform+combine=uniform,soft+experts-fn=identity',
      ],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const names = log
      .trim()
      .split('\n')
      .map((l) => l.split('/').pop());
    expect(names).to.deep.equal([
      'tiny-mnist_soft-e4-p1_tiny_6steps_seed0.json',
      'tiny-mnist_soft-e4-p1-dispatch-uniform-combine-uniform_tiny_6steps_seed0.json',
      'tiny-mnist_soft-e4-p1-identity-experts_tiny_6steps_seed0.json',
    ]);
  });
});
