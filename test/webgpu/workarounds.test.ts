/**
 * The tfjs-backend-webgpu 4.22.0 bugs (lib/webgpu/workarounds.ts) and the GPU-error guard
 * (lib/webgpu/device.ts), on whatever WebGPU adapter there is (CI: Dawn's OpenGL ES backend on
 * Mesa llvmpipe). Each bug is shown twice: without its work-around the bug appears (so the test
 * notices when a tfjs release fixes it), with it the answer equals a plain JavaScript loop.
 * Sizes exceed tfjs's CPU hand-off threshold (1000 elements) so that GPU programs run.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { backendInfo, initBackend } from '../../lib/backend.js';
import { setWorkarounds } from '../../lib/webgpu/workarounds.js';
import { initDefaultBackend, useWebGPU } from '../helpers/golden.js';

const [ROWS, COLS] = [8, 150];
const VALUES = Int32Array.from({ length: ROWS * COLS }, (_, i) => (i * 37) % 1001);

/** Expected [COLS, ROWS, 1] transpose of VALUES viewed as [ROWS, COLS, 1]. */
function transposedByLoop(): number[] {
  const out: number[] = [];
  for (let j = 0; j < COLS; j++) for (let i = 0; i < ROWS; i++) out.push(VALUES[i * COLS + j]);
  return out;
}

/**
 * The error of computing and reading `make()` with the work-arounds off (Dawn reports errors
 * synchronously, so the op itself throws; a browser would reject the read). Afterwards the
 * work-arounds are back and the backend has a fresh device (the old one holds the fault).
 */
async function errorWithoutWorkarounds(make: () => tf.Tensor): Promise<Error> {
  setWorkarounds(false);
  try {
    const t = make();
    try {
      await t.data();
    } finally {
      t.dispose();
    }
  } catch (e) {
    return e as Error;
  } finally {
    setWorkarounds(true);
    await initBackend('webgpu');
  }
  throw new Error('expected an error without the work-arounds, the read succeeded');
}

