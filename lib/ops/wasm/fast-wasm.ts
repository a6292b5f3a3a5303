/**
 * The wasm fast path: an accelerator plug-in (lib/ops/accelerators.ts) for the tfjs wasm
 * backend. It binds the SIMD kernels of ./wasm-kernels.ts to tensors, registers them as tfjs
 * kernels for the 'wasm' backend so that the engine owns every output (tidy, dispose and memory
 * accounting work as for built-in ops), and supplies fast versions of the ops `product`,
 * `sumRows`, `transpose`, `gelu`, `l2NormalizeRows`, `softmax` and `layerNorm`. The library
 * never calls this file directly: the ops ask the accelerator list, and fall back to their
 * portable versions (public tfjs ops) when this plug-in is off or declines a call.
 *
 * This reaches into the backend's internals — its heap (`wasm.asm.memory`), the heap offset of
 * each tensor (`dataIdMap`), output allocation (`makeOutput`) — which are not public API. It is
 * therefore pinned: it switches on only for tfjs and tfjs-backend-wasm exactly
 * {@link PINNED_TFJS_VERSION}, when those internals have the expected shape, and after a
 * self-check of the kernels against a plain JavaScript loop on the live heap. Otherwise every
 * op takes its portable path, which the tests check against the same golden vectors.
 *
 * Switches (each documented at its declaration):
 *  - `SOFTMOE_FAST_WASM=0` (or `false`), or `setFastWasmEnabled(false)`: the whole fast path off.
 *  - `SOFTMOE_FAST_WASM_SHARE_CLONES=0`, or `setFastWasmSharedClones(false)`: the fast kernels on,
 *    but tfjs' own wasm `Identity` kernel left in place (see `installSharedClones`).
 *  - `disposeFastWasm()`: off, tfjs' `Identity` kernel restored, this plug-in's kernels
 *    unregistered; `setFastWasmEnabled(true)` binds afresh.
 */
import * as tf from '@tensorflow/tfjs';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import type { FastOps, Accelerator } from '../accelerators.js';
import { customOp } from '../custom-grad.js';
import { envVar } from '../env.js';
import { GELU_C, GELU_CUBIC } from '../gelu-constants.js';
import type { ProductOptions } from '../matmul.js';
import { reducePermutation } from '../permutation.js';
import { isWasmMemory, type WasmMemory } from './wasm-asm.js';
import { GEMM_ACCUMULATE, GEMM_BIAS, instantiateKernels, type WasmKernelExports } from './wasm-kernels.js';

/** The only tfjs version whose wasm backend internals this module has been checked against. */
export const PINNED_TFJS_VERSION = '4.22.0';

/** Environment variable that disables the fast path ("0" or "false"). */
export const FAST_WASM_ENV = 'SOFTMOE_FAST_WASM';

/**
 * Environment variable that keeps tfjs' own wasm `Identity` kernel ("0" or "false"), so that
 * clones copy their data as tfjs does, while the fast kernels stay on.
 */
export const FAST_WASM_SHARE_CLONES_ENV = 'SOFTMOE_FAST_WASM_SHARE_CLONES';

