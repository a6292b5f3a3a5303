export * from './paths.js';
export * from './idx.js';
export * from './manifest.js';
export * from './datasets.js';
export * from './augment.js';
export * from './batches.js';
export * from './build.js';
