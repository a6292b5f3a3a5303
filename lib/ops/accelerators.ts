/**
 * One set of ops, with backend-specific speed behind them.
 *
 * Library code calls the ops of lib/ops (`product`, `transpose`, `gelu`, `layerNorm`, …). Each
 * op first asks `fastOp(name)` for an implementation supplied by an accelerator plug-in that
 * serves the active backend, and calls it; the implementation may decline one call by returning
 * null (a dtype, rank or size it does not handle). Without a plug-in, or when it declines, the op
 * runs its portable version: public tfjs ops, on every backend. A call site reads
 *
 *   return fastOp('gelu')?.(x) ?? geluPortable(x);
 *
 * The plug-ins are listed below; this library has one, the wasm fast path (lib/ops/wasm/). Only
 * this file and the plug-in's own folder may import a plug-in (test/ops/accelerators.test.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import type { ProductOptions } from './matmul.js';
import { wasmAccelerator } from './wasm/fast-wasm.js';

/**
 * What a plug-in may supply. Values only (`product`, `sumRows`, `transpose`) are wrapped in the
 * op's own gradient; the others are differentiable as they are (each brings its gradient).
 * Shapes are checked by the op before the call.
 */
export interface FastOps {
  /** op(A)·op(B) (+ bias) of rank-3 operands, no gradient (lib/ops/matmul.ts `product`). */
  product(a: tf.Tensor3D, b: tf.Tensor3D, options: ProductOptions): tf.Tensor3D | null;
  /** [B, R, C] → [B, C], the sum over R; no gradient. */
  sumRows(x: tf.Tensor3D): tf.Tensor2D | null;
  /** x with its axes permuted (`perm` checked), no gradient (lib/ops/transpose.ts). */
  transpose(x: tf.Tensor, perm: readonly number[]): tf.Tensor | null;
  /** GELU, tanh form, with its gradient (lib/ops/nn.ts). */
  gelu(x: tf.Tensor): tf.Tensor | null;
  /** Rows (last axis) scaled to unit l2 norm, x·1/√(Σx² + eps), with its gradient. */
  l2NormalizeRows(x: tf.Tensor, eps: number): tf.Tensor | null;
  /** Softmax over the last axis, with its gradient. */
  softmax(x: tf.Tensor): tf.Tensor | null;
  /** LayerNorm of rows x [N, d] with scale and bias [d], with its gradient (lib/ops/layer-norm.ts). */
  layerNorm(x: tf.Tensor2D, scale: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D | null;
}

/** A plug-in: its fast ops when it can serve the active backend now, else null. */
export interface Accelerator {
  readonly name: string;
  active(): Partial<FastOps> | null;
}

const accelerators: Accelerator[] = [wasmAccelerator];

/** Add a plug-in (tried after those already listed); returns a function that removes it. */
export function registerAccelerator(accelerator: Accelerator): () => void {
  accelerators.push(accelerator);
  return () => {
    const i = accelerators.indexOf(accelerator);
    if (i >= 0) accelerators.splice(i, 1);
  };
}

/** The fast implementation of `name` for the active backend, or null (use the portable op). */
export function fastOp<K extends keyof FastOps>(name: K): FastOps[K] | null {
  for (const accelerator of accelerators) {
    const impl = accelerator.active()?.[name];
    if (impl != null) return impl as FastOps[K];
  }
  return null;
}
