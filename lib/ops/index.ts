export * from './check.js';
export * from './matmul.js';
export * from './nn.js';
export * from './one-hot.js';
export * from './round.js';
export { inversePermutation, transpose } from './transpose.js';
export { FAST_WASM_ENV, fastWasmStatus, PINNED_TFJS_VERSION, setFastWasmEnabled } from './fast-wasm.js';
