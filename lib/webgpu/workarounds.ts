/**
 * Work-arounds for two bugs of `@tensorflow/tfjs-backend-webgpu` 4.22.0 that this library hits,
 * through public tfjs APIs only (`tf.getKernel` / `tf.registerKernel` for the 'webgpu' backend):
 *
 * 1. **int32 Transpose** (tensorflow/tfjs#8638, unfixed in 4.22.0). Both transpose programs pass
 *    an element of an int32 (or bool, stored as i32) buffer straight to `setOutputAtIndex`, whose
 *    value parameter is always f32: the WGSL does not compile ("type mismatch for argument 2 in
 *    call to 'setOutputAtIndex'"). The failed command buffer is dropped, so other tensors of the
 *    same submission come back as zeros or garbage (routers' index tensors, casts from int/bool,
 *    reductions). Work-around: cast to float32, transpose, cast back. Exact for |v| ≤ 2^24, which
 *    is no loss on this backend: every other webgpu program reads int32 inputs through f32
 *    (`getX() -> f32`) too, so larger integers are inexact there anyway.
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
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
}

const originals = new Map<string, tf.KernelConfig>();

function original(kernelName: string): tf.KernelConfig {
  const saved = originals.get(kernelName);
  if (saved) return saved;
  const config = tf.getKernel(kernelName, 'webgpu');
  if (config == null) throw new Error(`tfjs-backend-webgpu registered no ${kernelName} kernel (is @tensorflow/tfjs-backend-webgpu ${PINNED_WEBGPU_VERSION} imported?)`);
  originals.set(kernelName, config);
  return config;
}

function run(kernelName: string, args: KernelArgs): tf.TensorInfo {
  return original(kernelName).kernelFunc(args) as tf.TensorInfo;
}

function cast(x: tf.TensorInfo, dtype: tf.DataType, backend: KernelArgs['backend']): tf.TensorInfo {
  return run('Cast', { inputs: { x }, attrs: { dtype }, backend } as unknown as KernelArgs);
}

/** Transpose that sends int32/bool through float32 (bug 1 above). */
function transpose(args: KernelArgs): KernelResult {
  const x = (args.inputs as { x: tf.TensorInfo }).x;
  if (x.dtype !== 'int32' && x.dtype !== 'bool') return run('Transpose', args);
  const backend = args.backend as unknown as WebGPUKernelBackend;
  const asFloat = cast(x, 'float32', args.backend);
  const transposed = run('Transpose', { ...args, inputs: { x: asFloat } } as KernelArgs);
  const out = cast(transposed, x.dtype, args.backend);
  backend.disposeData(asFloat.dataId);
  backend.disposeData(transposed.dataId);
  return out;
}

/** AddN in chunks of at most (storage-buffer limit − 1) inputs (bug 2 above). */
function addN(args: KernelArgs): KernelResult {
  const inputs = args.inputs as unknown as tf.TensorInfo[];
  const backend = args.backend as unknown as WebGPUKernelBackend;
  const perCall = backend.device.limits.maxStorageBuffersPerShaderStage - 1; // one buffer is the output
  if (inputs.length <= perCall) return run('AddN', args);
  const partials: tf.TensorInfo[] = [];
  for (let i = 0; i < inputs.length; i += perCall) {
    const chunk = inputs.slice(i, i + perCall);
    partials.push(chunk.length === 1 ? chunk[0] : run('AddN', { ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }));
  }
  const total = addN({ ...args, inputs: partials as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
  for (const p of partials) if (!inputs.includes(p)) backend.disposeData(p.dataId);
  return total;
}

const REPLACEMENTS: Record<string, tf.KernelFunc> = { Transpose: transpose, AddN: addN };

/** Whether the replacement kernels are registered for 'webgpu'. */
export function workaroundsInstalled(): boolean {
  return tf.getKernel('Transpose', 'webgpu')?.kernelFunc === transpose;
}

/**
 * Register (on = true) or remove (on = false, tests only: to show the bugs) the replacement
 * Transpose and AddN kernels for the 'webgpu' backend. Idempotent.
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
  const [transposed, summed] = tf.tidy(() => {
    const x = tf.tensor2d(values, [rows, cols], 'int32');
    const addends = Array.from({ length: terms }, (_, k) => tf.fill([1024], k + 1));
    return [tf.transpose(x), tf.addN(addends)];
  });
  try {
    const t = await transposed.data();
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        if (t[j * rows + i] !== values[i * cols + j]) {
          return `self-check: int32 transpose element (${j}, ${i}) is ${t[j * rows + i]}, expected ${values[i * cols + j]}`;
        }
      }
    }
    const s = await summed.data();
    const want = (terms * (terms + 1)) / 2;
    const bad = s.findIndex((v) => v !== want);
    if (bad >= 0) return `self-check: addN of ${terms} tensors gave ${s[bad]} at ${bad}, expected ${want}`;
    return null;
  } finally {
    tf.dispose([transposed, summed]);
  }
}
