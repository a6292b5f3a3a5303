/**
 * soft-moe-workbook: Soft MoE ("From Sparse to Soft Mixtures of Experts", arXiv:2308.00951)
 * and the sparse routers it is compared with, in TensorFlow.js. The public API: re-exports only.
 */
export * from './backend.js';
export * from './ops/index.js';
export * from './moe/dense-mlp.js';
export * from './moe/experts.js';
export * from './moe/soft-moe.js';
export * from './moe/layers.js';
export * from './data/index.js';