/** The parts of tfjs-backend-wasm's BackendWasm used here (dist/backend_wasm.d.ts, 4.22.0). */
interface WasmBackendInternals {
  wasm: { asm?: { memory?: unknown } };
  dataIdMap: { get(dataId: object): { memoryOffset: number; dtype: string } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

interface Binding {
  backend: WasmBackendInternals;
  kernels: WasmKernelExports;
}

function switchedOff(value: string | undefined): boolean {
  return ['0', 'false'].includes((value ?? '').toLowerCase());
}

let enabled = !switchedOff(envVar(FAST_WASM_ENV));
let shareClones = !switchedOff(envVar(FAST_WASM_SHARE_CLONES_ENV));
let binding: Binding | null = null;
/** Backends for which binding failed, with the reason (reported once). */
const failures = new WeakMap<object, string>();
let lastFailure: string | null = null;

/**
 * Turn the fast path on or off (for tests and benchmarks). Off also restores tfjs' own `Identity`
 * kernel; on binds at once when the wasm backend is active (else at its first op there).
 * Returns the previous setting.
 */
export function setFastWasmEnabled(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  if (on) fastWasm();
  else restoreIdentity();
  return previous;
}

/**
 * Share the data of clones on the fast path (replace tfjs' wasm `Identity` kernel; see
 * `installSharedClones`) or not. Off restores tfjs' kernel at once. Returns the previous setting.
 */
export function setFastWasmSharedClones(on: boolean): boolean {
  const previous = shareClones;
  shareClones = on;
  if (on) fastWasm();
  else restoreIdentity();
  return previous;
}

/**
 * Turn the fast path off and release what it changed in tfjs: tfjs' own `Identity` kernel is
 * registered again and this plug-in's kernels are unregistered. Gradients recorded with fast ops
 * and not yet computed cannot run after this. `setFastWasmEnabled(true)` binds afresh.
 */
export function disposeFastWasm(): void {
  setFastWasmEnabled(false);
  unregisterKernels();
  binding = null;
}

/** Whether the fast path is on for the active backend (else why not), and whether clones share data. */
export function fastWasmStatus(): {
  /** Whether the wasm fast path is on. */
  active: boolean;
  /** Why it is off (null when on). */
  reason: string | null;
  /** Whether clones share data (the `Identity` replacement is installed). */
  sharedClones: boolean;
} {
  const active = fastWasm() != null;
  const sharedClones = identity != null;
  if (active) return { active, reason: null, sharedClones };
  if (!enabled)
    return {
      active,
      reason: `disabled (${FAST_WASM_ENV}, setFastWasmEnabled(false) or disposeFastWasm())`,
      sharedClones,
    };
  if (tf.getBackend() !== 'wasm') return { active, reason: `backend is ${tf.getBackend()}, not wasm`, sharedClones };
  return { active, reason: lastFailure, sharedClones };
}

function internalsProblem(backend: unknown): string | null {
  if (tf.version.tfjs !== PINNED_TFJS_VERSION) return `tfjs ${tf.version.tfjs} ≠ pinned ${PINNED_TFJS_VERSION}`;
  if (version_wasm !== PINNED_TFJS_VERSION) return `tfjs-backend-wasm ${version_wasm} ≠ pinned ${PINNED_TFJS_VERSION}`;
  const b = backend as Partial<WasmBackendInternals>;
  if (!isWasmMemory(b.wasm?.asm?.memory)) return 'wasm backend has no wasm.asm.memory';
  if (
    typeof b.dataIdMap?.get !== 'function' ||
    typeof b.makeOutput !== 'function' ||
    typeof b.disposeData !== 'function' ||
    typeof b.incRef !== 'function'
  ) {
    return 'wasm backend lacks dataIdMap/makeOutput/disposeData/incRef';
  }
  return null;
}

/** Instantiate and self-check the kernels on `backend`; the binding, or null with the reason recorded. */
function bind(backend: WasmBackendInternals): Binding | null {
  if (failures.has(backend)) return null;
  let candidate: Binding | null = null;
  let reason = internalsProblem(backend);
  if (reason == null) {
    try {
      candidate = { backend, kernels: instantiateKernels(backend.wasm.asm!.memory as WasmMemory) };
      reason = selfCheck(candidate);
    } catch (e) {
      reason = `could not instantiate the kernels: ${(e as Error).message}`;
    }
  }
  if (reason != null || candidate == null) {
    failures.set(backend, reason ?? 'unknown');
    lastFailure = reason;
    console.warn(`soft-moe: fast wasm kernels off, portable path used (${reason})`);
    return null;
  }
  registerKernels();
  return candidate;
}

/**
 * The binding for the active backend, or null when the fast path is off or unavailable. For
 * this plug-in and its tests only: library code calls the ops (lib/ops/accelerators.ts).
 */
export function fastWasm(): Binding | null {
  if (!enabled || tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmBackendInternals;
  if (binding?.backend !== backend) {
    binding = bind(backend);
    if (binding == null) return null;
  }
  if (shareClones && identity == null) installSharedClones();
  return binding;
}

/** Heap byte offset of a tensor's data. */
function offsetOf(b: Binding, t: tf.TensorInfo): number {
  const entry = b.backend.dataIdMap.get(t.dataId);
  if (entry == null) throw new Error('fast-wasm: tensor data is not on the wasm backend');
  return entry.memoryOffset;
}

/** Run each kernel on the live heap against a plain loop; returns a problem or null. */
function selfCheck(b: Binding): string | null {
  const m = 5;
  const k = 3;
  const n = 9;
  const aVals = Float32Array.from({ length: m * k }, (_, i) => ((i * 7) % 11) / 8 - 0.5);
  const bVals = Float32Array.from({ length: k * n }, (_, i) => ((i * 5) % 13) / 8 - 0.75);
  const biasVals = Float32Array.from({ length: n }, (_, i) => i / 4);
  const want = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = biasVals[j];
      for (let q = 0; q < k; q++) s += aVals[i * k + q] * bVals[q * n + j];
      want[i * n + j] = s;
    }
  }
  const a = b.backend.makeOutput([m, k], 'float32');
  const bt = b.backend.makeOutput([k, n], 'float32');
  const bias = b.backend.makeOutput([n], 'float32');
  const c = b.backend.makeOutput([m, n], 'float32');
  const tr = b.backend.makeOutput([k, n], 'float32');
  try {
    const heap = () => (b.backend.wasm.asm!.memory as WasmMemory).buffer;
    new Float32Array(heap(), offsetOf(b, a), m * k).set(aVals);
    new Float32Array(heap(), offsetOf(b, bt), k * n).set(bVals);
    new Float32Array(heap(), offsetOf(b, bias), n).set(biasVals);
    b.kernels.gemm(
      offsetOf(b, a),
      4 * k,
      4,
      offsetOf(b, bt),
      4 * n,
      offsetOf(b, c),
      4 * n,
      m,
      n,
      k,
      offsetOf(b, bias),
      GEMM_BIAS,
    );
    const got = new Float32Array(heap(), offsetOf(b, c), m * n);
    for (let i = 0; i < m * n; i++) {
      if (Math.abs(got[i] - want[i]) > 1e-5) return `self-check: gemm element ${i} is ${got[i]}, expected ${want[i]}`;
    }
    b.kernels.transpose(offsetOf(b, a), offsetOf(b, tr), m, k);
    const t = new Float32Array(heap(), offsetOf(b, tr), m * k);
    for (let i = 0; i < m; i++) {
      for (let q = 0; q < k; q++) {
        if (t[q * m + i] !== aVals[i * k + q]) return `self-check: transpose element (${i}, ${q}) wrong`;
      }
    }
    return null;
  } finally {
    for (const x of [a, bt, bias, c, tr]) b.backend.disposeData(x.dataId);
  }
}

// ---------------------------------------------------------------------------------------------
// tfjs kernels (backend 'wasm'). Each is called through tf.engine().runKernel.

const GEMM_KERNEL = 'SoftMoEWasmGemm';
const TRANSPOSE_KERNEL = 'SoftMoEWasmTranspose';
const PERMUTE_BLOCKS_KERNEL = 'SoftMoEWasmPermuteBlocks';
const COLSUM_KERNEL = 'SoftMoEWasmColSum';
const GELU_KERNEL = 'SoftMoEWasmGelu';
const GELU_GRAD_KERNEL = 'SoftMoEWasmGeluGrad';
const L2NORM_KERNEL = 'SoftMoEWasmL2Norm';
const L2NORM_GRAD_KERNEL = 'SoftMoEWasmL2NormGrad';
const SOFTMAX_GRAD_KERNEL = 'SoftMoEWasmSoftmaxGrad';
const LAYER_NORM_KERNEL = 'SoftMoEWasmLayerNorm';
const LAYER_NORM_GRAD_KERNEL = 'SoftMoEWasmLayerNormGrad';

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

function bindingFor(backend: unknown): Binding {
  if (binding == null || binding.backend !== backend)
    throw new Error('fast-wasm: kernel called on a backend that is not bound');
  return binding;
}

/**
 * C [B, m, n] = op(A)·op(B) (+ bias): A [B, m, k] (or [B, k, m] with transposeA), B [Bb, k, n]
 * (or [Bb, n, k] with transposeB), Bb ∈ {1, B}; bias [Bbias, n], Bbias ∈ {1, B}.
 * A transposed is read with strides; A·Bᵀ runs as dot products of rows (gemmNT, measured faster
 * than transposing B first); only Aᵀ·Bᵀ, which no op here uses, transposes B into a scratch
 * buffer.
 */
function gemmKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { a, b, bias } = inputs;
  const transposeA = Boolean(attrs?.transposeA);
  const transposeB = Boolean(attrs?.transposeB);
  const [batch, a1, a2] = a.shape;
  const [bBatch, b1, b2] = b.shape;
  const m = transposeA ? a2 : a1;
  const k = transposeA ? a1 : a2;
  const n = transposeB ? b1 : b2;
  const out = bnd.backend.makeOutput([batch, m, n], 'float32');
  const biasPtr0 = bias ? offsetOf(bnd, bias) : 0;
  const biasStep0 = bias && bias.shape[0] === batch && batch > 1 ? 4 * n : 0;
  if (transposeB && !transposeA) {
    // A·Bᵀ as dot products of rows: Bᵀ is never materialised (gemmNT).
    const [aPtr, bPtr, cPtr] = [offsetOf(bnd, a), offsetOf(bnd, b), offsetOf(bnd, out)];
    const bStep = bBatch === batch && batch > 1 ? 4 * n * k : 0;
    for (let i = 0; i < batch; i++) {
      bnd.kernels.gemmNT(
        aPtr + 4 * i * m * k,
        4 * k,
        bPtr + i * bStep,
        4 * k,
        cPtr + 4 * i * m * n,
        4 * n,
        m,
        n,
        k,
        biasPtr0 + i * biasStep0,
        bias ? GEMM_BIAS : 0,
      );
    }
    return out;
  }
  let bPtr = offsetOf(bnd, b);
  let scratch: tf.TensorInfo | null = null;
  if (transposeB) {
    scratch = bnd.backend.makeOutput([bBatch, k, n], 'float32');
    const src = offsetOf(bnd, b);
    const dst = offsetOf(bnd, scratch);
    for (let i = 0; i < bBatch; i++) bnd.kernels.transpose(src + 4 * i * n * k, dst + 4 * i * n * k, n, k);
    bPtr = dst;
  }
  const aPtr = offsetOf(bnd, a);
  const cPtr = offsetOf(bnd, out);
  const biasPtr = bias ? offsetOf(bnd, bias) : 0;
  const biasStep = bias && bias.shape[0] === batch && batch > 1 ? 4 * n : 0;
  const bStep = bBatch === batch && batch > 1 ? 4 * k * n : 0;
  const sAi = transposeA ? 4 : 4 * k;
  const sAk = transposeA ? 4 * m : 4;
  const kc = reductionBlock(n);
  for (let i = 0; i < batch; i++) {
    const aBase = aPtr + 4 * i * m * k;
    const bBase = bPtr + i * bStep;
    // Blocks of kc rows of B (kc·n·4 bytes ≈ 128 KB, L2-resident while every row block of A
    // passes over it); the bias enters with the first block, later blocks accumulate into C.
    for (let k0 = 0; k0 === 0 || k0 < k; k0 += kc) {
      const flags = k0 === 0 ? (bias ? GEMM_BIAS : 0) : GEMM_ACCUMULATE;
      bnd.kernels.gemm(
        aBase + k0 * sAk,
        sAi,
        sAk,
        bBase + 4 * k0 * n,
        4 * n,
        cPtr + 4 * i * m * n,
        4 * n,
        m,
        n,
        Math.min(kc, k - k0),
        biasPtr + i * biasStep,
        flags,
      );
    }
  }
  if (scratch) bnd.backend.disposeData(scratch.dataId);
  return out;
}

