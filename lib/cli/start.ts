/**
 * `npm start`: set up (build, Jupyter, tslab kernel; see setup.ts), then open the workbook in
 * the first of: a JupyterLab the user installed (`jupyter-lab` on PATH, e.g. from pip); the
 * workbook's own JupyterLab (lib/jupyterlab/, built and its server packages installed by lab.ts
 * when missing); Debian's classic notebook (when the own JupyterLab cannot be set up here; the
 * reason is printed). It serves only on 127.0.0.1, rooted at notebooks/, with a random token.
 * Jupyter opens a browser tab itself and prints the URL (with its token) to use when it cannot. Extra arguments go to Jupyter: `npm start -- --port 8899`.
 * Ctrl-C (or SIGTERM to npm's process group) stops the server and its kernels (child-cleanup.ts).
 */
import { spawn } from 'node:child_process';
import { superviseChild } from './child-cleanup.js';
import { NOTEBOOKS_DIR, findJupyterLab, isRoot, jupyterEnv } from './jupyter.js';
import { ensureLab, labServerCommand } from './lab.js';
import { SetupError, isMain, reportAllSteps, setup } from './setup.js';

/**
 * The command that serves the workbook: an installed JupyterLab, else the workbook's own
 * JupyterLab when `bundledLab` (it is ready), else the classic notebook.
 */
export function serverCommand(
  python: string,
  extra: string[] = [],
  options: { bundledLab?: boolean } = {},
): { command: string; args: string[]; name: string } {
  const common = ['--ip=127.0.0.1', `--notebook-dir=${NOTEBOOKS_DIR}`, ...(isRoot() ? ['--allow-root'] : []), ...extra];
  const lab = findJupyterLab();
  if (lab) return { command: lab, args: common, name: `JupyterLab (${lab})` };
  if (options.bundledLab)
    return { ...labServerCommand(python, common), name: "the workbook's JupyterLab (lib/jupyterlab)" };
  return { command: python, args: ['-m', 'notebook', ...common], name: 'the classic notebook' };
}

/** Make the workbook's own JupyterLab ready; false (with the reason printed) when it cannot be. */
function bundledLabReady(python: string): boolean {
  try {
    ensureLab(python);
    return true;
  } catch (e) {
    if (!(e instanceof SetupError)) throw e;
    console.error(
      `start: the workbook's JupyterLab cannot be set up here:\n${e.message}\nstart: falling back to the classic notebook.`,
    );
    return false;
  }
}

if (isMain(import.meta.url)) {
  let python: string;
  reportAllSteps(true);
  try {
    python = setup('start').python;
  } catch (e) {
    if (e instanceof SetupError) {
      console.error(`setup: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  const bundledLab = findJupyterLab() == null && bundledLabReady(python);
  const { command, args, name } = serverCommand(python, process.argv.slice(2), { bundledLab });
  console.log(`start: opening the workbook in ${name} (${[command, ...args].join(' ')})`);
  // Jupyter runs in its own process group; Ctrl-C, SIGTERM or SIGHUP reach it once through
  // superviseChild, which then waits for its shutdown and stops any kernel left behind.
  const child = spawn(command, args, { stdio: 'inherit', env: jupyterEnv(), detached: true });
  superviseChild(child);
}