describe('webgpu: tfjs-backend-webgpu 4.22.0 work-arounds and GPU errors', function () {
  this.timeout(120000);
  before(async function () {
    await useWebGPU(this);
  });
  after(async function () {
    await initDefaultBackend();
  });

  it('reports the adapter (vendor, architecture, description, fallback, software) and the raised storage-buffer limit', function () {
    const info = backendInfo();
    expect(info.name).to.equal('webgpu');
    expect(info.webgpu, 'adapter report').to.not.equal(null);
    const a = info.webgpu!;
    for (const key of ['vendor', 'architecture', 'device', 'description'] as const)
      expect(a[key], key).to.be.a('string');
    expect(a.fallback).to.be.a('boolean');
    expect(a.software).to.be.a('boolean');
    // tfjs alone would create the device with the default 8 (WebGPU spec default limit).
    expect(a.maxStorageBuffersPerShaderStage, 'device limit').to.be.greaterThan(8);
  });

  describe('bug 1: int32 transpose (tensorflow/tfjs#8638)', function () {
    const transposeInt = () => tf.tidy(() => tf.transpose(tf.tensor3d(VALUES, [ROWS, COLS, 1], 'int32'), [1, 0, 2]));

    it('without the work-around: the WGSL does not compile, and the guard throws naming the program', async function () {
      const error = await errorWithoutWorkarounds(transposeInt);
      expect(error.name, error.message).to.equal('WebGPUKernelError');
      expect(error.message)
        .to.match(/TransposeProgram/)
        .and.match(/setOutputAtIndex/);
    });

    it('with it: an int32 transpose equals the loop, in 2-D and 3-D', async function () {
      const t3 = transposeInt();
      const t2 = tf.tidy(() => tf.transpose(tf.tensor2d(VALUES, [ROWS, COLS], 'int32')));
      expect(t3.dtype).to.equal('int32');
      expect(Array.from(await t3.data())).to.deep.equal(transposedByLoop());
      expect(Array.from(await t2.data())).to.deep.equal(transposedByLoop());
      tf.dispose([t2, t3]);
    });

    it('with it: int32 cumsum, sum and max over a non-last axis and a cast from int32 equal the loop', async function () {
      const got = tf.tidy(() => {
        const x = tf.tensor2d(VALUES, [ROWS, COLS], 'int32');
        return [
          tf.cumsum(x, 0),
          tf.sum(x, 0),
          tf.max(x, 0),
          tf.cumsum(tf.cast(x, 'float32'), 0),
          tf.any(tf.greater(x, 990), 0),
        ];
      });
      const [cumsum, sum, max, floatCumsum, any] = await Promise.all(got.map((t) => t.data()));
      const wantCumsum: number[] = [];
      const running = new Array(COLS).fill(0);
      for (let i = 0; i < ROWS; i++)
        for (let j = 0; j < COLS; j++) wantCumsum.push((running[j] += VALUES[i * COLS + j]));
      const column = (j: number) => Array.from({ length: ROWS }, (_, i) => VALUES[i * COLS + j]);
      expect(Array.from(cumsum)).to.deep.equal(wantCumsum);
      expect(Array.from(floatCumsum)).to.deep.equal(wantCumsum);
      expect(Array.from(sum)).to.deep.equal(
        Array.from({ length: COLS }, (_, j) => column(j).reduce((a, b) => a + b, 0)),
      );
      expect(Array.from(max)).to.deep.equal(Array.from({ length: COLS }, (_, j) => Math.max(...column(j))));
      expect(Array.from(any)).to.deep.equal(
        Array.from({ length: COLS }, (_, j) => Number(column(j).some((v) => v > 990))),
      );
      expect(got.map((t) => t.dtype)).to.deep.equal(['int32', 'int32', 'int32', 'float32', 'bool']);
      tf.dispose(got);
    });
  });

  describe('bug 2: AddN with more inputs than storage buffers', function () {
    const TERMS = 24; // more than any adapter limit met (16) minus the output
    const sum = () => tf.tidy(() => tf.addN(Array.from({ length: TERMS }, (_, k) => tf.fill([1200], k + 1))));

    it('without the work-around: validation fails, and the guard throws naming AddNPackedProgram', async function () {
      const error = await errorWithoutWorkarounds(sum);
      expect(error.name, error.message).to.equal('WebGPUKernelError');
      expect(error.message).to.match(/AddNPackedProgram/);
    });

    it('with it: the sum of 24 tensors is 24·25/2 everywhere', async function () {
      const t = sum();
      const values = await t.data();
      t.dispose();
      expect(values.every((v) => v === (TERMS * (TERMS + 1)) / 2)).to.equal(true);
    });
  });

  it('after a GPU error every later op and read throws "unusable since …" until the backend is initialised again', async function () {
    setWorkarounds(false);
    try {
      const first = (() => {
        try {
          tf.tidy(() => tf.transpose(tf.tensor3d(VALUES, [ROWS, COLS, 1], 'int32'), [1, 0, 2])).dispose();
          return null;
        } catch (e) {
          return e as Error;
        }
      })();
      // (WebGPUKernelError by name: a test run may load lib/ twice, as CommonJS and as ES module.)
      expect(first?.name, 'the failing op').to.equal('WebGPUKernelError');
      expect(() => tf.tidy(() => tf.add(tf.ones([2000]), 1)).dispose(), 'a later op').to.throw(
        /unusable since GPU program TransposeProgram/,
      );
    } finally {
      setWorkarounds(true);
      await initBackend('webgpu');
    }
    const t = tf.tidy(() => tf.add(tf.ones([2000]), 1));
    expect((await t.data())[1999]).to.equal(2);
    t.dispose();
  });

  it('dataSync() explains that webgpu reads must be asynchronous here', function () {
    if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') this.skip(); // a browser can read synchronously
    const t = tf.tidy(() => tf.add(tf.ones([2000]), 1));
    expect(() => t.dataSync()).to.throw(/await tensor\.data\(\)/);
    t.dispose();
  });
});
