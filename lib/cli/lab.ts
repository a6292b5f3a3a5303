/**
 * The workbook's own JupyterLab (lib/jupyterlab/): JupyterLab 4's front end built from pinned npm
 * packages, served by Debian's jupyter-server and jupyterlab-server through lib/jupyterlab/main.py.
 * JupyterLab itself is not packaged by Debian and PyPI may be unreachable; the npm registry is
 * what `npm install` already needs.
 *
 * ensureLab() makes it ready, doing only what is out of date:
 * 1. the Python side: `jupyter_server` and `jupyterlab_server` importable by the Jupyter Python
 *    (Debian's python3-jupyter-server and python3-jupyterlab-server: installed as root, else the
 *    exact command is printed, as for Jupyter itself in setup.ts);
 * 2. `npm ci` in lib/jupyterlab/ when its node_modules were not installed from the current
 *    package-lock.json (~470 MB, ~40 s with a warm network; scripts off, none is needed);
 * 3. webpack into lib/jupyterlab/build/ when a source of the app (its package files, index.js,
 *    plotly-extension.js, webpack.config.js) differs from the last build's.
 * Freshness is a SHA-256 of those inputs written next to each result, so a stale build is never
 * served after a `git pull`.
 *
 * Usage: tsx lib/cli/lab.ts   (also run by `npm run setup` and before `npm test`)
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, isDebian, isRoot, missingPythonModules } from './jupyter.js';
import { SetupError, carryOut, ensureJupyter, installPlan, isMain, reportAllSteps, setupLog } from './setup.js';

export const LAB_DIR = path.join(ROOT, 'lib', 'jupyterlab');
export const LAB_BUILD = path.join(LAB_DIR, 'build');
export const LAB_MAIN = path.join(LAB_DIR, 'main.py');
/** Where the app keeps user settings and workspaces (main.py; SOFTMOE_LAB_DIR overrides). */
export const LAB_USER_DIR = path.join(ROOT, '.jupyter', 'lab');
const MODULES_DIR = path.join(LAB_DIR, 'node_modules');
const MODULES_STAMP = path.join(MODULES_DIR, '.softmoe-lock.sha256');
const BUILD_STAMP = path.join(LAB_BUILD, '.softmoe-inputs.sha256');

/** Python modules main.py needs, and the packages that provide them. */
export const LAB_PYTHON_MODULES = ['jupyter_server', 'jupyterlab_server'];
export const DEBIAN_LAB_PACKAGES = ['python3-jupyter-server', 'python3-jupyterlab-server'];
export const PIP_LAB_PACKAGES = ['jupyter_server', 'jupyterlab_server'];

/** Files whose content decides the build (templates/ and main.py are read at run time). */
const BUILD_INPUTS = ['package.json', 'package-lock.json', 'index.js', 'plotly-extension.js', 'webpack.config.js'];

function sha256Of(files: string[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(path.join(LAB_DIR, file)));
  }
  return hash.digest('hex');
}

function stampMatches(stamp: string, digest: string): boolean {
  try {
    return fs.readFileSync(stamp, 'utf8').trim() === digest;
  } catch {
    return false;
  }
}

/** What ensureLabBuild() would do now: nothing, or the steps that are out of date. */
export function labBuildSteps(): ('npm ci' | 'webpack')[] {
  const steps: ('npm ci' | 'webpack')[] = [];
  if (!stampMatches(MODULES_STAMP, sha256Of(['package-lock.json']))) steps.push('npm ci');
  if (
    steps.length > 0 ||
    !stampMatches(BUILD_STAMP, sha256Of(BUILD_INPUTS)) ||
    !fs.existsSync(path.join(LAB_BUILD, 'bundle.js'))
  )
    steps.push('webpack');
  return steps;
}

function runIn(dir: string, command: string, args: string[], what: string): void {
  const start = Date.now();
  setupLog(`${what}: ${[command, ...args].join(' ')} (in ${path.relative(ROOT, dir)})`, true);
  const r = spawnSync(command, args, { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    throw new SetupError(
      `${what} failed (${[command, ...args].join(' ')} in ${path.relative(ROOT, dir)} exited with ${r.status ?? r.signal}); see the output above`,
    );
  }
  setupLog(`${what} done in ${((Date.now() - start) / 1000).toFixed(0)} s`, true);
}

/** Install the app's npm packages and build it, each only when out of date. */
export function ensureLabBuild(): void {
  const steps = labBuildSteps();
  if (steps.length === 0) {
    setupLog(`JupyterLab front end is up to date (${path.relative(ROOT, LAB_BUILD)})`);
    return;
  }
  if (steps.includes('npm ci')) {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    runIn(
      LAB_DIR,
      npm,
      ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
      'installing the JupyterLab front end (~470 MB)',
    );
    fs.writeFileSync(MODULES_STAMP, `${sha256Of(['package-lock.json'])}\n`);
  }
  fs.rmSync(LAB_BUILD, { recursive: true, force: true });
  runIn(
    LAB_DIR,
    process.execPath,
    [
      path.join(MODULES_DIR, 'webpack-cli', 'bin', 'cli.js'),
      '--config',
      'webpack.config.js',
      '--stats=errors-warnings',
    ],
    'building the JupyterLab front end',
  );
  fs.writeFileSync(BUILD_STAMP, `${sha256Of(BUILD_INPUTS)}\n`);
}

/** The server side: Debian's jupyter-server and jupyterlab-server (see the file comment). */
export function ensureLabServer(python: string): void {
  let missing = missingPythonModules(python, LAB_PYTHON_MODULES);
  if (missing.length === 0) {
    setupLog(`jupyter_server and jupyterlab_server found (${python})`);
    return;
  }
  carryOut(
    installPlan(
      `JupyterLab's server (python modules ${missing.join(', ')} for ${python})`,
      { debian: isDebian(), root: isRoot(), python },
      DEBIAN_LAB_PACKAGES,
      PIP_LAB_PACKAGES,
    ),
  );
  missing = missingPythonModules(python, LAB_PYTHON_MODULES);
  if (missing.length > 0)
    throw new SetupError(
      `${DEBIAN_LAB_PACKAGES.join(' ')} were installed but ${python} still cannot import ${missing.join(', ')}`,
    );
}

/** Server and front end ready (installing/building what is missing); throws SetupError. */
export function ensureLab(python: string): void {
  ensureLabServer(python);
  ensureLabBuild();
}

/** The command that serves the bundled JupyterLab with `python` (extra arguments last). */
export function labServerCommand(python: string, args: string[]): { command: string; args: string[] } {
  return { command: python, args: [LAB_MAIN, ...args] };
}

if (isMain(import.meta.url)) {
  reportAllSteps(true);
  try {
    ensureLab(ensureJupyter());
  } catch (e) {
    if (e instanceof SetupError) {
      console.error(`setup: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
