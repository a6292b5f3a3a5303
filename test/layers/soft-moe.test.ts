/**
 * The SoftMoE tf.layers layer: the same initial weights as the library's SoftMoELayer with the
 * same seed, the same outputs and gradients as the functional softMoE with the same weights,
 * shapes, config round trip, errors that name the bad value, and no leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { SoftMoE } from '../../lib/layers/soft-moe.js';
import { SoftMoELayer } from '../../lib/moe/layers.js';
import { softMoE, type SoftMoEParams } from '../../lib/moe/soft-moe.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';

const [B, M, D, N, P, H] = [3, 10, 8, 4, 2, 12];
const WEIGHT_NAMES = ['phi', 'scale', 'w1', 'b1', 'w2', 'b2'];

/** A built layer (through apply on a symbolic input of shape [null, M, D]). */
function builtLayer(args: Partial<ConstructorParameters<typeof SoftMoE>[0]> = {}): SoftMoE {
  const layer = new SoftMoE({ numExperts: N, slotsPerExpert: P, hidden: H, seed: 5, ...args });
  layer.apply(tf.input({ shape: [M, D] }));
  return layer;
}

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** The layer's weights as softMoE params (the variables' tensors, by name). */
function paramsOf(layer: tf.layers.Layer): SoftMoEParams {
  const byName = Object.fromEntries(layer.weights.map((w) => [w.originalName.split('/').pop()!, w.read()]));
  return byName as unknown as SoftMoEParams;
}

