/**
 * The wasm fast path (lib/ops/fast-wasm.ts) against the portable path (public tfjs ops, the same
 * functions with the fast path switched off) and against float64 loops written here, for values
 * and gradients, over many shapes; plus memory leaks and bad input.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { initBackend } from '../../lib/backend.js';
import { initDefaultBackend } from '../helpers/golden.js';
import {
  disposeFastWasm,
  fastWasm,
  fastWasmStatus,
  PINNED_TFJS_VERSION,
  setFastWasmEnabled,
  setFastWasmSharedClones,
  wasmLayerNorm,
  wasmLayerNormGrad,
} from '../../lib/ops/wasm/fast-wasm.js';
import { batchLinear, batchMatMul, linear, matMul, product, sumRows } from '../../lib/ops/matmul.js';
import { gelu, l2Normalize, softmax } from '../../lib/ops/nn.js';
import { inversePermutation, reducePermutation, transpose } from '../../lib/ops/transpose.js';
import { expectClose } from '../helpers/golden.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Run `f` with the fast path on, then off; return both results as plain arrays. */
function bothPaths<T>(f: () => T): { fast: T; portable: T } {
  expect(fastWasm(), 'fast path must be active for this comparison').to.not.equal(null);
  const fast = f();
  const previous = setFastWasmEnabled(false);
  try {
    return { fast, portable: f() };
  } finally {
    setFastWasmEnabled(previous);
  }
}

