/**
 * Reference vectors in test/fixtures/golden: float64 values
 * from an independent PyTorch implementation, stored rounded to float32. See their README.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { initBackend, type BackendName } from '../../lib/backend.js';

export interface GoldenTensor {
  shape: number[];
  dtype: string;
  data: number[] | boolean[];
}
export interface GoldenCase {
  name: string;
  kind: 'soft_moe' | 'tokens_choice' | 'experts_choice';
  config: Record<string, unknown>;
  inputs: Record<string, GoldenTensor>;
  params: Record<string, GoldenTensor>;
  expected: Record<string, GoldenTensor | number>;
  grads: Record<string, GoldenTensor>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const GOLDEN_DIR = path.join(here, '..', 'fixtures', 'golden');

export function loadGolden(kind?: GoldenCase['kind']): GoldenCase[] {
  return fs
    .readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, f), 'utf8')) as GoldenCase)
    .filter((c) => kind == null || c.kind === kind);
}

/** A float32 tensor from a golden entry (booleans become 0/1). */
export function toTensor(t: GoldenTensor): tf.Tensor {
  const data = (t.data as Array<number | boolean>).map(Number);
  return tf.tensor(data, t.shape, 'float32');
}

/** Elementwise |got − want| ≤ atol + rtol·|want| (golden README: 1e-4 + 1e-3·|want|). */
export function expectClose(got: tf.Tensor | ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-4, rtol = 1e-3): void {
  const g = got instanceof tf.Tensor ? got.dataSync() : got;
  expect(g.length, `${what}: element count`).to.equal(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(g[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${g[worst]}, expected ${want[worst]} (tolerance ${atol} + ${rtol}·|want|)`);
  }
}

export function expectShape(t: tf.Tensor, shape: number[], what: string): void {
  expect(t.shape, `${what}: shape`).to.deep.equal(shape);
}

/** Whether a native TensorFlow binding is installed (an optional dependency; absent here). */
function nativeInstalled(): boolean {
  const require = createRequire(import.meta.url);
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      // not installed
    }
  }
  return false;
}

/**
 * Backends every numerical test runs on: wasm and cpu, plus the native one when it is installed
 * (`SOFTMOE_TEST_BACKENDS=wasm` narrows the list).
 */
export const TEST_BACKENDS: BackendName[] = (
  process.env.SOFTMOE_TEST_BACKENDS ?? (nativeInstalled() ? 'tensorflow,wasm,cpu' : 'wasm,cpu')
).split(',') as BackendName[];

/** Run `body` once per backend, inside a describe named after it; restores the default after. */
export function forEachBackend(body: (backend: BackendName) => void): void {
  for (const backend of TEST_BACKENDS) {
    describe(`on ${backend}`, function () {
      before(async function () {
        await initBackend(backend);
      });
      after(async function () {
        await initBackend();
      });
      body(backend);
    });
  }
}
