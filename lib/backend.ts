/**
 * Pick and report the TensorFlow.js backend.
 *
 * Order of preference (issues #2, #11): the native TensorFlow backend from
 * `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`; then WebGPU on a hardware adapter
 * (`@tensorflow/tfjs-backend-webgpu`, with Dawn from the npm package `webgpu` in Node and
 * `navigator.gpu` in a browser; a software or fallback adapter is skipped, and the reason kept in
 * `backendInfo().skipped`); then WebAssembly (`@tensorflow/tfjs-backend-wasm`, the default that
 * works everywhere); then the pure-JS `cpu` backend. The native and WebGPU packages are optional
 * dependencies (libtensorflow is downloaded at install time, which fails on machines without that
 * network), so nothing here may require them: they are loaded with a guarded dynamic `import()`.
 *
 * `SOFTMOE_BACKEND=tensorflow|webgpu|wasm|cpu` forces one backend (an unknown value is an error);
 * a forced `webgpu` also accepts a software adapter (Dawn's OpenGL ES backend on Mesa llvmpipe in
 * Node without a GPU). On webgpu, reads must be asynchronous (`await t.data()`): in Node
 * `dataSync()` cannot work (tfjs reads synchronously through OffscreenCanvas).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { adapterName, registerWebGPU, webgpuAdapter, type GPULike, type WebGPUAdapterReport } from './webgpu/device.js';
import { envVar, isNode } from './ops/env.js';

/**
 * The backends `initBackend` can select: native TensorFlow (tfjs-node[-gpu]), WebGPU, WebAssembly,
 * plain JavaScript, or (forced, in browsers) WebGL.
 */
export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu' | 'webgl';
/** The automatic order. */
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];
/** Every backend that can be forced: also `webgl` (browsers only; tfjs's WebGL backend). */
export const KNOWN_BACKENDS: readonly BackendName[] = [...BACKENDS, 'webgl'];

/** Environment variable that forces a backend. */
export const BACKEND_ENV = 'SOFTMOE_BACKEND';

/** What {@link initBackend} and {@link backendInfo} report about the active backend. */
export interface BackendInfo {
  /** The active tfjs backend name (`tf.getBackend()`). */
  name: string;
  /** Which npm package provided the native backend, if it is the active one. */
  nativePackage: string | null;
  /** tfjs version. */
  tfjsVersion: string;
  /** Whether wasm SIMD / threads are on (wasm only). */
  wasmSimd: boolean | null;
  /** Whether wasm threads are on (null for other backends). */
  wasmThreads: boolean | null;
  /** The GPU adapter behind the webgpu backend (null on other backends). */
  webgpu: WebGPUAdapterReport | null;
  /** Why the automatic choice passed over backends before the active one (empty when forced). */
  skipped: string[];
}

let nativePackage: string | null = null;
let nativeTried = false;

/** Try to load a native backend; returns the package name that registered it, or null. */
async function loadNative(): Promise<string | null> {
  if (nativeTried) return nativePackage;
  nativeTried = true;
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow') != null || tf.engine().registryFactory['tensorflow'] != null) {
        nativePackage = pkg;
        return pkg;
      }
    } catch {
      // Not installed (the usual case here) or libtensorflow missing: try the next one.
    }
  }
  return null;
}

let skipped: string[] = [];

/**
 * Register the webgpu backend: on `navigator.gpu` when the page has it, else on Dawn in Node
 * (lib/webgpu/node.ts, imported only here so that a browser bundle leaves it out).
 */
async function loadWebGPU(allowSoftware: boolean): Promise<void> {
  const gpu = (globalThis as { navigator?: { gpu?: GPULike } }).navigator?.gpu;
  if (gpu != null && !isNode()) {
    await registerWebGPU(gpu, { allowSoftware, source: 'navigator.gpu', featureLevels: ['core', 'compatibility'] });
    return;
  }
  if (!isNode()) throw new Error('this browser has no navigator.gpu (WebGPU off, or not a secure context)');
  const nodeOnly = './webgpu/node.js';
  const { registerDawn } = (await import(/* @vite-ignore */ nodeOnly)) as {
    registerDawn(allowSoftware: boolean): Promise<WebGPUAdapterReport>;
  };
  await registerDawn(allowSoftware);
}