describe('layers/SoftMoE (tf.layers)', function () {
  it('creates phi [d, n, p], scale [], w1 [n, d, h], b1 [n, h], w2 [n, h, d], b2 [n, d], named and trainable', function () {
    const layer = builtLayer();
    expect(layer.weights.map((w) => w.originalName)).to.deep.equal(WEIGHT_NAMES.map((n) => `${layer.name}/${n}`));
    expect(layer.weights.map((w) => w.shape)).to.deep.equal([[D, N, P], [], [N, D, H], [N, H], [N, H, D], [N, D]]);
    expect(layer.trainableWeights).to.have.length(6);
    expect(layer.name).to.match(/^soft_moe_\d+$/);
    layer.dispose();
  });

  it('starts from exactly the weights of the library SoftMoELayer with the same seed (shared and independent experts)', async function () {
    for (const expertInit of ['shared', 'independent'] as const) {
      const layer = builtLayer({ expertInit, seed: 11 });
      const reference = new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: P, hidden: H, expertInit, seed: 11 });
      const refVars = Object.entries(reference.variables);
      expect(refVars.map(([k]) => k)).to.deep.equal(WEIGHT_NAMES);
      for (const [i, [name, v]] of refVars.entries()) {
        expect(Array.from(await layer.weights[i]!.read().data()), `${expertInit} ${name}`).to.deep.equal(
          Array.from(await v.data()),
        );
      }
      // scale starts at 1 (vmoe scale_init = ones); shared experts are one draw tiled n times.
      expect(Array.from(await layer.weights[1]!.read().data())).to.deep.equal([1]);
      const w1 = (await layer.weights[2]!.read().array()) as number[][][];
      expect(w1[0]![0]![0] === w1[N - 1]![0]![0], `${expertInit}: first and last expert equal?`).to.equal(
        expertInit === 'shared',
      );
      layer.dispose();
      reference.dispose();
    }
  });

  it('seed 0 is a seed: two layers (and two SoftMoELayers) with seed 0 start from the same Φ', async function () {
    // tfjs' randomNormal treats a numeric seed 0 as none; initSeed(seed, key) is never 0.
    const [a, b] = [builtLayer({ seed: 0 }), builtLayer({ seed: 0 })];
    const [c, d] = [0, 0].map(
      (seed) => new SoftMoELayer({ dim: D, numExperts: N, slotsPerExpert: P, hidden: H, seed }),
    );
    expect(await values(a.weights[0]!.read())).to.deep.equal(await values(b.weights[0]!.read()));
    expect(await values(c!.variables.phi!)).to.deep.equal(await values(d!.variables.phi!));
    expect(await values(a.weights[0]!.read())).to.deep.equal(await values(c!.variables.phi!));
    for (const l of [a, b]) l.dispose();
    for (const l of [c!, d!]) l.dispose();
  });

  it('without a seed, two layers start from different weights', async function () {
    const a = builtLayer({ seed: null });
    const b = builtLayer({ seed: null });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a.weights[0]!.read(), b.weights[0]!.read()))));
    expect((await diff.data())[0]).to.be.greaterThan(0);
    tf.dispose([diff]);
    a.dispose();
    b.dispose();
  });

  it('capacityFactor sets p = round(m·cf/n) from the input shape: m = 10, n = 4, cf = 1 → round(2.5) = 2 (half to even)', function () {
    const layer = new SoftMoE({ numExperts: N, capacityFactor: 1, seed: 0 });
    expect(layer.slotsPerExpert).to.equal(null);
    layer.apply(tf.input({ shape: [M, D] }));
    expect(layer.slotsPerExpert).to.equal(2);
    expect(layer.weights[0]!.shape).to.deep.equal([D, N, 2]);
    expect(layer.weights[2]!.shape, 'hidden defaults to 4·d').to.deep.equal([N, D, 4 * D]);
    layer.dispose();
  });

  it('computeOutputShape: [batch, m, d] → the same; a symbolic apply gives [null, m, d]', function () {
    const layer = builtLayer();
    expect(layer.computeOutputShape([null, M, D])).to.deep.equal([null, M, D]);
    expect(layer.computeOutputShape([[7, M, D]])).to.deep.equal([7, M, D]);
    const out = layer.apply(tf.input({ shape: [M, D] })) as tf.SymbolicTensor;
    expect(out.shape).to.deep.equal([null, M, D]);
    expect(() => layer.computeOutputShape([null, D])).to.throw(
      /input must be \[batch, tokens, d\] \(rank 3\), got shape \[null,8\]/,
    );
    expect(() => layer.computeOutputShape([null, M, D + 1])).to.throw(
      /input width d must be 8 .* got shape \[null,10,9\]/,
    );
    layer.dispose();
  });

  it('getConfig holds every constructor option and round-trips through fromConfig and JSON', function () {
    const args = {
      numExperts: 3,
      capacityFactor: 1.5,
      hidden: 20,
      expertInit: 'independent' as const,
      seed: 4,
      normalize: false,
      dispatch: 'uniform' as const,
      combine: 'softmax' as const,
      experts: 'identity' as const,
      name: 'my_soft_moe',
    };
    const layer = new SoftMoE(args);
    const config = layer.getConfig();
    expect(config).to.include({
      numExperts: 3,
      capacityFactor: 1.5,
      slotsPerExpert: null,
      hidden: 20,
      expertInit: 'independent',
      seed: 4,
      normalize: false,
      dispatch: 'uniform',
      combine: 'softmax',
      experts: 'identity',
      name: 'my_soft_moe',
    });
    const copy = tf.serialization.SerializationMap.getMap().classNameMap['SoftMoE']![1](
      SoftMoE,
      JSON.parse(JSON.stringify(config)),
    );
    expect(copy).to.be.instanceOf(SoftMoE);
    expect(copy.getConfig()).to.deep.equal(config);
    // Defaults are stored as null (the function's own defaults then apply), and come back as null.
    const plain = new SoftMoE({ numExperts: 2, slotsPerExpert: 1 });
    expect(plain.getConfig()).to.include({
      slotsPerExpert: 1,
      capacityFactor: null,
      hidden: null,
      expertInit: null,
      seed: null,
      normalize: null,
      dispatch: null,
      combine: null,
      experts: null,
    });
  });

  it('is registered for serialization as "SoftMoE"', function () {
    expect(tf.serialization.SerializationMap.getMap().classNameMap['SoftMoE']![0]).to.equal(SoftMoE);
    expect(new SoftMoE({ numExperts: 2, slotsPerExpert: 1 }).getClassName()).to.equal('SoftMoE');
  });

  forEachBackend(() => {
    it('outputs equal the functional softMoE with the same weights (default and ablation options)', async function () {
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 1) as tf.Tensor3D;
      for (const options of [
        {},
        { normalize: false },
        { dispatch: 'uniform' as const },
        { combine: 'uniform' as const },
      ]) {
        const layer = builtLayer({ ...options, expertInit: 'independent' });
        const got = layer.apply(x) as tf.Tensor;
        const want = softMoE(x, paramsOf(layer), options).y;
        expect(got.shape).to.deep.equal([B, M, D]);
        // The same function on the same tensors: equal to the last bit.
        expect(Array.from(await got.data()), JSON.stringify(options)).to.deep.equal(Array.from(await want.data()));
        tf.dispose([got, want]);
        layer.dispose();
      }
      x.dispose();
    });

    it('gradients reach every weight and equal the functional softMoE gradients', async function () {
      const layer = builtLayer({ expertInit: 'independent' });
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 2) as tf.Tensor3D;
      const r = tf.randomNormal([B, M, D], 0, 1, 'float32', 3);
      const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads, value } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r)), variables);
      const params = paramsOf(layer);
      const names = Object.keys(params) as (keyof SoftMoEParams)[];
      const reference = tf.grads((...ts: tf.Tensor[]) => {
        const p = Object.fromEntries(names.map((n, i) => [n, ts[i]!])) as unknown as SoftMoEParams;
        return tf.sum(tf.mul(softMoE(x, p).y, r));
      })(names.map((n) => params[n]));
      for (const [i, v] of variables.entries()) {
        const g = grads[v.name]!;
        expect(g, `gradient of ${WEIGHT_NAMES[i]}`).to.not.equal(undefined);
        const norm = tf.tidy(() => tf.sum(tf.abs(g)));
        expect((await norm.data())[0], `|gradient of ${WEIGHT_NAMES[i]}|`).to.be.greaterThan(0);
        norm.dispose();
        expectClose(g, await reference[i]!.data(), `gradient of ${WEIGHT_NAMES[i]}`, 1e-5, 1e-4);
      }
      tf.dispose([x, r, value, ...Object.values(grads), ...reference]);
      layer.dispose();
    });

    it('Forward: no memory leak; dispose() frees every weight', function () {
      const start = tf.memory().numTensors;
      const layer = builtLayer();
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 1);
      tf.tidy(() => {
        layer.apply(x);
      });
      const warm = tf.memory().numTensors;
      (layer.apply(x) as tf.Tensor).dispose();
      expect(tf.memory().numTensors).to.equal(warm);
      layer.dispose();
      x.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    });
  });

  it('rejects a bad configuration with a message naming the value', function () {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ numExperts: 0, slotsPerExpert: 1 }, /SoftMoE soft_moe_\d+: numExperts must be an integer ≥ 1, got 0/],
      [{ numExperts: 2.5, slotsPerExpert: 1 }, /numExperts must be an integer ≥ 1, got 2.5/],
      [
        { numExperts: 2 },
        /give exactly one of slotsPerExpert and capacityFactor, got slotsPerExpert = undefined, capacityFactor = undefined/,
      ],
      [
        { numExperts: 2, slotsPerExpert: 1, capacityFactor: 1 },
        /give exactly one of slotsPerExpert and capacityFactor, got slotsPerExpert = 1, capacityFactor = 1/,
      ],
      [{ numExperts: 2, slotsPerExpert: 0 }, /slotsPerExpert must be an integer ≥ 1, got 0/],
      [{ numExperts: 2, capacityFactor: -1 }, /capacityFactor must be a finite number > 0, got -1/],
      [{ numExperts: 2, slotsPerExpert: 1, hidden: 0 }, /hidden must be an integer ≥ 1, got 0/],
      [
        { numExperts: 2, slotsPerExpert: 1, expertInit: 'random' },
        /expertInit must be one of "shared", "independent", got "random"/,
      ],
      [{ numExperts: 2, slotsPerExpert: 1, seed: -1 }, /seed must be an integer ≥ 0, got -1/],
      [{ numExperts: 2, slotsPerExpert: 1, normalize: 'yes' }, /normalize must be true or false, got "yes"/],
      [
        { numExperts: 2, slotsPerExpert: 1, dispatch: 'hard' },
        /dispatch must be one of "softmax", "uniform", got "hard"/,
      ],
      [{ numExperts: 2, slotsPerExpert: 1, combine: 'max' }, /combine must be one of "softmax", "uniform", got "max"/],
      [
        { numExperts: 2, slotsPerExpert: 1, experts: 'linear' },
        /experts must be one of "mlp", "identity", got "linear"/,
      ],
    ];
    for (const [args, message] of bad) {
      expect(
        () => new SoftMoE(args as unknown as ConstructorParameters<typeof SoftMoE>[0]),
        JSON.stringify(args),
      ).to.throw(message);
    }
    expect(() => new SoftMoE(undefined as unknown as ConstructorParameters<typeof SoftMoE>[0])).to.throw(
      /arguments must be an object \{numExperts, …\}, got undefined/,
    );
  });

  it('rejects bad inputs with a message naming the layer and the shape', function () {
    // capacityFactor needs the token count when the layer is built.
    expect(() =>
      new SoftMoE({ numExperts: 2, capacityFactor: 1, name: 'cf' }).apply(tf.input({ shape: [null, D] })),
    ).to.throw(/SoftMoE cf: capacityFactor 1 needs the number of tokens in the input shape, got \[batch, null, 8\]/);
    // A capacity factor so small that no slot is left (vmoe raises too).
    expect(() =>
      new SoftMoE({ numExperts: 8, capacityFactor: 0.1, name: 'few' }).apply(tf.input({ shape: [M, D] })),
    ).to.throw(/SoftMoE few: slots per expert = round\(10 tokens × capacity factor 0.1 \/ 8 experts\) = 0/);
    expect(() =>
      new SoftMoE({ numExperts: 2, slotsPerExpert: 1, name: 'r2' }).apply(tf.input({ shape: [D] })),
    ).to.throw(/ndim=3, found ndim=2/);
    const layer = builtLayer({ name: 'built' });
    tf.tidy(() => {
      expect(() => layer.apply(tf.zeros([B, M]))).to.throw(/expected ndim=3, found ndim=2/);
      expect(() => layer.apply(tf.zeros([B, M, D + 1]))).to.throw(
        /incompatible with layer built: expected axis -1 of input shape to have value 8 but got shape 3,10,9/,
      );
      expect(() => layer.call(tf.zeros([B, M, D + 1]))).to.throw(
        /SoftMoE built: input width d must be 8 \(the width it was built for\), got shape \[3,10,9\]/,
      );
      expect(() => layer.call(tf.zeros([B, M, D], 'int32'))).to.throw(
        /SoftMoE built: input must have dtype float32, got int32/,
      );
      expect(() => layer.call([tf.zeros([B, M, D]), tf.zeros([B, M, D])])).to.throw(
        /SoftMoE built: expects one input tensor \[batch, tokens, d\], got a list of 2/,
      );
    });
    layer.dispose();
  });
});