/**
 * Rows of B per pass of the product: without blocking, a product with many rows of B (e.g. a
 * weight gradient Aᵀ·dC over 2048 tokens) streams all of B from L3 once per 4 rows of C; with
 * ~128 KB blocks of B it measured over twice as fast (min of 20 runs, loaded machine).
 */
function reductionBlock(n: number): number {
  const rows = Math.floor(32768 / Math.max(1, n));
  return Math.max(64, Math.min(512, 2 ** Math.floor(Math.log2(Math.max(1, rows)))));
}

/** [B, R, C] → [B, C, R]. */
function transposeKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { x } = inputs;
  const [batch, rows, cols] = x.shape;
  const out = bnd.backend.makeOutput([batch, cols, rows], 'float32');
  const src = offsetOf(bnd, x);
  const dst = offsetOf(bnd, out);
  for (let i = 0; i < batch; i++)
    bnd.kernels.transpose(src + 4 * i * rows * cols, dst + 4 * i * rows * cols, rows, cols);
  return out;
}

/** [A, B, c] → [B, A, c]: contiguous blocks of c elements change places. */
function permuteBlocksKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { x } = inputs;
  const [n1, n2, c] = x.shape;
  const out = bnd.backend.makeOutput([n2, n1, c], 'float32');
  const bytes = 4 * c;
  bnd.kernels.copyBlocks(offsetOf(bnd, x), offsetOf(bnd, out), n1, n2, n2 * bytes, bytes, bytes, n1 * bytes, bytes);
  return out;
}

