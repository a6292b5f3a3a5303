// Browser-safe data parts; reading and building the data files on disk: ./node.ts.
export * from './idx.js';
export * from './datasets.js';
export * from './augment.js';
export * from './batches.js';
