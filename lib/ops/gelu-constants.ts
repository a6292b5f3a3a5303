/**
 * The constants of GELU's tanh approximation (Hendrycks & Gimpel 2016, §2; flax `nn.gelu` with
 * `approximate=True`, the default vmoe's MLP blocks use):
 *   gelu(x) ≈ ½x(1 + tanh(GELU_C·(x + GELU_CUBIC·x³))).
 * One copy for the portable op (nn.ts) and the wasm kernels (fast-wasm.ts, wasm-kernels.ts).
 */

/** √(2/π). */
export const GELU_C = Math.sqrt(2 / Math.PI);

/** The cubic coefficient 0.044715. */
export const GELU_CUBIC = 0.044715;