/** [B, R, C] → [B, C]: sums over R. */
function colsumKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { x } = inputs;
  const [batch, rows, cols] = x.shape;
  const out = bnd.backend.makeOutput([batch, cols], 'float32');
  const src = offsetOf(bnd, x);
  const dst = offsetOf(bnd, out);
  for (let i = 0; i < batch; i++) bnd.kernels.colsum(src + 4 * i * rows * cols, dst + 4 * i * cols, rows, cols, 0);
  return out;
}

/** The count % 4 trailing elements of the GELU kernels, in JavaScript on the heap. */
function geluTail(bnd: Binding, count: number, x: number, y: number | null, s: number, dy: number, dx: number): void {
  const heap = new Float32Array((bnd.backend.wasm.asm!.memory as WasmMemory).buffer);
  for (let i = count - (count % 4); i < count; i++) {
    const v = heap[x / 4 + i];
    if (y != null) {
      const u = 2 * GELU_C * (v + GELU_CUBIC * v * v * v);
      const sig = 1 / (1 + Math.exp(-u));
      heap[s / 4 + i] = sig;
      heap[y / 4 + i] = v * sig;
    } else {
      const sig = heap[s / 4 + i];
      heap[dx / 4 + i] = heap[dy / 4 + i] * (sig + v * sig * (1 - sig) * 2 * GELU_C * (1 + 3 * GELU_CUBIC * v * v));
    }
  }
}

/** x → [y, s]: GELU (tanh form) and σ(u), kept for the backward pass. */
function geluKernel({ inputs, backend }: KernelArgs): tf.TensorInfo[] {
  const bnd = bindingFor(backend);
  const { x } = inputs;
  const count = x.shape.reduce((p, q) => p * q, 1);
  const y = bnd.backend.makeOutput(x.shape, 'float32');
  const s = bnd.backend.makeOutput(x.shape, 'float32');
  const [px, py, ps] = [offsetOf(bnd, x), offsetOf(bnd, y), offsetOf(bnd, s)];
  bnd.kernels.gelu(px, py, ps, count);
  geluTail(bnd, count, px, py, ps, 0, 0);
  return [y, s];
}

