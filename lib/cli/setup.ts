/**
 * One-time (and idempotent) set-up of the workbook, run by `npm start` and before `npm test`:
 *
 * 1. builds the library into dist/lib when a source is newer than the build (notebooks import
 *    the build: `import * as sm from '../dist/lib/node.js'`);
 * 2. checks that Jupyter (notebook, nbclient, nbconvert) is importable by a Python 3; when it is
 *    missing it installs Debian's packages (as root on Debian/Ubuntu) or prints the exact
 *    apt-get (not root) or pip (other systems) command to run, and stops;
 * 3. registers the tslab kernel spec inside the project (.jupyter/, found through JUPYTER_PATH;
 *    nothing global changes);
 * 4. with `--for test`, also checks for Chromium (the browser test), the same way, and for a
 *    software WebGPU adapter on Linux (Mesa llvmpipe through EGL): installed as root on Debian,
 *    otherwise only advised, since the webgpu tests then skip saying why.
 *
 * Usage: tsx lib/cli/setup.ts [--for start|test]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DEBIAN_BROWSER_PACKAGES,
  DEBIAN_SOFTWARE_GPU_PACKAGES,
  DEBIAN_JUPYTER_PACKAGES,
  JUPYTER_DIR,
  KERNEL_NAME,
  KERNEL_SPEC,
  PIP_JUPYTER_PACKAGES,
  PYTHON_MODULES,
  ROOT,
  TSC,
  TSLAB_BIN,
  anyPython,
  findJupyterPython,
  isDebian,
  isRoot,
  jupyterEnv,
  missingPythonModules,
  registeredKernelArgv,
} from './jupyter.js';

/** A set-up step that cannot be done here; the message says what the user must run. */
export class SetupError extends Error {}

/** Also report steps with nothing to do ("Jupyter found"); on for the setup/start commands. */
let chatty = false;
export function reportAllSteps(on: boolean): void {
  chatty = on;
}

/** Report a step that did something (always) or found everything in place (when chatty). */
function log(message: string, didSomething = false): void {
  if (didSomething || chatty) console.log(`setup: ${message}`);
}
export { log as setupLog };

function newestMtime(dir: string, filter: (file: string) => boolean): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    // lib/jupyterlab/ holds the JupyterLab app's own packages and build (lib/cli/lab.ts).
    if (entry.isDirectory() && (entry.name === 'node_modules' || entry.name === 'build')) continue;
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(file, filter));
    else if (filter(file)) newest = Math.max(newest, fs.statSync(file).mtimeMs);
  }
  return newest;
}

