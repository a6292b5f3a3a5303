export * from './check.js';
export * from './matmul.js';
export * from './nn.js';
export * from './layer-norm.js';
export * from './one-hot.js';
export * from './round.js';
export { inversePermutation, transpose } from './transpose.js';
export {
  disposeFastWasm,
  FAST_WASM_ENV,
  FAST_WASM_SHARE_CLONES_ENV,
  fastWasmStatus,
  PINNED_TFJS_VERSION,
  setFastWasmEnabled,
  setFastWasmSharedClones,
} from './wasm/fast-wasm.js';