/** (x, s, dy) → dx for GELU. */
function geluGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { x, s, dy } = inputs;
  const count = x.shape.reduce((p, q) => p * q, 1);
  const dx = bnd.backend.makeOutput(x.shape, 'float32');
  const [px, ps, pdy, pdx] = [offsetOf(bnd, x), offsetOf(bnd, s), offsetOf(bnd, dy), offsetOf(bnd, dx)];
  bnd.kernels.geluGrad(px, ps, pdy, pdx, count);
  geluTail(bnd, count, px, null, ps, pdy, pdx);
  return dx;
}

/** x [..., c] → [y, s]: rows scaled to unit norm (y = x·s, s = 1/√(Σx² + eps), s [...]). */
function l2normKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const bnd = bindingFor(backend);
  const { x } = inputs;
  const cols = x.shape[x.shape.length - 1];
  const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
  const y = bnd.backend.makeOutput(x.shape, 'float32');
  const s = bnd.backend.makeOutput(x.shape.slice(0, -1), 'float32');
  bnd.kernels.l2norm(offsetOf(bnd, x), offsetOf(bnd, y), offsetOf(bnd, s), rows, cols, Number(attrs?.eps));
  return [y, s];
}

/** (x, s, dy) → dx of the row normalisation. */
function l2normGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { x, s, dy } = inputs;
  const cols = x.shape[x.shape.length - 1];
  const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
  const dx = bnd.backend.makeOutput(x.shape, 'float32');
  bnd.kernels.l2normGrad(offsetOf(bnd, x), offsetOf(bnd, s), offsetOf(bnd, dy), offsetOf(bnd, dx), rows, cols);
  return dx;
}

/** (y, dy) → dx of a softmax over the last axis. */
function softmaxGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const bnd = bindingFor(backend);
  const { y, dy } = inputs;
  const cols = y.shape[y.shape.length - 1];
  const rows = y.shape.slice(0, -1).reduce((p, q) => p * q, 1);
  const dx = bnd.backend.makeOutput(y.shape, 'float32');
  bnd.kernels.softmaxGrad(offsetOf(bnd, y), offsetOf(bnd, dy), offsetOf(bnd, dx), rows, cols);
  return dx;
}

/** (x [rows, d], scale [d], bias [d]) → [y, x̂, rstd [rows]]. */
function layerNormKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const bnd = bindingFor(backend);
  const { x, scale, bias } = inputs;
  const [rows, cols] = x.shape;
  const y = bnd.backend.makeOutput([rows, cols], 'float32');
  const xhat = bnd.backend.makeOutput([rows, cols], 'float32');
  const rstd = bnd.backend.makeOutput([rows], 'float32');
  bnd.kernels.layerNorm(
    offsetOf(bnd, x),
    offsetOf(bnd, scale),
    offsetOf(bnd, bias),
    offsetOf(bnd, y),
    offsetOf(bnd, xhat),
    offsetOf(bnd, rstd),
    rows,
    cols,
    Number(attrs?.eps),
  );
  return [y, xhat, rstd];
}

/** (dy, x̂, rstd, scale) → [dx, dscale, dbias]. */
function layerNormGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo[] {
  const bnd = bindingFor(backend);
  const { dy, xhat, rstd, scale } = inputs;
  const [rows, cols] = dy.shape;
  const dx = bnd.backend.makeOutput([rows, cols], 'float32');
  const dscale = bnd.backend.makeOutput([cols], 'float32');
  const dbias = bnd.backend.makeOutput([cols], 'float32');
  bnd.kernels.layerNormGrad(
    offsetOf(bnd, dy),
    offsetOf(bnd, xhat),
    offsetOf(bnd, rstd),
    offsetOf(bnd, scale),
    offsetOf(bnd, dx),
    offsetOf(bnd, dscale),
    offsetOf(bnd, dbias),
    rows,
    cols,
  );
  return [dx, dscale, dbias];
}

// ---------------------------------------------------------------------------------------------
// Shared clones: the `Identity` kernel override.

/**
 * tfjs keeps a copy of every tensor a gradient needs (`save()` in custom gradients, and the
 * inputs/outputs of built-in ops while a tape records): `engine.clone` runs the Identity kernel,
 * which on wasm 4.22 copies the data (kernels/Identity.js: `outVals.set(inVals)`) — 40 copies in
 * one Soft MoE training step here. Tensors are immutable (no tfjs API writes into existing data;
 * Variable.assign swaps the data id), so the clone can share the data and count a reference, as
 * tfjs' own cpu backend does (tfjs-backend-cpu kernels/Identity.js).
 *
 * tfjs has one kernel per (name, backend) for the whole process, so this replaces the wasm
 * `Identity` for every user of tfjs in it. It is therefore installed only while the fast path is
 * bound and `shareClones` is on (`SOFTMOE_FAST_WASM_SHARE_CLONES`), and tfjs' own kernel is
 * registered again by `setFastWasmEnabled(false)`, `setFastWasmSharedClones(false)` and
 * `disposeFastWasm()`. Strings, and tensors of another wasm backend instance, go to tfjs' kernel.
 */
