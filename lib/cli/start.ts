/**
 * `npm start`: set up (build, Jupyter, tslab kernel; see setup.ts), then open the workbook —
 * JupyterLab when `jupyter-lab` is on PATH, else Debian's classic notebook — serving only on
 * 127.0.0.1, rooted at notebooks/. Jupyter opens a browser tab itself and prints the URL (with
 * its token) to use when it cannot. Extra arguments go to Jupyter: `npm start -- --port 8899`.
 * Ctrl-C (or SIGTERM to npm's process group) stops the server and its kernels (child-cleanup.ts).
 */
import { spawn } from 'node:child_process';
import { superviseChild } from './child-cleanup.js';
import { NOTEBOOKS_DIR, findJupyterLab, isRoot, jupyterEnv } from './jupyter.js';
import { SetupError, isMain, reportAllSteps, setup } from './setup.js';

/** The command that serves the workbook: JupyterLab if installed, else the classic notebook. */
export function serverCommand(python: string, extra: string[] = []): { command: string; args: string[]; name: string } {
  const common = ['--ip=127.0.0.1', `--notebook-dir=${NOTEBOOKS_DIR}`, ...(isRoot() ? ['--allow-root'] : []), ...extra];
  const lab = findJupyterLab();
  if (lab) return { command: lab, args: common, name: 'JupyterLab' };
  return { command: python, args: ['-m', 'notebook', ...common], name: 'the classic notebook' };
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
  const { command, args, name } = serverCommand(python, process.argv.slice(2));
  console.log(`start: opening the workbook in ${name} (${[command, ...args].join(' ')})`);
  // Jupyter runs in its own process group; Ctrl-C, SIGTERM or SIGHUP reach it once through
  // superviseChild, which then waits for its shutdown and stops any kernel left behind.
  const child = spawn(command, args, { stdio: 'inherit', env: jupyterEnv(), detached: true });
  superviseChild(child);
}
