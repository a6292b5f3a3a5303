/**
 * The layerNorm op (lib/ops/layer-norm.ts) on every test backend against float64 loops written
 * here: the forward from its definition, the gradient by central differences of that forward
 * (independent of the closed form in the op). On wasm, the fast plug-in's fused kernels against
 * the op's portable version (the same call with the fast path off). Leaks and bad input.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { layerNorm } from '../../lib/ops/layer-norm.js';
import { fastWasmStatus, setFastWasmEnabled } from '../../lib/ops/index.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';

/** float64 y = (x − mean)/√(var + eps)·scale + bias per row of d (bias null: none). */
function refLayerNorm(
  x: ArrayLike<number>,
  scale: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  d: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[r * d + j] / d;
    let variance = 0;
    for (let j = 0; j < d; j++) variance += (x[r * d + j] - mean) ** 2 / d;
    for (let j = 0; j < d; j++)
      y[r * d + j] = ((x[r * d + j] - mean) / Math.sqrt(variance + eps)) * scale[j] + (bias ? bias[j] : 0);
  }
  return y;
}

/** Gradients of Σ y·dy for x, scale, bias by central differences of refLayerNorm, in float64. */
function refGradients(
  x: Float64Array,
  scale: Float64Array,
  bias: Float64Array,
  dy: ArrayLike<number>,
  d: number,
  eps: number,
): Float64Array[] {
  const loss = () => refLayerNorm(x, scale, bias, d, eps).reduce((s, v, i) => s + v * dy[i], 0);
  const h = 1e-5;
  return [x, scale, bias].map((p) =>
    Float64Array.from(p, (v, i) => {
      p[i] = v + h;
      const up = loss();
      p[i] = v - h;
      const down = loss();
      p[i] = v;
      return (up - down) / (2 * h);
    }),
  );
}

const SHAPES: number[][] = [
  [2, 3, 5],
  [4, 1],
  [3, 130],
  [7, 64],
];

forEachBackend(() => {
  describe('ops/layer-norm: layerNorm', function () {
    for (const shape of SHAPES) {
      it(`[${shape.join(', ')}]: values and gradients equal float64 loops (central differences for the gradient)`, function () {
        const d = shape[shape.length - 1];
        tf.tidy(() => {
          const x = tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', d), 2), 0.5);
          const scale = tf.randomNormal([d], 1, 0.3, 'float32', d + 1) as tf.Tensor1D;
          const bias = tf.randomNormal([d], 0, 0.3, 'float32', d + 2) as tf.Tensor1D;
          const dy = tf.randomNormal(shape, 0, 1, 'float32', d + 3);
          const eps = 1e-6;
          const [xv, sv, bv, dyv] = [x, scale, bias, dy].map((t) => Float64Array.from(t.dataSync()));
          expectClose(layerNorm(x, scale, bias, eps), refLayerNorm(xv, sv, bv, d, eps), 'y', 1e-5, 1e-4);
          expectClose(layerNorm(x, scale, null, eps), refLayerNorm(xv, sv, null, d, eps), 'y without bias', 1e-5, 1e-4);
          const got = tf.grads((a: tf.Tensor, s: tf.Tensor, b: tf.Tensor) =>
            tf.sum(tf.mul(layerNorm(a, s as tf.Tensor1D, b as tf.Tensor1D, eps), dy)),
          )([x, scale, bias]);
          const want = refGradients(xv, sv, bv, dyv, d, eps);
          ['dx', 'dscale', 'dbias'].forEach((name, i) => expectClose(got[i], want[i], name, 1e-4, 1e-3));
        });
      });
    }

    it('Forward and training step: no memory leak', function () {
      const x = tf.randomNormal([2, 3, 8]);
      const scale = tf.ones([8]) as tf.Tensor1D;
      const bias = tf.zeros([8]) as tf.Tensor1D;
      const run = () => {
        tf.dispose(layerNorm(x, scale, bias, 1e-6));
        tf.dispose(
          tf.grads((a: tf.Tensor, s: tf.Tensor) => tf.sum(layerNorm(a, s as tf.Tensor1D, null, 1e-6)))([x, scale]),
        );
      };
      run();
      const count = tf.memory().numTensors;
      run();
      expect(tf.memory().numTensors).to.equal(count);
      tf.dispose([x, scale, bias]);
    });

    it('bad input: scale or bias of the wrong width is an error naming both shapes', function () {
      tf.tidy(() => {
        const x = tf.zeros([2, 5]);
        expect(() => layerNorm(x, tf.ones([4]) as tf.Tensor1D, null, 1e-6)).to.throw(
          /scale must be \[5\] for input \[2, 5\], got \[4\]/,
        );
        expect(() => layerNorm(x, tf.ones([5]) as tf.Tensor1D, tf.zeros([6]) as tf.Tensor1D, 1e-6)).to.throw(
          /bias must be \[5\] for input \[2, 5\], got \[6\]/,
        );
      });
    });
  });
});

describe('ops/layer-norm: the wasm fast path equals the portable op', function () {
  let backendWas = 'cpu';
  before(async function () {
    backendWas = tf.getBackend();
    await tf.setBackend('wasm');
  });
  after(async function () {
    await tf.setBackend(backendWas);
  });

  it('values and gradients, rank 2 and 3, with and without bias, two eps values', function () {
    expect(
      fastWasmStatus().active,
      'the fast path must be on, else this compares the portable op with itself',
    ).to.equal(true);
    tf.tidy(() => {
      for (const shape of [
        [1, 1],
        [5, 7],
        [2, 49, 64],
        [3, 130],
      ]) {
        for (const eps of [1e-6, 1e-3]) {
          for (const withBias of [true, false]) {
            const d = shape[shape.length - 1];
            const x = tf.add(tf.randomNormal(shape, 0, 2, 'float32', d), 1);
            const scale = tf.randomNormal([d], 1, 0.3, 'float32', d + 1) as tf.Tensor1D;
            const bias = tf.randomNormal([d], 0, 0.3, 'float32', d + 2) as tf.Tensor1D;
            const dy = tf.randomNormal(shape, 0, 1, 'float32', d + 3);
            const params = withBias ? [x, scale, bias] : [x, scale];
            const f = (a: tf.Tensor, s: tf.Tensor, b?: tf.Tensor) =>
              layerNorm(a, s as tf.Tensor1D, (b as tf.Tensor1D | undefined) ?? null, eps);
            const run = () => {
              const grads = tf.grads((...p: tf.Tensor[]) => tf.sum(tf.mul(f(p[0], p[1], p[2]), dy)))(params);
              return [f(x, scale, withBias ? bias : undefined), ...grads].map((t) => t.dataSync() as Float32Array);
            };
            const fast = run();
            const previous = setFastWasmEnabled(false);
            let portable: Float32Array[];
            try {
              portable = run();
            } finally {
              setFastWasmEnabled(previous);
            }
            const what = `[${shape.join(', ')}] eps ${eps}${withBias ? '' : ' no bias'}`;
            expect(fast).to.have.length(withBias ? 4 : 3);
            fast.forEach((v, i) =>
              expectClose(
                v,
                portable[i],
                `${what}: ${['y', 'dx', 'dscale', 'dbias'][i]}, fast vs portable`,
                1e-5,
                1e-4,
              ),
            );
          }
        }
      }
    });
  });
});
