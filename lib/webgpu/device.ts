/**
 * The `webgpu` tfjs backend on a GPUDevice created here rather than by tfjs, so that
 * - the device gets the adapter's own storage-buffer limit (tfjs asks for the default 8, which
 *   breaks AddN with more than 7 inputs; lib/webgpu/workarounds.ts),
 * - GPU errors fail the operation: tfjs never listens for them, and a WGSL or validation error
 *   drops a whole command buffer, so *other* tensors come back as zeros or garbage. Here every
 *   uncaptured GPU error marks the backend as faulted; the kernel that raised it, every later
 *   kernel and every later read throw a {@link WebGPUKernelError} naming the failing program,
 *   until the backend is initialised again.
 * - the adapter is known, so it can be reported (vendor, architecture, description, fallback).
 *
 * Browser-safe: it takes a `GPU` object (`navigator.gpu` in a browser; Dawn's in Node, from
 * lib/webgpu/node.ts) and imports nothing from Node.
 */
import * as tf from '@tensorflow/tfjs';
import { PINNED_WEBGPU_VERSION, selfCheck, setWorkarounds, shared } from './workarounds.js';

/** The parts of the WebGPU API used here (a subset of @webgpu/types, which changes often). */
export interface GPULike {
  requestAdapter(options?: {
    powerPreference?: 'high-performance' | 'low-power';
    featureLevel?: string;
  }): Promise<AdapterLike | null>;
}
interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface AdapterLike {
  readonly features: ReadonlySet<string>;
  readonly limits: Record<string, number>;
  readonly info?: AdapterInfoLike;
  readonly isFallbackAdapter?: boolean;
  requestDevice(descriptor?: {
    requiredFeatures?: string[];
    requiredLimits?: Record<string, number>;
  }): Promise<DeviceLike>;
}
interface DeviceLike {
  readonly limits: Record<string, number>;
  addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
  destroy(): void;
}

/** What backendInfo() reports about the adapter behind the webgpu backend. */
export interface WebGPUAdapterReport {
  /** Adapter vendor. */
  vendor: string;
  /** Adapter architecture. */
  architecture: string;
  /** Adapter device. */
  device: string;
  /** Adapter description. */
  description: string;
  /** The adapter says it is a fallback (software) adapter. */
  fallback: boolean;
  /** A software rasteriser by name (llvmpipe, lavapipe, SwiftShader, WARP…) or a fallback adapter. */
  software: boolean;
  /** 'core' or 'compatibility' (Dawn's OpenGL ES backend offers only the latter). */
  featureLevel: string;
  /** Where the GPU object came from: 'navigator.gpu' or "dawn (npm webgpu, backend=…)". */
  source: string;
  /** maxStorageBuffersPerShaderStage of the device (tfjs alone would use 8). */
  maxStorageBuffersPerShaderStage: number;
}

/** A GPU error (WGSL compile, validation, out of memory) raised while a tfjs program ran. */
export class WebGPUKernelError extends Error {
  /**
   * An error naming the failed GPU program.
   *
   * @param kernel name of the tfjs program that failed.
   * @param gpuMessage the GPU error message.
   * @param later true when thrown by a later program or read, after the failure.
   */
  constructor(
    readonly kernel: string,
    readonly gpuMessage: string,
    readonly later = false,
  ) {
    super(
      later
        ? `the webgpu backend is unusable since GPU program ${kernel} failed (${firstLine(gpuMessage)}); results computed since are unreliable: initialise the backend again (initBackend('webgpu'))`
        : `GPU error in webgpu program ${kernel}: ${gpuMessage.trim()}`,
    );
    this.name = 'WebGPUKernelError';
  }
}

function firstLine(message: string): string {
  return message.trim().split('\n')[0];
}

/** Software rasterisers met as WebGPU adapters (Mesa llvmpipe/lavapipe, SwiftShader, Microsoft WARP). */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render|warp/i;

export function describeAdapter(
  adapter: AdapterLike,
  featureLevel: string,
  source: string,
  device?: DeviceLike,
): WebGPUAdapterReport {
  const info = adapter.info ?? {};
  const fallback = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false);
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    fallback,
    software: fallback || SOFTWARE_NAMES.test(text),
    featureLevel,
    source,
    maxStorageBuffersPerShaderStage: (device ?? adapter).limits.maxStorageBuffersPerShaderStage,
  };
}

/** A one-line name for an adapter: "nvidia ampere (NVIDIA GeForce RTX 3080)". */
export function adapterName(a: WebGPUAdapterReport): string {
  const main = [a.vendor, a.architecture].filter(Boolean).join(' ') || a.device || 'unknown adapter';
  const detail = a.description && a.description !== main ? a.description : '';
  return detail ? `${main} (${detail})` : main;
}

/** The subset of WebGPUBackend (tfjs-backend-webgpu 4.22.0, dist/backend_webgpu.d.ts) that is wrapped. */
interface WebGPUBackendLike {
  runWebGPUProgram(program: object, ...rest: unknown[]): tf.TensorInfo;
  read(dataId: object): Promise<tf.backend_util.BackendValues>;
  readSync(dataId: object): tf.backend_util.BackendValues;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Error state of one device: the first GPU error and the program that was running. */
class FaultGuard {
  fault: WebGPUKernelError | null = null;
  running: string | null = null;
  reported = false;

  onError(message: string): void {
    if (this.fault) return;
    // Dawn names the shader module / pipeline by its label, which tfjs sets to the program's class.
    const label = /\[(?:ShaderModule|ComputePipeline)[^\]]*?"+([^"\]]+)"+/.exec(message)?.[1];
    this.fault = new WebGPUKernelError(
      this.running ?? label ?? 'unknown (error raised while submitting or reading)',
      message,
    );
  }

  /** Throw the fault: the first time as it happened, afterwards as "unusable since". */
  check(): void {
    if (!this.fault) return;
    if (!this.reported) {
      this.reported = true;
      throw this.fault;
    }
    throw new WebGPUKernelError(this.fault.kernel, this.fault.gpuMessage, true);
  }
}

