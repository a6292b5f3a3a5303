/**
 * The tf.layers MoE layers the way a TensorFlow.js user uses them: inside tf.sequential and
 * tf.model, trained with model.fit, saved with model.save (the Node file handler) and loaded
 * with tf.loadLayersModel, with the same outputs after loading. The task is real data: the tiny
 * MNIST slice (512 training images), cut into 4×4 patches (49 tokens of 16 values).
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDataset } from '../../lib/data/load.js';
import { ExpertsChoiceMoE, SoftMoE, TokensChoiceMoE } from '../../lib/layers/index.js';
import { fileIO, registerFileScheme } from '../../lib/layers/file-io.js';
import { patchify } from '../../lib/vit/patch-embed.js';

/** Tiny MNIST training images as patch tokens [512, 49, 16] and labels [512] (float32 class ids). */
async function tinyMnistPatches(): Promise<{ x: tf.Tensor3D; y: tf.Tensor1D }> {
  const ds = await loadDataset('tiny-mnist', 'train');
  return tf.tidy(() => ({
    x: patchify(tf.tensor4d(ds.images, [ds.count, 28, 28, 1]), 4),
    y: tf.tensor1d(Array.from(ds.labels), 'float32'),
  }));
}

/**
 * dense → SoftMoE → flatten → dense softmax: the model of notebook 11. Flatten, not global
 * average pooling: without position embeddings an average sees a bag of patches (measured here:
 * 6 epochs brought the average-pooled model only from 2.13 to 1.78 cross-entropy). 14 epochs: the
 * loss stays near 1.7–1.9 for the first ~7 while the near-uniform initial routing sharpens, then
 * falls (loss last/first measured for this model with seeds 7–10 after 8 epochs: 0.24–0.71; for
 * notebook 11's model with 4 seeds after 14 epochs: 0.10–0.16).
 */
function softMoEClassifier(seed: number): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [49, 16], units: 32, kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      new SoftMoE({ numExperts: 4, slotsPerExpert: 2, seed }),
      tf.layers.flatten(),
      tf.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'softmoe-layers-'));
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const v = (await d.data())[0]!;
  d.dispose();
  return v;
}

