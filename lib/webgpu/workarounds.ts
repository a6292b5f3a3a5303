/**
 * Work-arounds for two bugs of `@tensorflow/tfjs-backend-webgpu` 4.22.0 that this library hits,
 * through public tfjs APIs only (`tf.getKernel` / `tf.registerKernel` for the 'webgpu' backend):
 *
 * 1. **int32 Transpose** (tensorflow/tfjs#8638, unfixed in 4.22.0). Both transpose programs pass
 *    an element of an int32 (or bool, stored as i32) buffer straight to `setOutputAtIndex`, whose
 *    value parameter is always f32: the WGSL does not compile ("type mismatch for argument 2 in
 *    call to 'setOutputAtIndex'"). The failed command buffer is dropped, so other tensors of the
 *    same submission come back as zeros or garbage (routers' index tensors, casts from int/bool,
 *    reductions). Work-around: convert to float32, transpose, cast back. The conversion is a
 *    multiplication by 1.0 because Cast int32 → float32 only relabels the buffer (programs would
 *    still see i32; Cast itself is replaced by that multiplication for the same reason). Exact
 *    for |v| ≤ 2^24, which is no loss on this backend: every other webgpu program reads int32
 *    inputs through f32 (`getX() -> f32`) too. The kernels that
 *    transpose internally (reductions over a non-last axis, cumulative sums, arg-max/min,
 *    segment sums) call the broken program directly, not through the registry: for int32/bool
 *    input they get the same treatment (float32 in, the output cast back to tfjs's dtype).
 * 2. **AddN with many inputs**. `AddNPackedProgram` binds every input as a storage buffer, plus
 *    the output; tfjs requests a device with the default limit of 8 storage buffers per shader
 *    stage, so AddN of more than 7 tensors fails validation (global-norm gradient clipping sums
 *    one square norm per variable). Work-around: lib/webgpu/device.ts requests the adapter's own
 *    limit, and the kernel below splits AddN into chunks that fit whatever limit the device has.
 *
 * Both are pinned to {@link PINNED_WEBGPU_VERSION}; {@link selfCheck} runs both cases on the GPU
 * at start-up and throws if either gives a wrong number.
 */
import * as tf from '@tensorflow/tfjs';

/** The tfjs(-backend-webgpu) version these work-arounds were written and checked against. */
export const PINNED_WEBGPU_VERSION = '4.22.0';

type KernelArgs = Parameters<tf.KernelFunc>[0];
type KernelResult = tf.TensorInfo | tf.TensorInfo[];

interface WebGPUKernelBackend {
  disposeData(dataId: object): boolean;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
}

/**
 * State shared by every copy of these modules in one process: a test run can load lib/ twice
 * (mocha's `require` hook as CommonJS, the test files as ES modules), but tfjs's kernel registry
 * and the GPU device are one. Holds the kernels tfjs registered and the current device.
 */
interface SharedState {
  originals: Map<string, tf.KernelConfig>;
  current: unknown;
}
export const shared: SharedState = ((globalThis as Record<symbol, unknown>)[Symbol.for('soft-moe-workbook/webgpu')] ??=
  {
    originals: new Map<string, tf.KernelConfig>(),
    current: null,
  }) as SharedState;
const originals = shared.originals;

function original(kernelName: string): tf.KernelConfig {
  const saved = originals.get(kernelName);
  if (saved) return saved;
  const config = tf.getKernel(kernelName, 'webgpu');
  if (config == null)
    throw new Error(
      `tfjs-backend-webgpu registered no ${kernelName} kernel (is @tensorflow/tfjs-backend-webgpu ${PINNED_WEBGPU_VERSION} imported?)`,
    );
  originals.set(kernelName, config);
  return config;
}

function run(kernelName: string, args: KernelArgs): tf.TensorInfo {
  return original(kernelName).kernelFunc(args) as tf.TensorInfo;
}

function cast(x: tf.TensorInfo, dtype: tf.DataType, backend: KernelArgs['backend']): tf.TensorInfo {
  return run('Cast', { inputs: { x }, attrs: { dtype }, backend } as unknown as KernelArgs);
}

function isInteger(t: tf.TensorInfo): boolean {
  return t.dtype === 'int32' || t.dtype === 'bool';
}

/** x as a real float32 buffer (Cast int32 → float32 only relabels it: multiply by 1.0 instead). */
function toFloat(x: tf.TensorInfo, backend: KernelArgs['backend']): tf.TensorInfo {
  const b = backend as unknown as WebGPUKernelBackend;
  const one = b.makeTensorInfo([], 'float32', new Float32Array([1]));
  const out = run('Multiply', { inputs: { a: x, b: one }, backend, attrs: {} } as unknown as KernelArgs);
  b.disposeData(one.dataId);
  return out;
}

/**
 * A kernel that, given int32/bool `x`, runs `kernelName` (or `runAs`, with attributes renamed)
 * on a float32 copy and casts the output to `outDtype(x.dtype)` (null: leave it).
 */
function viaFloat(
  kernelName: string,
  outDtype: (xDtype: tf.DataType) => tf.DataType | null,
  runAs = kernelName,
  attrs = (a: unknown) => a,
): tf.KernelFunc {
  return (args: KernelArgs) => {
    const inputs = args.inputs as { x: tf.TensorInfo };
    if (!isInteger(inputs.x)) return run(kernelName, args);
    const backend = args.backend as unknown as WebGPUKernelBackend;
    const asFloat = toFloat(inputs.x, args.backend);
    const result = run(runAs, { ...args, inputs: { ...inputs, x: asFloat }, attrs: attrs(args.attrs) } as KernelArgs);
    backend.disposeData(asFloat.dataId);
    const dtype = outDtype(inputs.x.dtype);
    if (dtype == null || dtype === result.dtype) return result;
    const out = cast(result, dtype, args.backend);
    backend.disposeData(result.dataId);
    return out;
  };
}

