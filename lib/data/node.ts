// Node-only data parts: the data folder, its manifest, reading splits from disk, building data/.
export * from './paths.js';
export * from './manifest.js';
export * from './load.js';
export * from './build.js';
