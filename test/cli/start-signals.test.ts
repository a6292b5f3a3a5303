/**
 * `npm start` stops cleanly: SIGTERM to npm's process group (what a terminal, a service manager
 * or `kill -- -PGID` sends) leaves no Jupyter server and no tslab kernel behind.
 * Starts the real server (the classic notebook here) on 127.0.0.1 and a real tslab kernel.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { findJupyterPython, registeredKernelArgv } from '../../lib/cli/jupyter.js';
import { findProjectRoot } from '../../lib/data/paths.js';

const ROOT = findProjectRoot();

/** Pids whose command line contains every one of `parts`. */
function pidsWith(...parts: string[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (parts.every((p) => cmd.includes(p))) out.push(Number(e));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cli/start: npm start and signals', function () {
  this.timeout(120000);

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} to npm start's process group leaves no server and no kernel running`, async function () {
      // Without Jupyter or the project's kernel spec (npm run setup) there is nothing to start.
      if (findJupyterPython() == null || registeredKernelArgv() == null) this.skip();
      const port = 20000 + (process.pid % 20000);
      const token = `t${process.pid}`;
      // Both spellings: npm start may open the classic notebook (NotebookApp) or a jupyter_server
      // based JupyterLab (ServerApp); each ignores the other's section.
      const npm = spawn(
        'npm',
        [
          'start',
          '--',
          `--port=${port}`,
          '--port-retries=0',
          '--no-browser',
          `--NotebookApp.token=${token}`,
          `--ServerApp.token=${token}`,
        ],
        {
          cwd: ROOT,
          detached: true, // its own process group, as a terminal gives it
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let log = '';
      npm.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      npm.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
      const base = `http://127.0.0.1:${port}`;
      let kernelId = '';
      try {
        for (let i = 0; ; i++) {
          try {
            const r = await fetch(`${base}/api/kernels?token=${token}`);
            if (r.ok) break;
          } catch {
            // not up yet
          }
          if (i > 600) throw new Error(`the server did not come up:\n${log}`);
          await sleep(100);
        }
        const r = await fetch(`${base}/api/kernels?token=${token}`, {
          method: 'POST',
          body: JSON.stringify({ name: 'tslab' }),
          headers: { 'Content-Type': 'application/json' },
        });
        kernelId = ((await r.json()) as { id: string }).id;
        let kernels: number[] = [];
        for (let i = 0; i < 300 && kernels.length === 0; i++) {
          kernels = pidsWith('tslab', `kernel-${kernelId}.json`);
          await sleep(100);
        }
        expect(kernels, `no tslab kernel process for ${kernelId}\n${log}`).to.have.length.greaterThan(0);
        const servers = pidsWith('notebook', `--port=${port}`);
        expect(servers).to.have.length.greaterThan(0);

        process.kill(-(npm.pid as number), signal);
        const code = await Promise.race([exited, sleep(60000).then(() => 'timeout' as const)]);
        expect(code, log).to.not.equal('timeout');
        for (let i = 0; i < 50 && [...kernels, ...servers].some(alive); i++) await sleep(100);
        expect(kernels.filter(alive), `kernel left running\n${log}`).to.deep.equal([]);
        expect(servers.filter(alive), `server left running\n${log}`).to.deep.equal([]);
      } finally {
        // Leave nothing behind even when an assertion failed.
        for (const pid of [
          ...pidsWith('tslab', `kernel-${kernelId || 'none'}.json`),
          ...pidsWith('notebook', `--port=${port}`),
        ]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        try {
          process.kill(-(npm.pid as number), 'SIGKILL');
        } catch {
          // gone
        }
        spawnSync('true');
      }
    });
  }

  it('superviseChild: a descendant left in a session of its own (a kernel Jupyter failed to stop) is killed too', async function () {
    const marker = `sleep-marker-${process.pid}`;
    // bash starts `sleep` in a new session (as jupyter_client starts kernels) and waits; SIGTERM
    // ends bash at once, so only the supervisor can stop the sleeper.
    const script = [
      "import { spawn } from 'node:child_process';",
      "import { superviseChild } from './lib/cli/child-cleanup.ts';",
      `const c = spawn('bash', ['-c', 'setsid bash -c "exec -a ${marker} sleep 600" & wait'], { detached: true, stdio: 'ignore' });`,
      'superviseChild(c, { log: () => undefined });',
    ].join('\n');
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => p.on('exit', resolve));
    let sleepers: number[] = [];
    for (let i = 0; i < 200 && sleepers.length === 0; i++) {
      await sleep(50);
      sleepers = pidsWith(marker);
    }
    expect(sleepers).to.have.length(1);
    await sleep(1200); // the supervisor's descendant list refreshes every second
    p.kill('SIGTERM');
    await exited;
    for (let i = 0; i < 30 && sleepers.some(alive); i++) await sleep(100);
    const left = sleepers.filter(alive);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(left).to.deep.equal([]);
  });
});