describe('tf.layers MoE layers in models', function () {
  this.timeout(240000);
  let data: { x: tf.Tensor3D; y: tf.Tensor1D };
  before(async function () {
    data = await tinyMnistPatches();
  });
  after(function () {
    tf.dispose([data.x, data.y]);
  });

  it('a tf.sequential model with SoftMoE learns tiny MNIST with model.fit, saves, loads and predicts the same', async function () {
    const start = tf.memory().numTensors;
    const model = softMoEClassifier(7);
    const optimizer = tf.train.adam(3e-3);
    model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const history = await model.fit(data.x, data.y, { epochs: 14, batchSize: 64, shuffle: false, verbose: 0 });
    const loss = history.history.loss as number[];
    const acc = history.history.acc as number[];
    // Chance is ln 10 ≈ 2.30 cross-entropy and 10% accuracy.
    expect(loss[0]).to.be.greaterThan(1.5);
    expect(loss[loss.length - 1], `losses ${loss.map((v) => v.toFixed(3)).join(' ')}`).to.be.lessThan(0.6 * loss[0]!);
    expect(acc[acc.length - 1], `accuracies ${acc.map((v) => v.toFixed(3)).join(' ')}`).to.be.greaterThan(0.6);

    const dir = await tempDir();
    try {
      const saved = await model.save(fileIO(dir));
      expect(saved.modelArtifactsInfo.weightDataBytes).to.be.greaterThan(0);
      expect((await fs.readdir(dir)).sort()).to.deep.equal(['model.json', 'weights.bin']);
      const loaded = await tf.loadLayersModel(fileIO(dir));
      const layer = loaded.layers[1]!;
      expect(layer).to.be.instanceOf(SoftMoE);
      expect(layer.getConfig()).to.deep.equal(model.layers[1]!.getConfig());
      expect(loaded.layers[1]!.getWeights().map((w) => w.shape)).to.deep.equal(
        model.layers[1]!.getWeights().map((w) => w.shape),
      );
      const before = model.predict(data.x) as tf.Tensor;
      const after = loaded.predict(data.x) as tf.Tensor;
      // Same weights bit for bit, same ops, same backend: equal to float32 round-off (in fact 0).
      expect(await maxAbsDiff(before, after)).to.be.at.most(1e-6);
      tf.dispose([before, after]);
      loaded.dispose();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    model.dispose();
    optimizer.dispose();
    expect(tf.memory().numTensors, 'every tensor of the model, its optimizer and the fit freed').to.equal(start);
  });

  it('a functional tf.model with all three MoE layers (residual branches) fits, saves and loads', async function () {
    const input = tf.input({ shape: [49, 16] });
    const tokens = tf.layers.dense({ units: 24 }).apply(input) as tf.SymbolicTensor;
    const residual = (x: tf.SymbolicTensor, layer: tf.layers.Layer) =>
      tf.layers.add().apply([x, layer.apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor;
    let h = residual(tokens, new SoftMoE({ numExperts: 4, capacityFactor: 0.5, seed: 1 }));
    h = residual(
      h,
      new TokensChoiceMoE({
        numExperts: 4,
        k: 2,
        capacityFactor: 1.25,
        noiseStd: 1,
        auxLoss: 'importance+load',
        seed: 2,
      }),
    );
    h = residual(
      h,
      new ExpertsChoiceMoE({ numExperts: 4, capacityFactor: 1, hidden: 32, expertInit: 'independent', seed: 3 }),
    );
    const pooled = tf.layers.globalAveragePooling1d().apply(h) as tf.SymbolicTensor;
    const output = tf.layers.dense({ units: 10, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    expect(output.shape).to.deep.equal([null, 10]);
    // capacityFactor 0.5 with 49 tokens and 4 experts: p = round(49·0.5/4) = round(6.125) = 6.
    expect((model.layers[2] as SoftMoE).slotsPerExpert).to.equal(6);

    const moeLayers = model.layers.filter((l) =>
      ['SoftMoE', 'TokensChoiceMoE', 'ExpertsChoiceMoE'].includes(l.getClassName()),
    );
    const initial = moeLayers.flatMap((l) => l.getWeights().map((w) => w.dataSync().slice()));
    model.compile({ optimizer: tf.train.adam(3e-3), loss: 'sparseCategoricalCrossentropy' });
    const x = data.x.slice([0, 0, 0], [128, 49, 16]);
    const y = data.y.slice([0], [128]);
    const history = await model.fit(x, y, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0 });
    const loss = history.history.loss as number[];
    expect(loss[2]).to.be.lessThan(loss[0]!);
    // model.fit's gradients (tf.variableGrads over the layers' weights) reached every MoE weight.
    const names = moeLayers.flatMap((l) => l.weights.map((w) => w.originalName));
    expect(names).to.have.length(6 + 5 + 5);
    const trained = moeLayers.flatMap((l) => l.getWeights().map((w) => w.dataSync()));
    trained.forEach((w, i) =>
      expect(
        w.some((v, j) => v !== initial[i]![j]),
        `${names[i]} changed by fit`,
      ).to.equal(true),
    );

    const dir = await tempDir();
    try {
      await model.save(fileIO(dir));
      const loaded = await tf.loadLayersModel(fileIO(path.join(dir, 'model.json')));
      const classes = loaded.layers.map((l) => l.getClassName());
      expect(classes).to.include.members(['SoftMoE', 'TokensChoiceMoE', 'ExpertsChoiceMoE']);
      for (const name of ['SoftMoE', 'TokensChoiceMoE', 'ExpertsChoiceMoE']) {
        const a = model.layers.find((l) => l.getClassName() === name)!;
        const b = loaded.layers.find((l) => l.getClassName() === name)!;
        expect(b.getConfig(), name).to.deep.equal(a.getConfig());
      }
      // predict runs without training, so the Tokens Choice router adds no noise: deterministic.
      const before = model.predict(x) as tf.Tensor;
      const after = loaded.predict(x) as tf.Tensor;
      expect(await maxAbsDiff(before, after)).to.be.at.most(1e-6);
      tf.dispose([before, after]);
      loaded.dispose();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    tf.dispose([x, y]);
    model.dispose();
  });

  it('model.save("file://…") and tf.loadLayersModel("file://…") route to the file handler', async function () {
    expect(typeof registerFileScheme()).to.equal('boolean');
    expect(registerFileScheme(), 'a second registration does nothing').to.equal(false);
    expect(tf.io.getSaveHandlers('file:///tmp/x')).to.have.length(1);
    const model = softMoEClassifier(3);
    const dir = await tempDir();
    try {
      await model.save(`file://${dir}`);
      const loaded = await tf.loadLayersModel(`file://${dir}`);
      const x = data.x.slice([0, 0, 0], [8, 49, 16]);
      const a = model.predict(x) as tf.Tensor;
      const b = loaded.predict(x) as tf.Tensor;
      expect(await maxAbsDiff(a, b)).to.be.at.most(1e-6);
      tf.dispose([x, a, b]);
      loaded.dispose();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    model.dispose();
  });

  it('Forward and training: no memory leak (predict, fit steps, dispose)', async function () {
    const start = tf.memory().numTensors;
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [49, 16], units: 16 }),
        new SoftMoE({ numExperts: 2, slotsPerExpert: 2, seed: 1 }),
        new TokensChoiceMoE({ numExperts: 4, k: 1, capacityFactor: 1, noiseStd: 1, seed: 2 }),
        new ExpertsChoiceMoE({ numExperts: 4, capacityFactor: 1, seed: 3 }),
        tf.layers.globalAveragePooling1d(),
        tf.layers.dense({ units: 10, activation: 'softmax' }),
      ],
    });
    const optimizer = tf.train.adam(1e-3);
    model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy' });
    const x = data.x.slice([0, 0, 0], [64, 49, 16]);
    const y = data.y.slice([0], [64]);
    const afterData = tf.memory().numTensors;
    // Warm-up: the first step creates Adam's moment variables.
    await model.fit(x, y, { epochs: 1, batchSize: 32, verbose: 0 });
    (model.predict(x) as tf.Tensor).dispose();
    const warm = tf.memory().numTensors;
    (model.predict(x) as tf.Tensor).dispose();
    expect(tf.memory().numTensors, 'after predict').to.equal(warm);
    await model.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0 });
    expect(tf.memory().numTensors, 'after fit steps').to.equal(warm);
    expect(warm).to.be.greaterThan(afterData);
    model.dispose();
    optimizer.dispose();
    tf.dispose([x, y]);
    expect(tf.memory().numTensors, 'after dispose').to.equal(start);
  });
});
