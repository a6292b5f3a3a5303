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
import { runGolden, uncovered, type GoldenCase } from './golden-run.js';
import { setFastWasmEnabled } from '../../lib/ops/index.js';

export type { GoldenCase, GoldenTensor } from './golden-run.js';
export { toTensor } from './golden-run.js';

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

/** Elementwise |got − want| ≤ atol + rtol·|want| (golden README: 1e-4 + 1e-3·|want|). */
export function expectClose(
  got: tf.Tensor | ArrayLike<number>,
  want: ArrayLike<number>,
  what: string,
  atol = 1e-4,
  rtol = 1e-3,
): void {
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
    expect.fail(
      `${what}: element ${worst} is ${g[worst]}, expected ${want[worst]} (tolerance ${atol} + ${rtol}·|want|)`,
    );
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
 * Backends every numerical test runs on: wasm (with the wasm fast path, lib/ops/wasm), wasm with
 * the fast path off ('wasm-portable': the ops' portable versions on the same backend), cpu, plus
 * the native one when it is installed (`SOFTMOE_TEST_BACKENDS=wasm` narrows the list). Suites whose
 * reads are all asynchronous also run on webgpu (see forEachBackend).
 */
export type TestBackend = BackendName | 'wasm-portable';
export const TEST_BACKENDS: TestBackend[] = (
  process.env.SOFTMOE_TEST_BACKENDS ??
  (nativeInstalled() ? 'tensorflow,wasm,wasm-portable,cpu' : 'wasm,wasm-portable,cpu')
).split(',') as TestBackend[];

/** The backend the test set-up starts on: $SOFTMOE_BACKEND, else the automatic choice without webgpu. */
export function initDefaultBackend(): Promise<unknown> {
  return initBackend(undefined, { exclude: ['webgpu'] });
}

/**
 * Environment variable: "1" makes a missing WebGPU adapter a test failure instead of a skip
 * (.ci/run sets it, having installed the software adapter).
 */
export const REQUIRE_WEBGPU_ENV = 'SOFTMOE_REQUIRE_WEBGPU';

/**
 * Switch to webgpu for a suite (before hook). Without an adapter the suite is skipped, with the
 * reason printed, unless $SOFTMOE_REQUIRE_WEBGPU=1, where that is an error.
 */
export async function useWebGPU(ctx: Mocha.Context): Promise<void> {
  ctx.timeout(120000);
  try {
    await initBackend('webgpu');
  } catch (e) {
    if (process.env[REQUIRE_WEBGPU_ENV] === '1') throw e;
    console.log(`      skipped on webgpu: ${(e as Error).message.split('\n')[0]}`);
    ctx.skip();
  }
}

/**
 * Run `body` once per backend, inside a describe named after it; restores the default after.
 * With `{ webgpu: true }` (for suites that read tensors only with `await data()`, e.g. through
 * goldenTests) webgpu is added, unless $SOFTMOE_TEST_BACKENDS lists the backends without it.
 */
/**
 * One test per golden case of `kind`: every output, routing decision and gradient of
 * test/helpers/golden-run.ts within tolerance on the active backend (async reads only).
 */
export function goldenTests(kind: GoldenCase['kind']): void {
  for (const c of loadGolden(kind)) {
    it(`golden ${c.name}: every output, routing decision and gradient of sum(y·r) within 1e-4 + 1e-3·|reference|`, async function () {
      const results = await runGolden(c);
      const bad = results
        .filter((r) => !r.ok)
        .map((r) => `${r.key} (${r.detail}, max |error| ${r.maxAbsError.toExponential(2)})`);
      expect(bad, `${c.name} on ${tf.getBackend()}`).to.deep.equal([]);
      expect(uncovered(c, results), 'reference entries not compared').to.deep.equal([]);
    });
  }
}

export function forEachBackend(body: (backend: TestBackend) => void, options: { webgpu?: boolean } = {}): void {
  const explicit = process.env.SOFTMOE_TEST_BACKENDS != null;
  const backends =
    options.webgpu && !explicit && !TEST_BACKENDS.includes('webgpu')
      ? [...TEST_BACKENDS, 'webgpu' as const]
      : TEST_BACKENDS;
  for (const backend of backends) {
    if (backend === 'webgpu' && !options.webgpu) continue; // this suite reads synchronously
    describe(`on ${backend}`, function () {
      let fastWasmWas = true;
      before(async function () {
        if (backend === 'webgpu') await useWebGPU(this);
        else await initBackend(backend === 'wasm-portable' ? 'wasm' : backend);
        if (backend === 'wasm-portable') fastWasmWas = setFastWasmEnabled(false);
      });
      after(async function () {
        if (backend === 'wasm-portable') setFastWasmEnabled(fastWasmWas);
        await initDefaultBackend();
      });
      body(backend);
    });
  }
}