function parseBackendName(value: string, source: string): BackendName {
  if ((KNOWN_BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(
    `${source} = ${JSON.stringify(value)} is not a backend; expected one of ${KNOWN_BACKENDS.join(', ')}`,
  );
}

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Backends the automatic choice must not pick (test set-up: code with synchronous reads). */
  exclude?: readonly BackendName[];
}

/**
 * Select a backend and wait until it is ready. With no name: `$SOFTMOE_BACKEND` if set, else
 * the first of tensorflow → webgpu (hardware adapter only) → wasm → cpu that initialises. A
 * forced backend that fails is an error.
 *
 * @param name a {@link BackendName} to force one; default `$SOFTMOE_BACKEND`, else the first that works.
 * @returns the active backend, its package and the wasm SIMD / threads flags.
 * @throws Error if `name` (or `$SOFTMOE_BACKEND`) is not a backend name, or a forced backend fails to initialise.
 *
 * @example
 * ```ts
 * const info = await initBackend();          // or initBackend('wasm')
 * console.log(info.name, backendInfo().wasmSimd);
 * ```
 */
export async function initBackend(name?: BackendName | string, options: InitBackendOptions = {}): Promise<BackendInfo> {
  const env = envVar(BACKEND_ENV);
  const forced = name != null ? parseBackendName(name, 'backend') : env ? parseBackendName(env, BACKEND_ENV) : null;
  const order: BackendName[] = forced ? [forced] : BACKENDS.filter((b) => !options.exclude?.includes(b));
  const failures: string[] = [];
  for (const candidate of order) {
    if (candidate === 'tensorflow') {
      const pkg = await loadNative();
      if (pkg == null) {
        failures.push('tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded');
        continue;
      }
    }
    if (candidate === 'webgpu') {
      // Registered afresh each time: a new device clears a GPU fault of the previous one.
      try {
        await loadWebGPU(forced != null);
        skipped = forced ? [] : [...failures];
        return backendInfo();
      } catch (e) {
        if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
        failures.push(`webgpu: ${(e as Error).message}`);
        continue;
      }
    }
    try {
      if (tf.getBackend() === candidate && tf.findBackend(candidate) != null) return backendInfo();
      const ok = await tf.setBackend(candidate);
      if (ok) {
        await tf.ready();
        skipped = forced ? [] : [...failures];
        return backendInfo();
      }
      failures.push(`${candidate}: setBackend returned false`);
    } catch (e) {
      failures.push(`${candidate}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no tfjs backend could be initialised (${failures.join('; ')})`);
}

/** Report the active backend. */
export function backendInfo(): BackendInfo {
  const name = tf.getBackend();
  const isWasm = name === 'wasm';
  return {
    name,
    nativePackage: name === 'tensorflow' ? nativePackage : null,
    tfjsVersion: tf.version.tfjs,
    wasmSimd: isWasm ? readFlag('WASM_HAS_SIMD_SUPPORT') : null,
    wasmThreads: isWasm ? readFlag('WASM_HAS_MULTITHREAD_SUPPORT') : null,
    webgpu: name === 'webgpu' ? webgpuAdapter() : null,
    skipped: [...skipped],
  };
}

/** One line naming the backend and, on webgpu, its adapter (for logs and results files). */
export function describeBackend(info: BackendInfo = backendInfo()): string {
  if (info.name === 'wasm') return `wasm (SIMD ${info.wasmSimd}, threads ${info.wasmThreads})`;
  if (info.name === 'webgpu' && info.webgpu)
    return `webgpu on ${adapterName(info.webgpu)}${info.webgpu.software ? ', a software adapter' : ''}`;
  if (info.name === 'tensorflow') return `tensorflow (${info.nativePackage})`;
  return info.name;
}

/** A flag the wasm backend evaluated while it initialised (null when it was never evaluated). */
function readFlag(flag: string): boolean | null {
  try {
    return Boolean(tf.env().getBool(flag));
  } catch {
    return null;
  }
}

/** The active backend's name. */
export function activeBackend(): string {
  return tf.getBackend();
}

export { tf };
