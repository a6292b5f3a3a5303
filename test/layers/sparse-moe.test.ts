/**
 * The sparse tf.layers layers (TokensChoiceMoE, ExpertsChoiceMoE): initial weights equal to the
 * library's layer objects with the same seed, outputs and gradients equal to the functions with
 * the same weights, router noise only in training, the auxiliary loss through addLoss (and into
 * model.fit's loss), config round trips, bad configurations, no leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { ExpertsChoiceMoE, TokensChoiceMoE } from '../../lib/layers/sparse-moe.js';
import type { RouterParams } from '../../lib/moe/gating.js';
import { ExpertsChoiceLayer, TokensChoiceLayer } from '../../lib/moe/layers.js';
import { importanceLoss, VMOE_AUX_LOSS_WEIGHT } from '../../lib/moe/losses.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';

const [B, M, D, N, H] = [3, 10, 8, 4, 12];
const WEIGHT_NAMES = ['wg', 'w1', 'b1', 'w2', 'b2'];

function build<T extends tf.layers.Layer>(layer: T): T {
  layer.apply(tf.input({ shape: [M, D] }));
  return layer;
}

function paramsOf(layer: tf.layers.Layer): RouterParams {
  return Object.fromEntries(
    layer.weights.map((w) => [w.originalName.split('/').pop()!, w.read()]),
  ) as unknown as RouterParams;
}

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

describe('layers/TokensChoiceMoE and ExpertsChoiceMoE (tf.layers)', function () {
  it('create wg [d, n] and the experts, and start from the weights of the library layer objects with the same seed', async function () {
    const tc = build(
      new TokensChoiceMoE({ numExperts: N, k: 2, capacityFactor: 1, hidden: H, expertInit: 'independent', seed: 9 }),
    );
    const ec = build(new ExpertsChoiceMoE({ numExperts: N, capacityFactor: 1, hidden: H, seed: 9 }));
    const tcRef = new TokensChoiceLayer({
      dim: D,
      numExperts: N,
      hidden: H,
      expertInit: 'independent',
      seed: 9,
      options: { k: 2, capacityFactor: 1 },
    });
    const ecRef = new ExpertsChoiceLayer({ dim: D, numExperts: N, hidden: H, seed: 9, options: { capacityFactor: 1 } });
    for (const [layer, ref] of [
      [tc, tcRef],
      [ec, ecRef],
    ] as const) {
      expect(layer.weights.map((w) => w.originalName)).to.deep.equal(WEIGHT_NAMES.map((n) => `${layer.name}/${n}`));
      expect(layer.weights.map((w) => w.shape)).to.deep.equal([
        [D, N],
        [N, D, H],
        [N, H],
        [N, H, D],
        [N, D],
      ]);
      expect(Object.keys(ref.variables)).to.deep.equal(WEIGHT_NAMES);
      for (const [i, v] of Object.values(ref.variables).entries()) {
        expect(await values(layer.weights[i]!.read()), `${layer.name} ${WEIGHT_NAMES[i]}`).to.deep.equal(
          await values(v),
        );
      }
      layer.dispose();
      ref.dispose();
    }
    expect(tc.name).to.match(/^tokens_choice_moe_\d+$/);
    expect(ec.name).to.match(/^experts_choice_moe_\d+$/);
  });

  it('seed 0 is a seed: two layers with seed 0 start from the same router weights', async function () {
    const [a, b] = [0, 0].map(() => build(new ExpertsChoiceMoE({ numExperts: N, capacityFactor: 1, seed: 0 })));
    expect(await values(a!.weights[0]!.read())).to.deep.equal(await values(b!.weights[0]!.read()));
    a!.dispose();
    b!.dispose();
  });

  it('computeOutputShape keeps [batch, m, d]', function () {
    const layer = build(new ExpertsChoiceMoE({ numExperts: N, capacity: 3 }));
    expect(layer.computeOutputShape([null, M, D])).to.deep.equal([null, M, D]);
    expect((layer.apply(tf.input({ shape: [M, D] })) as tf.SymbolicTensor).shape).to.deep.equal([null, M, D]);
    layer.dispose();
  });

  it('getConfig holds every constructor option and round-trips through fromConfig and JSON', function () {
    const map = tf.serialization.SerializationMap.getMap().classNameMap;
    const tc = new TokensChoiceMoE({
      numExperts: 5,
      k: 2,
      capacityFactor: 1.25,
      ceilOrRound: 'round',
      multipleOf: 2,
      batchPriority: true,
      noiseStd: 1,
      auxLoss: 'importance+load',
      auxLossWeight: 0.01,
      hidden: 7,
      expertInit: 'independent',
      seed: 3,
      name: 'tc',
    });
    expect(tc.getConfig()).to.include({
      numExperts: 5,
      k: 2,
      capacityFactor: 1.25,
      capacity: null,
      ceilOrRound: 'round',
      multipleOf: 2,
      batchPriority: true,
      noiseStd: 1,
      auxLoss: 'importance+load',
      auxLossWeight: 0.01,
      hidden: 7,
      expertInit: 'independent',
      seed: 3,
      name: 'tc',
    });
    const ec = new ExpertsChoiceMoE({ numExperts: 5, capacity: 4, ceilOrRound: 'ceil', multipleOf: 2, name: 'ec' });
    expect(ec.getConfig()).to.include({
      numExperts: 5,
      capacityFactor: null,
      capacity: 4,
      ceilOrRound: 'ceil',
      multipleOf: 2,
      hidden: null,
      expertInit: null,
      seed: null,
      name: 'ec',
    });
    for (const [cls, layer] of [
      [TokensChoiceMoE, tc],
      [ExpertsChoiceMoE, ec],
    ] as const) {
      expect(map[cls.className]![0], `registered as ${cls.className}`).to.equal(cls);
      const copy = map[cls.className]![1](cls, JSON.parse(JSON.stringify(layer.getConfig())));
      expect(copy).to.be.instanceOf(cls);
      expect(copy.getConfig()).to.deep.equal(layer.getConfig());
    }
  });

  forEachBackend(() => {
    it('outputs equal tokensChoice / expertsChoice with the same weights', async function () {
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 4) as tf.Tensor3D;
      const cases = [
        {
          layer: new TokensChoiceMoE({
            numExperts: N,
            k: 2,
            capacityFactor: 0.75,
            batchPriority: true,
            expertInit: 'independent',
            seed: 1,
          }),
          fn: (p: RouterParams) => tokensChoice(x, p, { k: 2, capacityFactor: 0.75, batchPriority: true }).y,
        },
        {
          layer: new ExpertsChoiceMoE({ numExperts: N, capacityFactor: 1.5, expertInit: 'independent', seed: 1 }),
          fn: (p: RouterParams) => expertsChoice(x, p, { capacityFactor: 1.5 }).y,
        },
      ];
      for (const { layer, fn } of cases) {
        build(layer);
        const got = layer.apply(x) as tf.Tensor;
        const want = tf.tidy(() => fn(paramsOf(layer)));
        expect(got.shape).to.deep.equal([B, M, D]);
        expect(await values(got), layer.name).to.deep.equal(await values(want));
        tf.dispose([got, want]);
        layer.dispose();
      }
      x.dispose();
    });

    it('router noise only in training: inference is deterministic and noiseless, training calls differ', async function () {
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 5) as tf.Tensor3D;
      // noiseStd 30 with n = 4: logits get N(0, 7.5²), enough to change most routes.
      const layer = build(new TokensChoiceMoE({ numExperts: N, k: 1, capacityFactor: 1, noiseStd: 30, seed: 2 }));
      const [a, b, t1, t2] = [
        layer.apply(x),
        layer.apply(x),
        layer.apply(x, { training: true }),
        layer.apply(x, { training: true }),
      ] as tf.Tensor[];
      const clean = tokensChoice(x, paramsOf(layer), { k: 1, capacityFactor: 1 });
      expect(await values(a!)).to.deep.equal(await values(clean.y));
      expect(await values(b!)).to.deep.equal(await values(a!));
      expect(await values(t1!)).to.not.deep.equal(await values(a!));
      expect(await values(t2!), 'each training call draws new noise').to.not.deep.equal(await values(t1!));
      tf.dispose([x, a!, b!, t1!, t2!, clean as unknown as tf.TensorContainer]);
      layer.dispose();
    });

    it('gradients reach every weight, including through the auxiliary loss, and equal the functional gradients', async function () {
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 6) as tf.Tensor3D;
      const r = tf.randomNormal([B, M, D], 0, 1, 'float32', 7);
      const weight = 0.5;
      const cases = [
        {
          // K = n: every expert gets tokens, so every expert weight has a gradient.
          layer: new TokensChoiceMoE({
            numExperts: N,
            k: N,
            capacityFactor: 1,
            auxLossWeight: weight,
            expertInit: 'independent',
            seed: 3,
          }),
          loss: (p: RouterParams) => {
            const out = tokensChoice(x, p, { k: N, capacityFactor: 1 });
            return tf.add(tf.sum(tf.mul(out.y, r)), tf.mul(out.auxLoss, weight)) as tf.Scalar;
          },
        },
        {
          layer: new ExpertsChoiceMoE({ numExperts: N, capacityFactor: 1, expertInit: 'independent', seed: 3 }),
          loss: (p: RouterParams) => tf.sum(tf.mul(expertsChoice(x, p, { capacityFactor: 1 }).y, r)) as tf.Scalar,
        },
      ];
      for (const { layer, loss } of cases) {
        build(layer);
        const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        // The layer's own training loss: output · r plus its registered losses (as model.fit adds them).
        const { grads, value } = tf.variableGrads(() => {
          const y = layer.apply(x, { training: true }) as tf.Tensor;
          const extra = layer.calculateLosses();
          return tf.addN([tf.sum(tf.mul(y, r)), ...extra]) as tf.Scalar;
        }, variables);
        const params = paramsOf(layer);
        const reference = tf.grads((...ts: tf.Tensor[]) =>
          loss(Object.fromEntries(WEIGHT_NAMES.map((n, i) => [n, ts[i]!])) as unknown as RouterParams),
        )(WEIGHT_NAMES.map((n) => params[n as keyof RouterParams]));
        for (const [i, v] of variables.entries()) {
          const g = grads[v.name]!;
          const norm = tf.tidy(() => tf.sum(tf.abs(g)));
          expect((await norm.data())[0], `${layer.name}: |gradient of ${WEIGHT_NAMES[i]}|`).to.be.greaterThan(0);
          norm.dispose();
          expectClose(g, await reference[i]!.data(), `${layer.name}: gradient of ${WEIGHT_NAMES[i]}`, 1e-5, 1e-4);
        }
        tf.dispose([value, ...Object.values(grads), ...reference]);
        layer.dispose();
      }
      tf.dispose([x, r]);
    });

    it('Forward: no memory leak; dispose() frees every weight and the kept auxiliary loss', function () {
      const start = tf.memory().numTensors;
      const x = tf.randomNormal([B, M, D], 0, 1, 'float32', 1);
      for (const layer of [
        new TokensChoiceMoE({ numExperts: N, k: 1, capacityFactor: 1, noiseStd: 1, seed: 1 }),
        new ExpertsChoiceMoE({ numExperts: N, capacityFactor: 1 }),
      ]) {
        build(layer);
        tf.tidy(() => {
          layer.apply(x, { training: true });
        });
        const warm = tf.memory().numTensors;
        tf.tidy(() => {
          layer.apply(x, { training: true });
          layer.calculateLosses();
        });
        expect(tf.memory().numTensors, `${layer.name} in a tidy`).to.equal(warm);
        // Outside any scope the latest auxiliary loss stays alive (one scalar) until the next call or dispose.
        (layer.apply(x) as tf.Tensor).dispose();
        (layer.apply(x) as tf.Tensor).dispose();
        expect(tf.memory().numTensors, `${layer.name} outside a tidy`).to.be.at.most(warm + 1);
        layer.dispose();
      }
      x.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    });
  });

  it('the weighted auxiliary loss is registered with addLoss and is part of the loss model.fit minimises', async function () {
    const x = tf.randomNormal([16, M, D], 0, 1, 'float32', 8) as tf.Tensor3D;
    const y = tf.tensor1d(
      Array.from({ length: 16 }, (_, i) => i % 3),
      'float32',
    );
    const moe = new TokensChoiceMoE({ numExperts: N, k: 1, capacityFactor: 1, seed: 4 });
    expect(moe.auxLossWeight, 'default weight: V-MoE 0.005').to.equal(VMOE_AUX_LOSS_WEIGHT);
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [M, D], units: D }),
        moe,
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
    // Before the step: cross-entropy and the importance loss (the default without noise) of the same forward.
    const [ce, aux] = await Promise.all(
      tf
        .tidy(() => {
          const probs = model.apply(x, { training: true }) as tf.Tensor;
          const crossEntropy = tf.mean(tf.metrics.categoricalCrossentropy(tf.oneHot(y.cast('int32'), 3), probs));
          const hidden = model.layers[0]!.apply(x) as tf.Tensor3D;
          const gates = tokensChoice(hidden, paramsOf(moe), { k: 1, capacityFactor: 1 }).gates;
          return [crossEntropy, importanceLoss(gates)];
        })
        .map(values),
    );
    expect(aux![0]).to.be.greaterThan(0);
    // One full batch: fit reports the loss of the forward before its update.
    const history = await model.fit(x, y, { epochs: 1, batchSize: 16, shuffle: false, verbose: 0 });
    expectClose(
      [history.history.loss![0] as number],
      [ce![0]! + VMOE_AUX_LOSS_WEIGHT * aux![0]!],
      'fit loss = cross-entropy + 0.005 · importance',
      1e-5,
      1e-5,
    );
    model.dispose();
    tf.dispose([x, y]);
  });

  it('auxLossWeight 0 registers no loss; Experts Choice has none', function () {
    expect(new TokensChoiceMoE({ numExperts: N, k: 1, capacityFactor: 1, auxLossWeight: 0 }).losses).to.have.length(0);
    expect(new TokensChoiceMoE({ numExperts: N, k: 1, capacityFactor: 1 }).losses).to.have.length(1);
    expect(new ExpertsChoiceMoE({ numExperts: N, capacityFactor: 1 }).losses).to.have.length(0);
  });

  it('rejects a bad configuration with a message naming the value', function () {
    const tc: [Record<string, unknown>, RegExp][] = [
      [
        { numExperts: 4, capacityFactor: 1 },
        /TokensChoiceMoE tokens_choice_moe_\d+: k must be an integer ≥ 1, got undefined/,
      ],
      [{ numExperts: 4, k: 5, capacityFactor: 1 }, /k must be ≤ numExperts = 4, got k = 5/],
      [
        { numExperts: 4, k: 1 },
        /give exactly one of capacityFactor and capacity, got capacityFactor = undefined, capacity = undefined/,
      ],
      [{ numExperts: 4, k: 1, capacityFactor: 1, capacity: 2 }, /give exactly one of capacityFactor and capacity/],
      [{ numExperts: 4, k: 1, capacityFactor: 0 }, /capacityFactor must be a finite number > 0, got 0/],
      [{ numExperts: 4, k: 1, capacity: 1.5 }, /capacity must be an integer ≥ 1, got 1.5/],
      [
        { numExperts: 4, k: 1, capacityFactor: 1, ceilOrRound: 'floor' },
        /ceilOrRound must be one of "ceil", "round", got "floor"/,
      ],
      [{ numExperts: 4, k: 1, capacityFactor: 1, multipleOf: 0 }, /multipleOf must be an integer ≥ 1, got 0/],
      [{ numExperts: 4, k: 1, capacityFactor: 1, batchPriority: 1 }, /batchPriority must be true or false, got 1/],
      [{ numExperts: 4, k: 1, capacityFactor: 1, noiseStd: -1 }, /noiseStd must be a finite number ≥ 0, got -1/],
      [
        { numExperts: 4, k: 1, capacityFactor: 1, auxLoss: 'z' },
        /auxLoss must be one of "importance", "load", "importance\+load", "gshard", "none", got "z"/,
      ],
      [
        { numExperts: 4, k: 1, capacityFactor: 1, auxLoss: 'load' },
        /auxLoss "load" needs noisy gates \(noiseStd > 0\), got noiseStd = 0/,
      ],
      [
        { numExperts: 4, k: 1, capacityFactor: 1, auxLossWeight: Number.NaN },
        /auxLossWeight must be a finite number ≥ 0, got NaN/,
      ],
      [{ numExperts: 0, k: 1, capacityFactor: 1 }, /numExperts must be an integer ≥ 1, got 0/],
    ];
    for (const [args, message] of tc) {
      expect(
        () => new TokensChoiceMoE(args as unknown as ConstructorParameters<typeof TokensChoiceMoE>[0]),
        JSON.stringify(args),
      ).to.throw(message);
    }
    expect(() => new ExpertsChoiceMoE({ numExperts: 4 } as ConstructorParameters<typeof ExpertsChoiceMoE>[0])).to.throw(
      /ExpertsChoiceMoE experts_choice_moe_\d+: give exactly one of capacityFactor and capacity/,
    );
    expect(() => new ExpertsChoiceMoE({ numExperts: 4, capacityFactor: 1, hidden: -2 })).to.throw(
      /hidden must be an integer ≥ 1, got -2/,
    );
    // A capacity above the token count is caught by expertsChoice at the first call, naming m.
    const layer = build(new ExpertsChoiceMoE({ numExperts: 4, capacity: M + 1, name: 'big' }));
    tf.tidy(() => {
      expect(() => layer.apply(tf.zeros([1, M, D]))).to.throw(/capacity must be ≤ the m = 10 tokens of a group/);
    });
    layer.dispose();
  });
});