function programName(program: object): string {
  const key = (program as { shaderKey?: string }).shaderKey;
  const cls = program.constructor?.name;
  return key && cls ? `${cls} (shader ${key.length > 60 ? `${key.slice(0, 60)}…` : key})` : (cls ?? key ?? 'unnamed');
}

/** Wrap a backend's program runs and reads so that a GPU error surfaces as an exception. */
function guard(backend: WebGPUBackendLike, faults: FaultGuard): void {
  const run = backend.runWebGPUProgram.bind(backend);
  const read = backend.read.bind(backend);
  const readSync = backend.readSync.bind(backend);
  backend.runWebGPUProgram = (program: object, ...rest: unknown[]) => {
    faults.check();
    faults.running = programName(program);
    let out: tf.TensorInfo;
    try {
      out = run(program, ...rest);
    } finally {
      faults.running = null;
    }
    if (faults.fault) {
      // Dawn reports validation errors synchronously; the output never reaches the engine.
      if (out !== rest[3]) backend.disposeData(out.dataId, true);
      faults.check();
    }
    return out;
  };
  backend.read = async (dataId: object) => {
    faults.check();
    const values = await read(dataId);
    faults.check(); // errors a browser delivers asynchronously arrive before the mapped read
    return values;
  };
  backend.readSync = (dataId: object) => {
    faults.check();
    try {
      return readSync(dataId);
    } catch (e) {
      if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined') {
        throw new Error(
          `dataSync()/arraySync() cannot read a webgpu tensor here (tfjs reads synchronously through OffscreenCanvas, which Node lacks): use await tensor.data() / await tensor.array() (${(e as Error).message})`,
        );
      }
      throw e;
    }
  };
}

export interface WebGPUOptions {
  /** Accept a software/fallback adapter (tests, CI). The automatic choice passes false. */
  allowSoftware: boolean;
  /** Where `gpu` came from, for the report. */
  source: string;
  /** Adapter feature levels to try in order (Dawn's OpenGL ES backend offers only 'compatibility'). */
  featureLevels?: string[];
}

interface Current {
  device: DeviceLike;
  report: WebGPUAdapterReport;
}

/** The adapter of the webgpu backend registered last, or null. */
export function webgpuAdapter(): WebGPUAdapterReport | null {
  return (shared.current as Current | null)?.report ?? null;
}

/**
 * Request an adapter and device from `gpu`, register the tfjs `webgpu` backend on it (replacing
 * any registered before, e.g. by tfjs-backend-webgpu's own import), install the work-arounds,
 * activate it and self-check it. Returns the adapter report; throws with the reason when there
 * is no adapter, the adapter is software and `allowSoftware` is false, the tfjs version is not
 * the pinned one, or the self-check fails.
 */
export async function registerWebGPU(gpu: GPULike, options: WebGPUOptions): Promise<WebGPUAdapterReport> {
  if (tf.version.tfjs !== PINNED_WEBGPU_VERSION) {
    throw new Error(
      `the webgpu work-arounds (lib/webgpu/workarounds.ts) are pinned to tfjs ${PINNED_WEBGPU_VERSION}, found ${tf.version.tfjs}: check tensorflow/tfjs#8638 and the AddN storage-buffer limit on the new version, then update the pin`,
    );
  }
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  let adapter: AdapterLike | null = null;
  let featureLevel = 'core';
  for (const level of options.featureLevels ?? ['core']) {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel: level });
    featureLevel = level;
    if (adapter) break;
  }
  if (!adapter)
    throw new Error(
      `no WebGPU adapter from ${options.source} (feature levels tried: ${(options.featureLevels ?? ['core']).join(', ')})`,
    );
  const probe = describeAdapter(adapter, featureLevel, options.source);
  if (probe.software && !options.allowSoftware) {
    throw new Error(
      `skipped the software WebGPU adapter ${adapterName(probe)}${probe.fallback ? ', a fallback adapter' : ''}: slower than wasm (force it with SOFTMOE_BACKEND=webgpu)`,
    );
  }
  // tfjs-backend-webgpu's own device request (dist/base.js), plus the storage-buffer limit.
  const limits = adapter.limits;
  const requiredLimits: Record<string, number> = {};
  for (const name of [
    'maxComputeWorkgroupStorageSize',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupSizeX',
    'maxComputeInvocationsPerWorkgroup',
    'maxStorageBuffersPerShaderStage',
  ]) {
    if (typeof limits[name] === 'number') requiredLimits[name] = limits[name];
  }
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const faults = new FaultGuard();
  device.addEventListener('uncapturederror', (event) => faults.onError(event.error.message));
  const report = describeAdapter(adapter, featureLevel, options.source, device);

  if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
  (shared.current as Current | null)?.device.destroy();
  shared.current = { device, report } satisfies Current;
  const info = adapter.info as unknown as ConstructorParameters<typeof WebGPUBackend>[1];
  tf.registerBackend('webgpu', () => {
    const backend = new WebGPUBackend(device as unknown as ConstructorParameters<typeof WebGPUBackend>[0], info);
    guard(backend as unknown as WebGPUBackendLike, faults);
    return backend;
  });
  setWorkarounds(true);
  if (!(await tf.setBackend('webgpu')))
    throw new Error(`tfjs could not initialise the webgpu backend on ${adapterName(report)}`);
  await tf.ready();
  const problem = await selfCheck();
  if (problem) throw new Error(`webgpu backend on ${adapterName(report)} failed its start-up ${problem}`);
  return report;
}