const sameAsInput = (dtype: tf.DataType) => dtype;
const int32 = () => 'int32' as const;
const keep = () => null;
const reduceAttrs = (a: unknown) => {
  const { axis, keepDims } = a as { axis: number | number[]; keepDims: boolean };
  return { reductionIndices: axis, keepDims };
};

/** AddN in chunks of at most (storage-buffer limit − 1) inputs (bug 2 above). */
function addN(args: KernelArgs): KernelResult {
  const inputs = args.inputs as unknown as tf.TensorInfo[];
  const backend = args.backend as unknown as WebGPUKernelBackend;
  const perCall = backend.device.limits.maxStorageBuffersPerShaderStage - 1; // one buffer is the output
  if (inputs.length <= perCall) return run('AddN', args);
  const partials: tf.TensorInfo[] = [];
  for (let i = 0; i < inputs.length; i += perCall) {
    const chunk = inputs.slice(i, i + perCall);
    partials.push(
      chunk.length === 1 ? chunk[0] : run('AddN', { ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }),
    );
  }
  const total = addN({ ...args, inputs: partials as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
  for (const p of partials) if (!inputs.includes(p)) backend.disposeData(p.dataId);
  return total;
}

/** Cast int32/bool → float32 as a real conversion, so that no float32 tensor holds an i32 buffer. */
function castKernel(args: KernelArgs): KernelResult {
  const x = (args.inputs as { x: tf.TensorInfo }).x;
  const dtype = (args.attrs as { dtype: tf.DataType }).dtype;
  return isInteger(x) && dtype === 'float32' ? toFloat(x, args.backend) : run('Cast', args);
}

const REPLACEMENTS: Record<string, tf.KernelFunc> = {
  Cast: castKernel,
  Transpose: viaFloat('Transpose', sameAsInput),
  // Kernels that transpose internally (tfjs-backend-webgpu 4.22.0 dist/kernels/*.js), output
  // dtypes as tfjs-core gives them: sums and products of int/bool are int32.
  Sum: viaFloat('Sum', int32),
  Prod: viaFloat('Prod', int32),
  Cumsum: viaFloat('Cumsum', int32),
  Cumprod: viaFloat('Cumprod', int32),
  Max: viaFloat('Max', sameAsInput),
  Min: viaFloat('Min', sameAsInput),
  Mean: viaFloat('Mean', keep),
  ArgMax: viaFloat('ArgMax', keep),
  ArgMin: viaFloat('ArgMin', keep),
  UnsortedSegmentSum: viaFloat('UnsortedSegmentSum', sameAsInput),
  // any/all of bool = max/min of 0/1 (the reduce program's || and && do not take f32).
  Any: viaFloat('Any', () => 'bool', 'Max', reduceAttrs),
  All: viaFloat('All', () => 'bool', 'Min', reduceAttrs),
  AddN: addN,
};

/** Whether the replacement kernels are registered for 'webgpu'. */
export function workaroundsInstalled(): boolean {
  const addNKernel = tf.getKernel('AddN', 'webgpu')?.kernelFunc;
  return addNKernel != null && addNKernel !== originals.get('AddN')?.kernelFunc;
}

/**
 * Register (on = true) or remove (on = false, tests only: to show the bugs) the replacement
 * kernels for the 'webgpu' backend. Idempotent.
 */
export function setWorkarounds(on: boolean): void {
  for (const [name, kernelFunc] of Object.entries(REPLACEMENTS)) {
    const base = original(name);
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel(on ? { kernelName: name, backendName: 'webgpu', kernelFunc } : base);
  }
}

/**
 * Run both bug cases on the active webgpu backend and compare with a plain JavaScript answer.
 * Sizes are above tfjs's CPU hand-off threshold (WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD = 1000
 * elements), so the GPU programs run. Returns null when both are right, else what was wrong.
 */
export async function selfCheck(): Promise<string | null> {
  const [rows, cols] = [40, 48];
  const values = Int32Array.from({ length: rows * cols }, (_, i) => (i * 7919) % 100003);
  const terms = 20; // more than the adapter limit of every adapter met (16) minus the output
  // 2-D [1, 0] and 3-D [1, 0, 2] (the shared and the generic transpose program).
  const [transposed, transposed3, summed] = tf.tidy(() => {
    const x = tf.tensor2d(values, [rows, cols], 'int32');
    const addends = Array.from({ length: terms }, (_, k) => tf.fill([1024], k + 1));
    return [tf.transpose(x), tf.transpose(x.reshape([rows, cols, 1]), [1, 0, 2]), tf.addN(addends)];
  });
  try {
    for (const [rank, tensor] of [
      [2, transposed],
      [3, transposed3],
    ] as const) {
      const t = await tensor.data();
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          if (t[j * rows + i] !== values[i * cols + j]) {
            return `self-check: rank-${rank} int32 transpose element (${j}, ${i}) is ${t[j * rows + i]}, expected ${values[i * cols + j]}`;
          }
        }
      }
    }
    const s = await summed.data();
    const want = (terms * (terms + 1)) / 2;
    const bad = s.findIndex((v) => v !== want);
    if (bad >= 0) return `self-check: addN of ${terms} tensors gave ${s[bad]} at ${bad}, expected ${want}`;
    return null;
  } finally {
    tf.dispose([transposed, transposed3, summed]);
  }
}
