/**
 * soft-moe-workbook/node: everything of the package root (./index.ts) plus the parts that need
 * Node: data files on disk, checkpoint and results files (git, machine info), the notebook
 * helpers of `plot` (show, HTML files, progress, quick mode), the model file handler of the
 * tf.layers layers (fileIO), and WebGPU from Dawn (npm `webgpu`; initBackend loads it by itself
 * when webgpu is chosen). Notebooks import this entry.
 *
 * @module soft-moe-workbook/node
 */
export * from './index.js';
export * as plot from './plot/node.js';
export * from './data/node.js';
export * from './train/node.js';
export * from './layers/node.js';
export { registerDawn, WEBGPU_BACKEND_ENV } from './webgpu/node.js';
