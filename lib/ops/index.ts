export * from './check.js';
export * from './matmul.js';
export * from './nn.js';
export * from './round.js';
