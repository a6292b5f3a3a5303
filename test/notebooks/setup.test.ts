import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  DEBIAN_JUPYTER_PACKAGES,
  JUPYTER_PATH_ENTRY,
  KERNEL_SPEC,
  PIP_JUPYTER_PACKAGES,
  TSLAB_BIN,
  jupyterEnv,
  registeredKernelArgv,
} from '../../lib/cli/jupyter.js';
import { ensureJupyter, ensureKernel, installPlan } from '../../lib/cli/setup.js';
import { serverCommand } from '../../lib/cli/start.js';

describe('setup', () => {
  describe('installPlan: install as root on Debian, else print the exact command', () => {
    it('root on Debian: apt-get update, then apt-get install of the packages', () => {
      const plan = installPlan(
        'Jupyter',
        { debian: true, root: true, python: '/usr/bin/python3' },
        DEBIAN_JUPYTER_PACKAGES,
        PIP_JUPYTER_PACKAGES,
      );
      expect(plan).to.deep.equal({
        kind: 'apt-get',
        commands: [
          ['apt-get', 'update', '-qq'],
          ['apt-get', 'install', '-y', '--no-install-recommends', ...DEBIAN_JUPYTER_PACKAGES],
        ],
      });
    });

    it('not root on Debian: the sudo apt-get command, verbatim', () => {
      const plan = installPlan(
        'Jupyter',
        { debian: true, root: false, python: '/usr/bin/python3' },
        ['jupyter-notebook', 'python3-nbclient'],
        PIP_JUPYTER_PACKAGES,
      );
      expect(plan.kind).to.equal('advice');
      expect(plan.kind === 'advice' && plan.message).to.contain(
        '\n    sudo apt-get update && sudo apt-get install -y --no-install-recommends jupyter-notebook python3-nbclient\n',
      );
    });

    it('elsewhere: the pip command for the Python found', () => {
      const plan = installPlan(
        'Jupyter',
        { debian: false, root: false, python: '/opt/py/bin/python3' },
        DEBIAN_JUPYTER_PACKAGES,
        ['notebook', 'nbclient'],
      );
      expect(plan.kind === 'advice' && plan.message).to.contain(
        '\n    /opt/py/bin/python3 -m pip install --user notebook nbclient\n',
      );
    });
  });

  it('registers the tslab kernel inside the project, where Jupyter finds it through JUPYTER_PATH', () => {
    ensureKernel(ensureJupyter());
    expect(registeredKernelArgv()?.[0]).to.equal(TSLAB_BIN);
    expect(fs.existsSync(KERNEL_SPEC)).to.equal(true);
    expect(KERNEL_SPEC.startsWith(JUPYTER_PATH_ENTRY)).to.equal(true);
    expect(jupyterEnv().JUPYTER_PATH!.split(path.delimiter)[0]).to.equal(JUPYTER_PATH_ENTRY);
  });

  it('npm start serves on 127.0.0.1 from the notebooks folder', () => {
    const { args } = serverCommand('/usr/bin/python3', ['--port=9999']);
    expect(args).to.include('--ip=127.0.0.1');
    expect(args.some((a) => /^--notebook-dir=.*[\\/]notebooks$/.test(a))).to.equal(true);
    expect(args[args.length - 1]).to.equal('--port=9999');
  });
});
