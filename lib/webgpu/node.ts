/**
 * Node only: WebGPU from Dawn's Node binding (npm `webgpu`, an optional dependency; its prebuilt
 * `dawn.node` ships inside the package). Kept apart from lib/webgpu/device.ts so that the
 * browser build never sees it; lib/backend.ts imports it dynamically, and only in Node.
 *
 * Dawn picks Vulkan (Linux, Windows), Metal (macOS) or D3D12 (Windows) by default. Without a GPU,
 * Dawn's OpenGL ES backend on Mesa's llvmpipe works as a software adapter (Debian packages
 * libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri; EGL_PLATFORM=surfaceless, no display needed);
 * it offers only a 'compatibility' adapter. `SOFTMOE_WEBGPU_BACKEND=vulkan|opengles|metal|d3d12`
 * picks Dawn's backend.
 */
import { registerWebGPU, type GPULike, type WebGPUAdapterReport } from './device.js';

/** Environment variable naming Dawn's backend (passed as `backend=…` to `create`). */
export const WEBGPU_BACKEND_ENV = 'SOFTMOE_WEBGPU_BACKEND';

interface DawnModule {
  create(options: string[]): GPULike;
  globals: object;
}

let dawn: DawnModule | null = null;
const instances = new Map<string, GPULike>();

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  let mod: DawnModule;
  try {
    mod = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new Error(
      `the optional dependency "webgpu" (Dawn for Node) could not be loaded: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  // GPUBufferUsage, GPUMapMode… are globals in a browser; tfjs-backend-webgpu reads them there.
  Object.assign(globalThis, mod.globals);
  dawn = mod;
  return mod;
}

/** One Dawn instance per option set (creating one is slow; they live as long as the process). */
function instance(mod: DawnModule, backend: string | null): GPULike {
  const key = backend ?? '';
  let gpu = instances.get(key);
  if (!gpu) {
    gpu = mod.create(backend ? [`backend=${backend}`] : []);
    instances.set(key, gpu);
  }
  // tfjs-backend-webgpu checks `navigator.gpu` when a backend is constructed.
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator == null)
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  g.navigator!.gpu = gpu;
  return gpu;
}

/**
 * Register the tfjs webgpu backend on Dawn. With `allowSoftware` false (the automatic choice)
 * only Dawn's default backend is tried and a software adapter is refused; with it true (a forced
 * `webgpu`) Dawn's OpenGL ES backend is tried next, as a compatibility adapter.
 */
export async function registerDawn(allowSoftware: boolean): Promise<WebGPUAdapterReport> {
  const mod = await loadDawn();
  const named = process.env[WEBGPU_BACKEND_ENV] || null;
  if (named === 'opengles' || named === 'opengl') process.env.EGL_PLATFORM ??= 'surfaceless';
  const attempts: Array<{ backend: string | null; levels: string[] }> = named
    ? [{ backend: named, levels: ['core', 'compatibility'] }]
    : allowSoftware
      ? [
          { backend: null, levels: ['core'] },
          { backend: 'opengles', levels: ['compatibility'] },
        ]
      : [{ backend: null, levels: ['core'] }];
  const failures: string[] = [];
  for (const { backend, levels } of attempts) {
    if (backend === 'opengles') process.env.EGL_PLATFORM ??= 'surfaceless';
    const source = `dawn (npm webgpu, ${backend ? `backend=${backend}` : 'default backend'})`;
    try {
      return await registerWebGPU(instance(mod, backend), { allowSoftware, source, featureLevels: levels });
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  throw new Error(failures.join('; '));
}