let identity: { original: tf.KernelConfig; replacement: tf.KernelConfig } | null = null;

function installSharedClones(): void {
  const original = tf.getKernel('Identity', 'wasm');
  if (original == null || identity != null) return;
  const shared = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs;
    if (binding != null && args.backend === binding.backend && x.dtype !== 'string') {
      binding.backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }
    return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  };
  const replacement: tf.KernelConfig = { ...original, kernelFunc: shared as unknown as tf.KernelFunc };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel(replacement);
  identity = { original, replacement };
}

/** Register tfjs' own `Identity` again (unless someone replaced ours since: theirs stays). */
function restoreIdentity(): void {
  if (identity == null) return;
  if (tf.getKernel('Identity', 'wasm') === identity.replacement) {
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel(identity.original);
  }
  identity = null;
}

const KERNELS: Array<[string, (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]]> = [
  [GEMM_KERNEL, gemmKernel],
  [TRANSPOSE_KERNEL, transposeKernel],
  [PERMUTE_BLOCKS_KERNEL, permuteBlocksKernel],
  [COLSUM_KERNEL, colsumKernel],
  [GELU_KERNEL, geluKernel],
  [GELU_GRAD_KERNEL, geluGradKernel],
  [L2NORM_KERNEL, l2normKernel],
  [L2NORM_GRAD_KERNEL, l2normGradKernel],
  [SOFTMAX_GRAD_KERNEL, softmaxGradKernel],
  [LAYER_NORM_KERNEL, layerNormKernel],
  [LAYER_NORM_GRAD_KERNEL, layerNormGradKernel],
];

function registerKernels(): void {
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (tf.getKernel(kernelName, 'wasm') == null) {
      tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
    }
  }
}

function unregisterKernels(): void {
  for (const [kernelName] of KERNELS)
    if (tf.getKernel(kernelName, 'wasm') != null) tf.unregisterKernel(kernelName, 'wasm');
}

// ---------------------------------------------------------------------------------------------
// Tensor-level entry points. Each requires the fast path (`fastWasm()` not null); inputs must
// be float32 and shaped as documented; no gradients (wrap in a custom gradient).

function requireFloat32(...ts: tf.Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`fast-wasm: expected float32 tensors, got ${t.dtype}`);
}

/**
 * Batched product op(A)·op(B) (+ bias) on the fast path. a, b rank 3 (see gemmKernel); bias
 * [1 or B, n]. Shapes are checked here.
 */
export function wasmGemm(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  options: { transposeA?: boolean; transposeB?: boolean; bias?: tf.Tensor2D } = {},
): tf.Tensor3D {
  const { transposeA = false, transposeB = false, bias } = options;
  requireFloat32(a, b, ...(bias ? [bias] : []));
  const [batch, a1, a2] = a.shape;
  const [bBatch, b1, b2] = b.shape;
  const k = transposeA ? a1 : a2;
  const kb = transposeB ? b2 : b1;
  const n = transposeB ? b1 : b2;
  if (a.rank !== 3 || b.rank !== 3 || k !== kb || (bBatch !== batch && bBatch !== 1)) {
    throw new Error(
      `wasmGemm: shapes [${a.shape.join(', ')}]${transposeA ? 'ᵀ' : ''}·[${b.shape.join(', ')}]${transposeB ? 'ᵀ' : ''} do not match`,
    );
  }
  if (bias && (bias.rank !== 2 || bias.shape[1] !== n || (bias.shape[0] !== 1 && bias.shape[0] !== batch))) {
    throw new Error(`wasmGemm: bias must be [1 or ${batch}, ${n}], got [${bias.shape.join(', ')}]`);
  }
  const inputs: tf.NamedTensorMap = bias ? { a, b, bias } : { a, b };
  return tf.engine().runKernel(GEMM_KERNEL, inputs, { transposeA, transposeB }) as tf.Tensor3D;
}

/** [B, R, C] → [B, C, R] on the fast path. */
export function wasmTransposeLast2(x: tf.Tensor3D): tf.Tensor3D {
  requireFloat32(x);
  return tf.engine().runKernel(TRANSPOSE_KERNEL, { x }) as tf.Tensor3D;
}

/** [A, B, c] → [B, A, c] on the fast path. */
export function wasmPermuteBlocks(x: tf.Tensor3D): tf.Tensor3D {
  requireFloat32(x);
  return tf.engine().runKernel(PERMUTE_BLOCKS_KERNEL, { x }) as tf.Tensor3D;
}

