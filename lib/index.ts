/**
 * soft-moe-workbook: Soft MoE ("From Sparse to Soft Mixtures of Experts", arXiv:2308.00951)
 * and the sparse routers it is compared with, in TensorFlow.js. The public API: re-exports only.
 * Browser-safe (no Node built-ins, no process globals; test/package-root.test.ts checks it); the
 * parts that need Node (files, results, git, notebook display) are in ./node.ts
 * ('soft-moe-workbook/node'), which re-exports this root too.
 *
 * @module soft-moe-workbook
 */
export * from './backend.js';
export { WebGPUKernelError, adapterName, webgpuAdapter, type WebGPUAdapterReport } from './webgpu/device.js';
export * from './ops/index.js';
export * from './core/index.js';
export * from './moe/dense-mlp.js';
export * from './moe/experts.js';
export * from './moe/soft-moe.js';
export * from './moe/causal-soft-moe.js';
export * from './moe/dispatch.js';
export * from './moe/gating.js';
export * from './moe/losses.js';
export * from './moe/metrics.js';
export * from './moe/diagnostics.js';
export * from './moe/routers/index.js';
export * from './moe/cost.js';
export * from './moe/layers.js';
export * from './layers/index.js';
export * from './data/index.js';
export * from './vit/index.js';
export * from './train/index.js';
export * from './bench/timing.js';
export * as plot from './plot/index.js';
