export * from './gradient.js';
export * from './module.js';
export * from './random.js';
