/**
 * soft-moe-workbook/node: everything of the package root (./index.ts) plus the parts that need
 * Node: data files on disk, checkpoint and results files (git, machine info), and the notebook
<<<<<<< HEAD
 * helpers of `plot` (show, HTML files, progress, quick mode), and WebGPU from Dawn (npm
 * `webgpu`; initBackend loads it by itself when webgpu is chosen). Notebooks import this entry.
=======
 * helpers of `plot` (show, HTML files, progress, quick mode), and the model file handler of the
 * tf.layers layers (fileIO). Notebooks import this entry.
>>>>>>> wip-layers
 */
export * from './index.js';
export * as plot from './plot/node.js';
export * from './data/node.js';
export * from './train/node.js';
<<<<<<< HEAD
export { registerDawn, WEBGPU_BACKEND_ENV } from './webgpu/node.js';
=======
export * from './layers/node.js';
>>>>>>> wip-layers