function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** float64 op(A)·op(B) (+ bias) from flat row-major arrays. */
function refProduct(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  tA: boolean,
  tB: boolean,
  bBatch: number,
  bias?: Float32Array,
  biasBatch = 1,
): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let e = 0; e < batch; e++) {
    const eb = bBatch === 1 ? 0 : e;
    const ebias = biasBatch === 1 ? 0 : e;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[ebias * n + j] : 0;
        for (let q = 0; q < k; q++) {
          const av = a[e * m * k + (tA ? q * m + i : i * k + q)];
          const bv = b[eb * k * n + (tB ? j * k + q : q * n + j)];
          s += av * bv;
        }
        out[e * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

describe('ops/fast-wasm: SIMD kernels on the tfjs wasm backend', function () {
  before(async function () {
    await initBackend('wasm');
  });
  after(async function () {
    await initDefaultBackend();
  });

  it(`is active on wasm with tfjs ${PINNED_TFJS_VERSION} (else these tests would compare the portable path with itself)`, function () {
    expect(tf.version.tfjs).to.equal(PINNED_TFJS_VERSION);
    expect(fastWasmStatus()).to.deep.equal({ active: true, reason: null, sharedClones: true });
  });

  it('is off when disabled, and says why', function () {
    const previous = setFastWasmEnabled(false);
    try {
      expect(fastWasm()).to.equal(null);
      expect(fastWasmStatus().reason).to.match(/disabled/);
    } finally {
      setFastWasmEnabled(previous);
    }
  });

  // [batch, m, k, n, bBatch]: batch 1, k = 1, n = 1, m = 1, sizes around the 4×8 tile, odd sizes,
  // a reduction longer than one K block (reductionBlock: 256 rows for n = 128), shared B.
  const shapes: Array<[number, number, number, number, number]> = [
    [1, 1, 1, 1, 1],
    [1, 4, 8, 8, 1],
    [3, 5, 1, 7, 3],
    [2, 1, 9, 1, 2],
    [4, 7, 13, 5, 4],
    [2, 9, 3, 17, 1],
    [1, 33, 65, 129, 1],
    [5, 12, 16, 4, 5],
    [1, 67, 600, 128, 1],
    [3, 8, 37, 300, 3],
  ];
  for (const [batch, m, k, n, bBatch] of shapes) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`product [${batch}, ${m}, ${k}]${tA ? 'ᵀ' : ''}·[${bBatch}, ${k}, ${n}]${tB ? 'ᵀ' : ''} with and without bias equals float64 and the portable path`, function () {
        tf.tidy(() => {
          const a = tf.randomNormal(tA ? [batch, k, m] : [batch, m, k], 0, 1, 'float32', m * 7 + k) as tf.Tensor3D;
          const b = tf.randomNormal(tB ? [bBatch, n, k] : [bBatch, k, n], 0, 1, 'float32', n * 3 + k) as tf.Tensor3D;
          for (const biasBatch of [0, 1, batch]) {
            const bias = biasBatch ? (tf.randomNormal([biasBatch, n], 0, 1, 'float32', 5) as tf.Tensor2D) : undefined;
            const { fast, portable } = bothPaths(() => values(product(a, b, { transposeA: tA, transposeB: tB, bias })));
            const want = refProduct(
              values(a),
              values(b),
              batch,
              m,
              k,
              n,
              tA,
              tB,
              bBatch,
              bias ? values(bias) : undefined,
              biasBatch || 1,
            );
            // float32 sums of k products of N(0,1) values: error ~√k·2^−24·|terms|, far below this.
            const atol = 1e-5 * Math.sqrt(k) * 4;
            expectClose(fast, want, 'fast vs float64', atol, 1e-5);
            expectClose(portable, want, 'portable vs float64', atol, 1e-5);
          }
        });
      });
    }
  }

  it('matMul, batchMatMul, batchLinear and linear: values and gradients agree with the portable path and the closed form', function () {
    tf.tidy(() => {
      const [m, k, n, batch] = [19, 23, 11, 3];
      const a2 = tf.randomNormal([m, k], 0, 1, 'float32', 1) as tf.Tensor2D;
      const b2 = tf.randomNormal([k, n], 0, 1, 'float32', 2) as tf.Tensor2D;
      const a3 = tf.randomNormal([batch, m, k], 0, 1, 'float32', 3) as tf.Tensor3D;
      const b3 = tf.randomNormal([batch, k, n], 0, 1, 'float32', 4) as tf.Tensor3D;
      const bias2 = tf.randomNormal([batch, n], 0, 1, 'float32', 5) as tf.Tensor2D;
      const bias1 = tf.randomNormal([n], 0, 1, 'float32', 6) as tf.Tensor1D;
      const x4 = tf.randomNormal([2, 3, 5, k], 0, 1, 'float32', 7);
      const r2 = tf.randomNormal([m, n], 0, 1, 'float32', 8);
      const r3 = tf.randomNormal([batch, m, n], 0, 1, 'float32', 9);
      const r4 = tf.randomNormal([2, 3, 5, n], 0, 1, 'float32', 10);
      const cases: Array<[string, () => tf.Tensor[]]> = [
        [
          'matMul',
          () =>
            tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(matMul(a as tf.Tensor2D, b as tf.Tensor2D), r2)))([
              a2,
              b2,
            ]),
        ],
        [
          'batchMatMul',
          () =>
            tf.grads((a: tf.Tensor, b: tf.Tensor) =>
              tf.sum(tf.mul(batchMatMul(a as tf.Tensor3D, b as tf.Tensor3D), r3)),
            )([a3, b3]),
        ],
        [
          'batchLinear',
          () =>
            tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
              tf.sum(tf.mul(batchLinear(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor2D), r3)),
            )([a3, b3, bias2]),
        ],
        [
          'linear',
          () =>
            tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
              tf.sum(tf.mul(linear(a, b as tf.Tensor2D, c as tf.Tensor1D), r4)),
            )([x4, b2, bias1]),
        ],
      ];
      for (const [name, run] of cases) {
        const { fast, portable } = bothPaths(() => run().map(values));
        fast.forEach((g, i) => expectClose(g, portable[i], `${name}: gradient ${i}, fast vs portable`, 1e-4, 1e-4));
      }
      // Closed form for batchLinear: dX = R·Wᵀ, dW = Xᵀ·R, dbias = Σ_rows R (float64 here).
      const [dx, dw, db] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(batchLinear(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor2D), r3)),
      )([a3, b3, bias2]);
      const [A, B, R] = [values(a3), values(b3), values(r3)];
      expectClose(dx, refProduct(R, B, batch, m, n, k, false, true, batch), 'dX = R·Wᵀ', 1e-4, 1e-4);
      expectClose(dw, refProduct(A, R, batch, k, m, n, true, false, batch), 'dW = Xᵀ·R', 1e-4, 1e-4);
      const dbWant = new Float64Array(batch * n);
      for (let e = 0; e < batch; e++)
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) dbWant[e * n + j] += R[e * m * n + i * n + j];
      expectClose(db, dbWant, 'dbias = Σ rows of R', 1e-4, 1e-4);
    });
  });

  it('sumRows equals a float64 column sum', function () {
    tf.tidy(() => {
      const x = tf.randomNormal([3, 37, 13], 0, 1, 'float32', 11) as tf.Tensor3D;
      const v = values(x);
      const want = new Float64Array(3 * 13);
      for (let e = 0; e < 3; e++)
        for (let i = 0; i < 37; i++) for (let j = 0; j < 13; j++) want[e * 13 + j] += v[e * 37 * 13 + i * 13 + j];
      expectClose(sumRows(x), want, 'sumRows', 1e-5, 1e-5);
    });
  });

  it('reducePermutation drops size-1 axes and merges axes that stay neighbours', function () {
    // Worked by hand: [g, n, p, d] → [n, g, p, d] moves blocks of p·d; [a, b, c] → [b, c, a] is
    // a 2-D transpose of [a, b·c]; size-1 axes vanish.
    expect(reducePermutation([4, 3, 2, 5], [1, 0, 2, 3])).to.deep.equal({ shape: [4, 3, 10], perm: [1, 0, 2] });
    expect(reducePermutation([2, 3, 4], [1, 2, 0])).to.deep.equal({ shape: [2, 12], perm: [1, 0] });
    expect(reducePermutation([2, 1, 3], [2, 1, 0])).to.deep.equal({ shape: [2, 3], perm: [1, 0] });
    expect(reducePermutation([5, 6, 7], [0, 2, 1])).to.deep.equal({ shape: [5, 6, 7], perm: [0, 2, 1] });
    expect(reducePermutation([5, 6, 7], [0, 1, 2])).to.deep.equal({ shape: [210], perm: [0] });
    expect(reducePermutation([1, 1], [1, 0])).to.deep.equal({ shape: [], perm: [] });
    expect(inversePermutation([2, 0, 1])).to.deep.equal([1, 2, 0]);
  });

  const perms: Array<[number[], number[]]> = [
    [
      [5, 7],
      [1, 0],
    ],
    [
      [1, 9],
      [1, 0],
    ],
    [
      [3, 5, 6],
      [0, 2, 1],
    ],
    [
      [4, 3, 5, 2],
      [1, 0, 2, 3],
    ],
    [
      [2, 3, 4],
      [1, 2, 0],
    ],
    [
      [2, 3, 4],
      [2, 0, 1],
    ],
    [
      [2, 3, 4],
      [2, 1, 0],
    ],
    [
      [3, 1, 5, 1],
      [3, 2, 0, 1],
    ],
    [
      [33, 66],
      [1, 0],
    ],
  ];
  for (const [shape, perm] of perms) {
    it(`transpose [${shape.join(', ')}] by [${perm.join(', ')}] equals tf.transpose, and its gradient is the inverse transpose`, function () {
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 12);
        const outShape = perm.map((p) => shape[p]);
        const r = tf.randomNormal(outShape, 0, 1, 'float32', 13);
        const want = tf.transpose(x, perm);
        const { fast, portable } = bothPaths(() => {
          const y = transpose(x, perm);
          expect(y.shape).to.deep.equal(outShape);
          const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(transpose(t, perm), r)))([x]);
          return [values(y), values(g)];
        });
        // A transpose moves values without arithmetic: exact equality.
        expect(Array.from(fast[0])).to.deep.equal(Array.from(values(want)));
        expect(Array.from(portable[0])).to.deep.equal(Array.from(values(want)));
        const gWant = values(tf.transpose(r, inversePermutation(perm)));
        expect(Array.from(fast[1])).to.deep.equal(Array.from(gWant));
      });
    });
  }

  it('gelu: the fused kernels equal the portable GELU, for sizes with 0–3 trailing elements, gradient included', function () {
    tf.tidy(() => {
      for (const size of [1, 2, 3, 4, 5, 17, 1027]) {
        const x = tf.mul(tf.randomNormal([size], 0, 1, 'float32', size), 3);
        const r = tf.randomNormal([size], 0, 1, 'float32', size + 1);
        const { fast, portable } = bothPaths(() => {
          const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), r)))([x]);
          return [values(gelu(x)), values(g)];
        });
        expectClose(fast[0], portable[0], `gelu size ${size}`, 1e-6, 1e-5);
        expectClose(fast[1], portable[1], `gelu grad size ${size}`, 1e-5, 1e-5);
      }
    });
  });

  it('l2Normalize over the last axis: the fused kernels equal the portable ops, gradient included', function () {
    tf.tidy(() => {
      for (const shape of [[1], [3, 5], [2, 4, 128], [6, 7]]) {
        const x = tf.randomNormal(shape, 0, 2, 'float32', shape.length);
        const r = tf.randomNormal(shape, 0, 1, 'float32', 9);
        const { fast, portable } = bothPaths(() => {
          const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(l2Normalize(t, -1), r)))([x]);
          return [values(l2Normalize(x, -1)), values(g)];
        });
        expectClose(fast[0], portable[0], `l2Normalize [${shape.join(', ')}]`, 1e-6, 1e-5);
        expectClose(fast[1], portable[1], `l2Normalize grad [${shape.join(', ')}]`, 1e-5, 1e-4);
      }
    });
  });

  it('l2Normalize over other axes and softmax: fast equals portable, gradients included', function () {
    tf.tidy(() => {
      const x = tf.randomNormal([6, 5, 3], 0, 2, 'float32', 21);
      const r = tf.randomNormal([6, 5, 3], 0, 1, 'float32', 22);
      for (const axis of [0, 1, 2, -1]) {
        const { fast, portable } = bothPaths(() => {
          const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(l2Normalize(t, axis), r)))([x]);
          return [values(l2Normalize(x, axis)), values(g)];
        });
        expectClose(fast[0], portable[0], `l2Normalize axis ${axis}`, 1e-6, 1e-5);
        expectClose(fast[1], portable[1], `l2Normalize axis ${axis} grad`, 1e-5, 1e-4);
      }
      for (const shape of [[7], [3, 5], [2, 4, 9]]) {
        const z = tf.randomNormal(shape, 0, 3, 'float32', 23);
        const rz = tf.randomNormal(shape, 0, 1, 'float32', 24);
        const { fast, portable } = bothPaths(() => {
          const [g] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(softmax(t), rz)))([z]);
          return [values(softmax(z)), values(g)];
        });
        expectClose(fast[0], portable[0], `softmax [${shape.join(', ')}]`, 1e-7, 1e-6);
        expectClose(fast[1], portable[1], `softmax grad [${shape.join(', ')}]`, 1e-6, 1e-5);
      }
    });
  });

  it('wasmLayerNorm and its gradient equal autodiff of the composed tfjs ops (odd widths too)', function () {
    tf.tidy(() => {
      for (const [rows, d] of [
        [1, 1],
        [5, 7],
        [49, 64],
        [3, 130],
      ]) {
        const x = tf.add(tf.randomNormal([rows, d], 0, 2, 'float32', d), 1) as tf.Tensor2D;
        const scale = tf.randomNormal([d], 1, 0.3, 'float32', d + 1) as tf.Tensor1D;
        const bias = tf.randomNormal([d], 0, 0.3, 'float32', d + 2) as tf.Tensor1D;
        const dy = tf.randomNormal([rows, d], 0, 1, 'float32', d + 3) as tf.Tensor2D;
        const eps = 1e-6;
        // Reference: y = (x − mean)/√(var + eps)·scale + bias with tfjs' own gradients (cpu-style autodiff).
        const composed = (a: tf.Tensor, s: tf.Tensor, b: tf.Tensor) => {
          const centred = tf.sub(a, tf.mean(a, -1, true));
          const xhat = tf.mul(centred, tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps)));
          return tf.add(tf.mul(xhat, s), b);
        };
        const [yWant, dxWant, dsWant, dbWant] = (() => {
          const previous = setFastWasmEnabled(false);
          try {
            const grads = tf.grads((a: tf.Tensor, s: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(composed(a, s, b), dy)))(
              [x, scale, bias],
            );
            return [composed(x, scale, bias), ...grads].map(values);
          } finally {
            setFastWasmEnabled(previous);
          }
        })();
        const [y, xhat, rstd] = wasmLayerNorm(x, scale, bias, eps);
        const [dx, ds, db] = wasmLayerNormGrad(dy, xhat, rstd, scale);
        expectClose(y, yWant, `layerNorm y [${rows}, ${d}]`, 1e-5, 1e-4);
        expectClose(dx, dxWant, `layerNorm dx [${rows}, ${d}]`, 1e-4, 1e-3);
        expectClose(ds, dsWant, `layerNorm dscale [${rows}, ${d}]`, 1e-4, 1e-4);
        expectClose(db, dbWant, `layerNorm dbias [${rows}, ${d}]`, 1e-4, 1e-4);
      }
    });
  });

  /** Data buffers a clone adds: 0 when it shares its input's data, 1 when it copies. */
  function cloneBuffers(): number {
    const u = tf.tensor([5, 6, 7]);
    const before = tf.memory().numDataBuffers;
    const v = tf.clone(u);
    const added = tf.memory().numDataBuffers - before;
    u.dispose();
    expect(Array.from(v.dataSync())).to.deep.equal([5, 6, 7]);
    v.dispose();
    return added;
  }

  /** A small training step through the fast ops: its gradients, as plain arrays. */
  function gradientsOfAStep(): Float32Array[] {
    return tf.tidy(() => {
      const x = tf.randomNormal([3, 5, 8], 0, 1, 'float32', 31) as tf.Tensor3D;
      const w = tf.randomNormal([3, 8, 6], 0, 1, 'float32', 32) as tf.Tensor3D;
      const bias = tf.randomNormal([3, 6], 0, 1, 'float32', 33) as tf.Tensor2D;
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(softmax(gelu(transpose(batchLinear(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor2D), [1, 0, 2]))));
      return tf.grads(f)([x, w, bias]).map(values);
    });
  }

  it('clones share data on the fast path and stay valid after the original is disposed', function () {
    const x = tf.tensor([1, 2, 3, 4], [2, 2]);
    const before = tf.memory();
    const y = tf.clone(x);
    const after = tf.memory();
    // One more tensor, no more data buffers: the clone counts a reference to the same data (tfjs'
    // numBytes counts bytes per tensor, as for tf.reshape, so it is not the measure here).
    expect(after.numTensors).to.equal(before.numTensors + 1);
    expect(after.numDataBuffers).to.equal(before.numDataBuffers);
    x.dispose();
    expect(Array.from(y.dataSync())).to.deep.equal([1, 2, 3, 4]);
    y.dispose();
  });

  it("Identity: tfjs' own kernel is registered again when the fast path is disabled, disposed or clones are not shared; results unchanged", function () {
    // tfjs' own kernel, as the backend registered it: dispose restores it (whatever ran before).
    disposeFastWasm();
    const own = tf.getKernel('Identity', 'wasm');
    expect(own).to.not.equal(undefined);
    expect(fastWasmStatus().active).to.equal(false);
    expect(cloneBuffers(), 'tfjs 4.22 wasm Identity copies').to.equal(1);
    const portableGrads = gradientsOfAStep();
    try {
      setFastWasmEnabled(true);
      expect(fastWasmStatus()).to.deep.equal({ active: true, reason: null, sharedClones: true });
      expect(tf.getKernel('Identity', 'wasm')).to.not.equal(own);
      expect(cloneBuffers(), 'shared clone').to.equal(0);
      const fastGrads = gradientsOfAStep();

      setFastWasmEnabled(false);
      expect(tf.getKernel('Identity', 'wasm'), 'disabled: the original kernel object').to.equal(own);
      expect(cloneBuffers()).to.equal(1);
      const disabledGrads = gradientsOfAStep();

      setFastWasmEnabled(true);
      expect(tf.getKernel('Identity', 'wasm')).to.not.equal(own);
      setFastWasmSharedClones(false);
      expect(tf.getKernel('Identity', 'wasm'), 'clones not shared: the original kernel object').to.equal(own);
      expect(fastWasmStatus()).to.deep.equal({ active: true, reason: null, sharedClones: false });
      expect(cloneBuffers()).to.equal(1);
      const copiedGrads = gradientsOfAStep();
      setFastWasmSharedClones(true);
      expect(cloneBuffers()).to.equal(0);

      // Off, the step runs the portable ops: bit for bit what it gave before the fast path bound.
      disabledGrads.forEach((g, i) =>
        expect(Array.from(g), `gradient ${i}, disabled`).to.deep.equal(Array.from(portableGrads[i])),
      );
      // Copying or sharing clones moves no values: the fast step is bit for bit the same.
      copiedGrads.forEach((g, i) =>
        expect(Array.from(g), `gradient ${i}, copied clones`).to.deep.equal(Array.from(fastGrads[i])),
      );
      // The fast kernels round differently from tfjs' (sums in another order).
      fastGrads.forEach((g, i) => expectClose(g, portableGrads[i], `gradient ${i}, fast vs portable`, 1e-5, 1e-4));

      disposeFastWasm();
      expect(tf.getKernel('Identity', 'wasm'), 'disposed: the original kernel object').to.equal(own);
      expect(tf.getKernel('SoftMoEWasmGemm', 'wasm'), 'disposed: the fast kernels unregistered').to.equal(undefined);
    } finally {
      setFastWasmSharedClones(true);
      setFastWasmEnabled(true);
    }
    expect(fastWasmStatus().active, 'binds again after dispose').to.equal(true);
    expect(tf.getKernel('Identity', 'wasm')).to.not.equal(own);
  });

  it("SOFTMOE_FAST_WASM=0 turns the fast path off; SOFTMOE_FAST_WASM_SHARE_CLONES=0 keeps tfjs' Identity kernel (fresh processes)", function () {
    this.timeout(120000);
    // The variables are read when the module loads: each setting runs in its own process.
    const code = [
      "import * as tf from '@tensorflow/tfjs';",
      "import { initBackend } from './lib/backend.ts';",
      "import { fastWasmStatus } from './lib/ops/index.ts';",
      "import { product } from './lib/ops/matmul.ts';",
      "await initBackend('wasm');",
      'const own = tf.getKernel("Identity", "wasm");',
      'tf.dispose(product(tf.ones([1, 2, 2]), tf.ones([1, 2, 2])));',
      'console.log(JSON.stringify({ ...fastWasmStatus(), ownIdentity: tf.getKernel("Identity", "wasm") === own }));',
    ].join('\n');
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
      expect(r.status, r.stderr).to.equal(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        active: boolean;
        reason: string | null;
        sharedClones: boolean;
        ownIdentity: boolean;
      };
    };
    const off = run({ SOFTMOE_FAST_WASM: '0' });
    expect(off).to.include({ active: false, sharedClones: false, ownIdentity: true });
    expect(off.reason).to.match(/disabled \(SOFTMOE_FAST_WASM/);
    expect(run({ SOFTMOE_FAST_WASM_SHARE_CLONES: '0' })).to.deep.equal({
      active: true,
      reason: null,
      sharedClones: false,
      ownIdentity: true,
    });
  });

  it('keeps working after the wasm heap grows (kernels read the live memory)', function () {
    const memory = (tf.backend() as unknown as { wasm: { asm: { memory: { buffer: ArrayBuffer } } } }).wasm.asm.memory;
    const before = memory.buffer.byteLength;
    if (before > 512 * 2 ** 20) this.skip(); // do not grow an already large heap further
    tf.tidy(() => {
      const a = tf.randomNormal([1, 6, 5], 0, 1, 'float32', 14) as tf.Tensor3D;
      const b = tf.randomNormal([1, 5, 7], 0, 1, 'float32', 15) as tf.Tensor3D;
      const big = tf.zeros([before / 4 + 1024]); // forces memory.grow
      expect(memory.buffer.byteLength).to.be.greaterThan(before);
      big.dispose();
      const want = refProduct(values(a), values(b), 1, 6, 5, 7, false, false, 1);
      expectClose(product(a, b), want, 'after growth', 1e-5, 1e-5);
    });
  });

  it('Forward: no memory leak (products, transposes, gelu)', function () {
    const x = tf.randomNormal([4, 6, 8]) as tf.Tensor3D;
    const w = tf.randomNormal([4, 8, 5]) as tf.Tensor3D;
    const bias = tf.randomNormal([4, 5]) as tf.Tensor2D;
    const run = () => {
      tf.dispose([
        batchLinear(x, w, bias),
        product(x, w, { transposeB: false }),
        transpose(x, [1, 0, 2]),
        transpose(x, [0, 2, 1]),
        gelu(x),
        sumRows(x),
      ]);
    };
    run();
    const count = tf.memory().numTensors;
    run();
    expect(tf.memory().numTensors).to.equal(count);
    tf.dispose([x, w, bias]);
  });

  it('Training step: no memory leak (gradients through every fast op)', function () {
    const x = tf.randomNormal([4, 6, 8]) as tf.Tensor3D;
    const w = tf.randomNormal([4, 6, 8]) as tf.Tensor3D;
    const bias = tf.randomNormal([4, 8]) as tf.Tensor2D;
    const step = () => {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(
          gelu(
            transpose(
              batchLinear(transpose(a as tf.Tensor3D, [0, 2, 1]) as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor2D),
              [1, 0, 2],
            ),
          ),
        ),
      )([x, w, bias]);
      tf.dispose(grads);
    };
    step();
    const count = tf.memory().numTensors;
    step();
    expect(tf.memory().numTensors).to.equal(count);
    tf.dispose([x, w, bias]);
  });

  it('bad input: mismatched shapes and non-permutations are errors that name the shapes', function () {
    tf.tidy(() => {
      const a = tf.zeros([2, 3, 4]) as tf.Tensor3D;
      expect(() => product(a, tf.zeros([2, 5, 6]) as tf.Tensor3D)).to.throw(/\[2, 3, 4\].*\[2, 5, 6\]/);
      expect(() => product(a, tf.zeros([3, 4, 6]) as tf.Tensor3D)).to.throw(/\[2, 3, 4\].*\[3, 4, 6\]/);
      expect(() => product(a, tf.zeros([2, 4, 6]) as tf.Tensor3D, { bias: tf.zeros([2, 5]) as tf.Tensor2D })).to.throw(
        /bias must be \[1 or 2, 6\], got \[2, 5\]/,
      );
      expect(() =>
        batchLinear(a, tf.zeros([2, 4, 6]) as tf.Tensor3D, tf.zeros([6]) as unknown as tf.Tensor2D),
      ).to.throw(/bias must be \[2, 6\]/);
      expect(() => linear(a, tf.zeros([5, 2]) as tf.Tensor2D)).to.throw(/weight must be \[4, n\]/);
      expect(() => transpose(a, [0, 0, 1])).to.throw(/perm \[0, 0, 1\] is not a permutation of the 3 axes/);
      expect(() => transpose(a, [1, 0])).to.throw(/not a permutation/);
    });
  });
});