/** [B, R, C] → [B, C] (sum over R) on the fast path. */
export function wasmColSum(x: tf.Tensor3D): tf.Tensor2D {
  requireFloat32(x);
  return tf.engine().runKernel(COLSUM_KERNEL, { x }) as tf.Tensor2D;
}

/** GELU (tanh form) on the fast path: returns [y, σ(u)]. */
export function wasmGelu(x: tf.Tensor): [tf.Tensor, tf.Tensor] {
  requireFloat32(x);
  return tf.engine().runKernel(GELU_KERNEL, { x }) as unknown as [tf.Tensor, tf.Tensor];
}

/** The gradient of GELU on the fast path, from x, σ(u) and dy. */
export function wasmGeluGrad(x: tf.Tensor, s: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  requireFloat32(x, s, dy);
  return tf.engine().runKernel(GELU_GRAD_KERNEL, { x, s, dy }) as tf.Tensor;
}

/** Rows of x [..., c] scaled to unit l2 norm on the fast path: [y, s] with s = 1/√(Σx² + eps). */
export function wasmL2Normalize(x: tf.Tensor, eps: number): [tf.Tensor, tf.Tensor] {
  requireFloat32(x);
  return tf.engine().runKernel(L2NORM_KERNEL, { x }, { eps }) as unknown as [tf.Tensor, tf.Tensor];
}

/** The gradient of the row normalisation on the fast path, from x, s and dy. */
export function wasmL2NormalizeGrad(x: tf.Tensor, s: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  requireFloat32(x, s, dy);
  return tf.engine().runKernel(L2NORM_GRAD_KERNEL, { x, s, dy }) as tf.Tensor;
}

/** The gradient of a last-axis softmax on the fast path: dx = y·(dy − Σ y·dy) per row. */
export function wasmSoftmaxGrad(y: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  requireFloat32(y, dy);
  return tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y, dy }) as tf.Tensor;
}

/**
 * LayerNorm of rows on the fast path: x [rows, d], scale and bias [d] →
 * [y, x̂, rstd]; μ and the variance per row, r = 1/√(var + eps), x̂ = (x − μ)·r, y = x̂·scale + bias.
 */
export function wasmLayerNorm(
  x: tf.Tensor2D,
  scale: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps: number,
): [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D] {
  requireFloat32(x, scale, bias);
  const d = x.shape[1];
  if (x.rank !== 2 || scale.shape[0] !== d || bias.shape[0] !== d) {
    throw new Error(
      `wasmLayerNorm: x must be [rows, d] with scale and bias [d], got [${x.shape.join(', ')}], [${scale.shape.join(', ')}], [${bias.shape.join(', ')}]`,
    );
  }
  return tf.engine().runKernel(LAYER_NORM_KERNEL, { x, scale, bias }, { eps }) as unknown as [
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor1D,
  ];
}

/**
 * The LayerNorm gradient on the fast path, in one pass: with g = dy·scale,
 * dx = r·(g − mean(g) − x̂·mean(g·x̂)), dscale = Σ_rows dy·x̂, dbias = Σ_rows dy → [dx, dscale, dbias].
 */
export function wasmLayerNormGrad(
  dy: tf.Tensor2D,
  xhat: tf.Tensor2D,
  rstd: tf.Tensor1D,
  scale: tf.Tensor1D,
): [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D] {
  requireFloat32(dy, xhat, rstd, scale);
  return tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { dy, xhat, rstd, scale }) as unknown as [
    tf.Tensor2D,
    tf.Tensor1D,
    tf.Tensor1D,
  ];
}

// ---------------------------------------------------------------------------------------------
// The plug-in's ops (lib/ops/accelerators.ts `FastOps`). Each declines (null) what its kernels do
// not handle: dtypes other than float32 and empty tensors.

const isFloat32 = (...ts: Array<tf.Tensor | undefined>): boolean => ts.every((t) => t == null || t.dtype === 'float32');

/** op(A)·op(B) (+ bias) in one kernel call: A read transposed through strides, bias added inside. */
function productFast(a: tf.Tensor3D, b: tf.Tensor3D, options: ProductOptions): tf.Tensor3D | null {
  if (!isFloat32(a, b, options.bias) || a.size === 0 || b.size === 0) return null;
  return wasmGemm(a, b, options);
}

function sumRowsFast(x: tf.Tensor3D): tf.Tensor2D | null {
  return isFloat32(x) && x.size > 0 ? wasmColSum(x) : null;
}

/**
 * tfjs-backend-wasm 4.22's Transpose kernel costs 4.5–9 ns per element here. The permutation is
 * first reduced (axes of size 1 dropped, axes that stay neighbours merged; lib/ops/permutation.ts)
 * and then run as one of: no movement (a reshape); [R, C] → [C, R] and [B, R, C] → [B, C, R], a
 * 4×4 register-blocked transpose; [A, B, c] → [B, A, c], copies of contiguous blocks of c
 * elements. Other permutations are declined (tf.transpose).
 */