/** Build lib/ → dist/lib with the project's TypeScript, unless the build is newer than every source. */
export function ensureBuild(options: { force?: boolean } = {}): void {
  const entry = path.join(ROOT, 'dist', 'lib', 'index.js');
  const sources = Math.max(
    newestMtime(path.join(ROOT, 'lib'), (f) => f.endsWith('.ts')),
    fs.statSync(path.join(ROOT, 'tsconfig.json')).mtimeMs,
    fs.statSync(path.join(ROOT, 'package.json')).mtimeMs,
  );
  if (!options.force && fs.existsSync(entry) && fs.statSync(entry).mtimeMs >= sources) {
    log('library build is up to date (dist/lib)');
    return;
  }
  const start = Date.now();
  const r = spawnSync(process.execPath, [TSC, '-p', path.join(ROOT, 'lib', 'tsconfig.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new SetupError(`building the library failed (tsc -p lib/tsconfig.json):\n${r.stdout}${r.stderr}`);
  }
  log(`built the library into dist/lib in ${((Date.now() - start) / 1000).toFixed(1)} s`, true);
}

function run(command: string, args: string[]): void {
  console.log(`setup: running ${[command, ...args].join(' ')}`);
  const r = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) throw new SetupError(`${[command, ...args].join(' ')} failed with exit code ${r.status}`);
}

/** What to do about missing system software: run apt-get (root on Debian) or tell the user. */
export type InstallPlan = { kind: 'apt-get'; commands: string[][] } | { kind: 'advice'; message: string };

/**
 * The plan for installing Debian `packages` (when `debian`) or, elsewhere, the pip packages
 * (`pip`, for software that pip provides; null if it does not): apt-get as root, else the
 * exact command for the user to run.
 */
export function installPlan(
  what: string,
  system: { debian: boolean; root: boolean; python: string | null },
  packages: string[],
  pip: string[] | null,
): InstallPlan {
  const aptArgs = ['install', '-y', '--no-install-recommends', ...packages];
  if (system.debian && system.root)
    return {
      kind: 'apt-get',
      commands: [
        ['apt-get', 'update', '-qq'],
        ['apt-get', ...aptArgs],
      ],
    };
  let command: string;
  if (system.debian) command = `sudo apt-get update && sudo apt-get ${aptArgs.join(' ')}`;
  else if (pip) command = `${system.python ?? 'python3'} -m pip install --user ${pip.join(' ')}`;
  else command = `install ${packages.join(', ')} with your system's package manager`;
  const extra =
    !system.debian && pip
      ? '\n(add jupyterlab to that list for JupyterLab; set SOFTMOE_PYTHON=/path/to/python3 to use another interpreter)'
      : '';
  return {
    kind: 'advice',
    message: `${what} is missing. Install it with:\n\n    ${command}\n${extra}\nthen run this command again.`,
  };
}

/** Run an install plan (apt-get as root) or throw its advice as a SetupError. */
export function carryOut(plan: InstallPlan): void {
  if (plan.kind === 'advice') throw new SetupError(plan.message);
  for (const [command, ...args] of plan.commands) run(command!, args);
}

function system(): { debian: boolean; root: boolean; python: string | null } {
  return { debian: isDebian(), root: isRoot(), python: anyPython() };
}

/** A Python 3 with Jupyter's modules; installs or explains how (see the file comment). */
export function ensureJupyter(): string {
  let python = findJupyterPython();
  if (python) {
    log(`Jupyter found (${python})`);
    return python;
  }
  const sys = system();
  const missing = sys.python ? missingPythonModules(sys.python) : PYTHON_MODULES;
  carryOut(
    installPlan(`Jupyter (python modules ${missing.join(', ')})`, sys, DEBIAN_JUPYTER_PACKAGES, PIP_JUPYTER_PACKAGES),
  );
  python = findJupyterPython();
  if (python) return python;
  throw new SetupError("Debian's Jupyter packages were installed but /usr/bin/python3 still cannot import them");
}

/** Register tslab's kernel spec under .jupyter/ (again if it points at another checkout). */
export function ensureKernel(python: string): void {
  const argv = registeredKernelArgv();
  if (argv && argv[0] === TSLAB_BIN && fs.existsSync(TSLAB_BIN)) {
    log(`tslab kernel registered (${path.relative(ROOT, KERNEL_SPEC)})`);
    return;
  }
  if (!fs.existsSync(TSLAB_BIN)) throw new SetupError(`${TSLAB_BIN} is missing: run npm install first`);
  const r = spawnSync(
    TSLAB_BIN,
    ['install', `--python=${python}`, `--prefix=${JUPYTER_DIR}`, `--binary=${TSLAB_BIN}`],
    { encoding: 'utf8' },
  );
  if (r.status !== 0 || registeredKernelArgv()?.[0] !== TSLAB_BIN) {
    throw new SetupError(`registering the tslab kernel failed:\n${r.stdout}${r.stderr}`);
  }
  // Check that Jupyter itself finds it through JUPYTER_PATH.
  const list = spawnSync(python, ['-m', 'jupyter_client.kernelspecapp', 'list', '--json'], {
    encoding: 'utf8',
    env: jupyterEnv(),
  });
  const found =
    list.status === 0 &&
    (JSON.parse(list.stdout) as { kernelspecs: Record<string, unknown> }).kernelspecs[KERNEL_NAME] != null;
  if (!found)
    throw new SetupError(
      `the tslab kernel spec was written to ${KERNEL_SPEC} but Jupyter does not list it:\n${list.stdout}${list.stderr}`,
    );
  log(`registered the tslab kernel in ${path.relative(ROOT, KERNEL_SPEC)}`, true);
}

/** Chromium for the browser test: its path, after installing it (root, Debian) if needed. */
export function ensureChromium(): string {
  const candidates = [process.env.SOFTMOE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    (p): p is string => Boolean(p),
  );
  const found = candidates.find((p) => fs.existsSync(p));
  if (found) {
    log(`Chromium found (${found})`);
    return found;
  }
  carryOut(
    installPlan(
      'Chromium (the browser test opens a notebook in it; SOFTMOE_CHROMIUM=/path names another)',
      system(),
      DEBIAN_BROWSER_PACKAGES,
      null,
    ),
  );
  if (fs.existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  throw new SetupError("Debian's chromium package was installed but /usr/bin/chromium is missing");
}

/** Whether Mesa's EGL/GLES libraries and llvmpipe driver (the software WebGPU adapter) are present. */
function softwareGpuPresent(): boolean {
  const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  const has = (file: string) => dirs.some((d) => fs.existsSync(path.join(d, file)));
  return has('libEGL.so.1') && has('libGLESv2.so.2') && (has('dri/swrast_dri.so') || has('dri/kms_swrast_dri.so'));
}

/** The software WebGPU adapter for the webgpu tests (Linux): install it as root on Debian, else advise. */
export function ensureSoftwareGpu(): void {
  if (process.platform !== 'linux' || softwareGpuPresent()) return;
  const plan = installPlan(
    'A software WebGPU adapter (Mesa llvmpipe through EGL, for the webgpu tests)',
    system(),
    DEBIAN_SOFTWARE_GPU_PACKAGES,
    null,
  );
  if (plan.kind === 'advice') {
    log(
      `${plan.message.split('\n')[0]} ${plan.message.split('\n')[2]?.trim() ?? ''} — without it the webgpu tests are skipped`,
    );
    return;
  }
  carryOut(plan);
}

export interface SetupResult {
  python: string;
  chromium: string | null;
}

/** Everything `npm start` (purpose 'start') or `npm test` (purpose 'test') needs. */
export function setup(purpose: 'start' | 'test' = 'start'): SetupResult {
  ensureBuild();
  const python = ensureJupyter();
  ensureKernel(python);
  const chromium = purpose === 'test' ? ensureChromium() : null;
  if (purpose === 'test') ensureSoftwareGpu();
  return { python, chromium };
}

/** True when `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script != null && pathToFileURL(path.resolve(script)).href === moduleUrl;
}

if (isMain(import.meta.url)) {
  const i = process.argv.indexOf('--for');
  const purpose = i >= 0 ? process.argv[i + 1] : 'start';
  if (purpose !== 'start' && purpose !== 'test') {
    console.error(`setup: --for must be start or test, got ${JSON.stringify(purpose)}`);
    process.exit(2);
  }
  reportAllSteps(true);
  try {
    setup(purpose);
  } catch (e) {
    if (e instanceof SetupError) {
      console.error(`setup: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
