/**
 * Finding Jupyter and the project's tslab kernel (shared by setup, start and the notebook runner).
 *
 * Facts this relies on: the `python3` on PATH may be an interpreter
 * without Jupyter, so Debian's `/usr/bin/python3` is tried first; tslab's kernel spec can live
 * inside the project (`.jupyter/share/jupyter/kernels/tslab`) and is found through JUPYTER_PATH,
 * so nothing global changes; with tslab installed, `node_modules/.bin/tsc` is tslab's TypeScript
 * 5.0.4, so the project's compiler is always called by path.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json), from this file's place in lib/cli/. */
export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (
      fs.existsSync(pkg) &&
      (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'soft-moe-workbook'
    )
      return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the soft-moe-workbook package.json above ${start}`);
    dir = parent;
  }
}

/** Where the project keeps its own Jupyter files (ignored by git). */
export const JUPYTER_DIR = path.join(ROOT, '.jupyter');
/** Kernel specs live under `<JUPYTER_PATH entry>/kernels/<name>/kernel.json`. */
export const JUPYTER_PATH_ENTRY = path.join(JUPYTER_DIR, 'share', 'jupyter');
export const KERNEL_NAME = 'tslab';
export const KERNEL_SPEC = path.join(JUPYTER_PATH_ENTRY, 'kernels', KERNEL_NAME, 'kernel.json');
export const TSLAB_BIN = path.join(ROOT, 'node_modules', '.bin', 'tslab');
/** The project's TypeScript 5.9 compiler (node_modules/.bin/tsc is tslab's 5.0.4). */
export const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
export const NOTEBOOKS_DIR = path.join(ROOT, 'notebooks');
export const BUILD_DIR = path.join(ROOT, 'build');

/** Python modules the notebook runner and the classic notebook need. */
export const PYTHON_MODULES = ['notebook', 'nbclient', 'nbconvert', 'nbformat', 'jupyter_client', 'ipykernel'];

/** Debian/Ubuntu packages that provide them (and `jupyter nbconvert`). */
export const DEBIAN_JUPYTER_PACKAGES = [
  'jupyter-notebook',
  'jupyter-nbconvert',
  'python3-nbclient',
  'python3-nbconvert',
  'python3-jupyter-client',
  'python3-ipykernel',
  'python3-nbformat',
];
/** The browser test's Chromium. */
export const DEBIAN_BROWSER_PACKAGES = ['chromium'];
/**
 * A software WebGPU adapter for the webgpu tests: Dawn's OpenGL ES backend on Mesa's llvmpipe
 * (libEGL, libGLESv2 and swrast_dri.so, which libgl1-mesa-dri provides).
 */
export const DEBIAN_SOFTWARE_GPU_PACKAGES = ['libegl1', 'libegl-mesa0', 'libgles2', 'libgl1-mesa-dri'];
/** pip packages for systems without Debian's packages. */
export const PIP_JUPYTER_PACKAGES = ['notebook', 'nbclient', 'nbconvert', 'nbformat', 'jupyter_client', 'ipykernel'];

/** Python interpreters to try, in order: $SOFTMOE_PYTHON, Debian's, then the one on PATH. */
function pythonCandidates(): string[] {
  const list: string[] = [];
  if (process.env.SOFTMOE_PYTHON) list.push(process.env.SOFTMOE_PYTHON);
  list.push('/usr/bin/python3');
  const onPath = which('python3');
  if (onPath) list.push(onPath);
  return [...new Set(list)].filter((p) => fs.existsSync(p));
}

/** The full path of a command on PATH, or null. */
export function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, command);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Python modules (of `modules`) that `python` cannot import. */
export function missingPythonModules(python: string, modules: readonly string[] = PYTHON_MODULES): string[] {
  const code = `import importlib.util, sys\nprint(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))`;
  const r = spawnSync(python, ['-c', code, ...modules], { encoding: 'utf8' });
  if (r.status !== 0) return [...modules];
  return r.stdout.trim().split(/\s+/).filter(Boolean);
}

/** The first interpreter that has every Jupyter module we need, or null. */
export function findJupyterPython(): string | null {
  for (const python of pythonCandidates()) if (missingPythonModules(python).length === 0) return python;
  return null;
}

/** Some Python 3 interpreter (for the pip advice), or null. */
export function anyPython(): string | null {
  return pythonCandidates()[0] ?? null;
}

/** True where Debian's package tools exist. */
export function isDebian(): boolean {
  return fs.existsSync('/etc/debian_version') && which('apt-get') != null;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Environment for Jupyter processes: the project's kernel spec on JUPYTER_PATH (prepended). */
export function jupyterEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const current = process.env.JUPYTER_PATH;
  return {
    ...process.env,
    JUPYTER_PATH: current ? `${JUPYTER_PATH_ENTRY}${path.delimiter}${current}` : JUPYTER_PATH_ENTRY,
    // Python warns about frozen modules when a debugger could attach; it is noise here.
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
    ...extra,
  };
}

/** The argv of the project's registered kernel spec, or null when there is none. */
export function registeredKernelArgv(): string[] | null {
  try {
    const spec = JSON.parse(fs.readFileSync(KERNEL_SPEC, 'utf8')) as { argv?: string[] };
    return spec.argv ?? null;
  } catch {
    return null;
  }
}

/** JupyterLab's launcher on PATH (pip installs it as `jupyter-lab`), or null. */
export function findJupyterLab(): string | null {
  return which('jupyter-lab');
}
