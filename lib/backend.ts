/**
 * Pick and report the TensorFlow.js backend.
 *
 * Order of preference (issue #2): the native TensorFlow backend from `@tensorflow/tfjs-node-gpu`,
 * then `@tensorflow/tfjs-node`, then WebAssembly (`@tensorflow/tfjs-backend-wasm`, the default that
 * works everywhere), then the pure-JS `cpu` backend. The native packages are optional dependencies:
 * they download libtensorflow at install time, which fails on machines without that network, so
 * nothing here may require them; they are loaded with a guarded dynamic `import()`.
 *
 * `SOFTMOE_BACKEND=tensorflow|wasm|cpu` forces one backend (an unknown value is an error).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { envVar } from './ops/env.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** Environment variable that forces a backend. */
export const BACKEND_ENV = 'SOFTMOE_BACKEND';

export interface BackendInfo {
  /** The active tfjs backend name (`tf.getBackend()`). */
  name: string;
  /** Which npm package provided the native backend, if it is the active one. */
  nativePackage: string | null;
  /** tfjs version. */
  tfjsVersion: string;
  /** Whether wasm SIMD / threads are on (wasm only). */
  wasmSimd: boolean | null;
  wasmThreads: boolean | null;
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

function parseBackendName(value: string, source: string): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`${source} = ${JSON.stringify(value)} is not a backend; expected one of ${BACKENDS.join(', ')}`);
}

/**
 * Select a backend and wait until it is ready. With no argument: `$SOFTMOE_BACKEND` if set, else
 * the first of tensorflow → wasm → cpu that initialises. A forced backend that fails is an error.
 */
export async function initBackend(name?: BackendName | string): Promise<BackendInfo> {
  const env = envVar(BACKEND_ENV);
  const forced = name != null ? parseBackendName(name, 'backend') : env ? parseBackendName(env, BACKEND_ENV) : null;
  const order: BackendName[] = forced ? [forced] : [...BACKENDS];
  const failures: string[] = [];
  for (const candidate of order) {
    if (candidate === 'tensorflow') {
      const pkg = await loadNative();
      if (pkg == null) {
        failures.push('tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded');
        continue;
      }
    }
    try {
      if (tf.getBackend() === candidate && tf.findBackend(candidate) != null) return backendInfo();
      const ok = await tf.setBackend(candidate);
      if (ok) {
        await tf.ready();
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
  };
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