function transposeFast(x: tf.Tensor, perm: readonly number[]): tf.Tensor | null {
  if (!isFloat32(x) || x.size === 0) return null;
  const outShape = perm.map((p) => x.shape[p]);
  const r = reducePermutation(x.shape, perm);
  const key = r.perm.join(',');
  const s = r.shape;
  if (r.perm.length <= 1) return tf.reshape(x, outShape);
  if (key === '1,0') return tf.reshape(wasmTransposeLast2(tf.reshape(x, [1, s[0], s[1]])), outShape);
  if (key === '0,2,1') return tf.reshape(wasmTransposeLast2(tf.reshape(x, [s[0], s[1], s[2]])), outShape);
  if (key === '1,0,2') return tf.reshape(wasmPermuteBlocks(tf.reshape(x, [s[0], s[1], s[2]])), outShape);
  return null;
}

// GELU (formula and gradient: lib/ops/nn.ts) in one pass each way: the forward kernel also returns
// σ(u), which the backward kernel reuses.
const geluOp = customOp(1, ([x], save) => {
  const [y, s] = wasmGelu(x);
  save([x, s]);
  return { value: y, gradFunc: (dy, saved) => [wasmGeluGrad(saved[0], saved[1], dy)] };
});

function geluFast(x: tf.Tensor): tf.Tensor | null {
  return isFloat32(x) && x.size > 0 ? geluOp(x) : null;
}

/** One custom op per value of a numeric attribute (eps), made on first use. */
function perAttribute(
  make: (attr: number) => (...inputs: tf.Tensor[]) => tf.Tensor,
): (attr: number) => (...inputs: tf.Tensor[]) => tf.Tensor {
  const ops = new Map<number, (...inputs: tf.Tensor[]) => tf.Tensor>();
  return (attr) => {
    let op = ops.get(attr);
    if (op == null) {
      op = make(attr);
      ops.set(attr, op);
    }
    return op;
  };
}

// Rows scaled to unit norm in one kernel each way (13 tfjs kernels and their saved copies
// otherwise). With s = 1/√(Σx² + eps) per row and y = x·s:
//   dx = s·(dy − y·Σ_j y_j·dy_j)   (from ∂s/∂x_j = −x_j·s³).
const l2NormalizeOp = perAttribute((eps) =>
  customOp(1, ([x], save) => {
    const [y, s] = wasmL2Normalize(x, eps);
    save([x, s]);
    return { value: y, gradFunc: (dy, saved) => [wasmL2NormalizeGrad(saved[0], saved[1], dy)] };
  }),
);

function l2NormalizeRowsFast(x: tf.Tensor, eps: number): tf.Tensor | null {
  return isFloat32(x) && x.size > 0 ? l2NormalizeOp(eps)(x) : null;
}

// tfjs' own softmax forward; the gradient dx = y·(dy − Σ_j y_j·dy_j) in one kernel instead of
// tfjs' four (mul, sum, sub, mul) with their saved copies.
const softmaxOp = customOp(1, ([x], save) => {
  const y = tf.softmax(x);
  save([y]);
  return { value: y, gradFunc: (dy, saved) => [wasmSoftmaxGrad(saved[0], dy)] };
});

function softmaxFast(x: tf.Tensor): tf.Tensor | null {
  return isFloat32(x) && x.size > 0 && x.rank >= 1 ? softmaxOp(x) : null;
}

// LayerNorm and its closed-form gradient (lib/ops/layer-norm.ts) as one fused pass each way; the
// composed version launches about 8 kernels forward and 12 backward per call.
const layerNormOp = perAttribute((eps) =>
  customOp(3, ([x, scale, bias], save) => {
    const [y, xhat, rstd] = wasmLayerNorm(x as tf.Tensor2D, scale as tf.Tensor1D, bias as tf.Tensor1D, eps);
    save([xhat, rstd, scale]);
    return {
      value: y,
      gradFunc: (dy, [xh, r, sc]) =>
        wasmLayerNormGrad(dy as tf.Tensor2D, xh as tf.Tensor2D, r as tf.Tensor1D, sc as tf.Tensor1D),
    };
  }),
);

function layerNormFast(x: tf.Tensor2D, scale: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D | null {
  return isFloat32(x, scale, bias) && x.size > 0 ? (layerNormOp(eps)(x, scale, bias) as tf.Tensor2D) : null;
}

const FAST_OPS: FastOps = {
  product: productFast,
  sumRows: sumRowsFast,
  transpose: transposeFast,
  gelu: geluFast,
  l2NormalizeRows: l2NormalizeRowsFast,
  softmax: softmaxFast,
  layerNorm: layerNormFast,
};

/** The plug-in: its ops while the fast path is on and bound to the active wasm backend. */
export const wasmAccelerator: Accelerator = {
  name: 'wasm fast path (lib/ops/wasm)',
  active: () => (fastWasm() != null ? FAST_OPS : null),
};
