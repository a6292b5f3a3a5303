/**
 * The Node file handler (lib/layers/file-io.ts): the files it writes (tfjs' layers-model format:
 * model.json with a weights manifest, weights.bin with the bytes), a bit-exact round trip of the
 * weights, and clear errors for missing, corrupt or inconsistent files.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileIO, MODEL_JSON, WEIGHTS_BIN } from '../../lib/layers/file-io.js';
import { SoftMoE } from '../../lib/layers/soft-moe.js';

function smallModel(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [5, 4], units: 6 }),
      new SoftMoE({ numExperts: 2, slotsPerExpert: 1, hidden: 3, seed: 1 }),
    ],
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('layers/file-io: fileIO(path) for model.save and tf.loadLayersModel', function () {
  let dir: string;
  beforeEach(async function () {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'softmoe-fileio-'));
  });
  afterEach(async function () {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes model.json (topology, manifest naming weights.bin) and weights.bin (every weight, float32), creating the folder', async function () {
    const model = smallModel();
    const target = path.join(dir, 'nested', 'model');
    await model.save(fileIO(target));
    const json = JSON.parse(await fs.readFile(path.join(target, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
    expect(json.format).to.equal('layers-model');
    expect(json.weightsManifest).to.have.length(1);
    expect(json.weightsManifest[0]!.paths).to.deep.equal([WEIGHTS_BIN]);
    const names = json.weightsManifest[0]!.weights.map((w) => w.name);
    expect(names.filter((n) => n.includes('soft_moe'))).to.have.length(6);
    // dense kernel 4·6 + bias 6; phi 6·2·1, scale 1, w1 2·6·3, b1 2·3, w2 2·3·6, b2 2·6: 30 + 115 values.
    const bytes = (await fs.stat(path.join(target, WEIGHTS_BIN))).size;
    expect(bytes).to.equal((30 + 12 + 1 + 36 + 6 + 36 + 12) * 4);
    expect((await fs.readdir(target)).sort(), 'no temporary files left').to.deep.equal([MODEL_JSON, WEIGHTS_BIN]);
    model.dispose();
  });

  it('round-trips every weight bit for bit (folder, model.json path and file:// forms)', async function () {
    const model = smallModel();
    await model.save(fileIO(`file://${dir}`));
    for (const location of [dir, path.join(dir, MODEL_JSON), `file://${dir}`]) {
      const loaded = await tf.loadLayersModel(fileIO(location));
      const a = model.getWeights();
      const b = loaded.getWeights();
      expect(b.length).to.equal(a.length);
      for (let i = 0; i < a.length; i++)
        expect(Array.from(b[i]!.dataSync()), `${location}: weight ${i}`).to.deep.equal(Array.from(a[i]!.dataSync()));
      loaded.dispose();
    }
    model.dispose();
  });

  it('fails clearly on a missing model, corrupt JSON, a weights file outside the folder, and truncated weights', async function () {
    expect((await rejection(tf.loadLayersModel(fileIO(path.join(dir, 'none'))))).message).to.match(
      /cannot read the model file .*none\/model\.json/,
    );

    await fs.writeFile(path.join(dir, MODEL_JSON), '{"modelTopology": ');
    expect((await rejection(tf.loadLayersModel(fileIO(dir)))).message).to.match(/model\.json is not valid JSON/);

    await fs.writeFile(path.join(dir, MODEL_JSON), '{"weightsManifest": []}');
    expect((await rejection(tf.loadLayersModel(fileIO(dir)))).message).to.match(
      /has no modelTopology: it is not a tfjs model\.json/,
    );

    const model = smallModel();
    await model.save(fileIO(dir));
    const json = JSON.parse(await fs.readFile(path.join(dir, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
    json.weightsManifest[0]!.paths = ['../elsewhere.bin'];
    await fs.writeFile(path.join(dir, MODEL_JSON), JSON.stringify(json));
    expect((await rejection(tf.loadLayersModel(fileIO(dir)))).message).to.match(
      /weights file "\.\.\/elsewhere\.bin" lies outside the model folder/,
    );

    await model.save(fileIO(dir));
    const bin = await fs.readFile(path.join(dir, WEIGHTS_BIN));
    await fs.writeFile(path.join(dir, WEIGHTS_BIN), bin.subarray(0, bin.length - 4));
    expect((await rejection(tf.loadLayersModel(fileIO(dir)))).message).to.match(
      new RegExp(`the weights files hold ${bin.length - 4} bytes, the manifest describes ${bin.length}`),
    );

    await fs.rm(path.join(dir, WEIGHTS_BIN));
    expect((await rejection(tf.loadLayersModel(fileIO(dir)))).message).to.match(
      /cannot read the weights file .*weights\.bin named in/,
    );
    model.dispose();

    expect(() => fileIO('')).to.throw(/fileIO needs a folder or a \.json path, got ""/);
    expect(() => fileIO('file://')).to.throw(/fileIO needs a folder or a \.json path after file:\/\/, got "file:\/\/"/);
  });
});
