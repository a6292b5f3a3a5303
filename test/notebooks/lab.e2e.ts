// End-to-end: the workbook's own JupyterLab (lib/jupyterlab, what `npm start` opens on a machine
// without a pip-installed JupyterLab), served by Debian's jupyter-server through main.py on
// 127.0.0.1 with a token, driven in headless Chromium (Debian's, through playwright-core):
// - the page, the tree API and the TypeScript kernel answer (and not without the token);
// - the tour runs through the UI (Run › Run All Cells) on the tslab kernel: every cell replies
//   "ok", the plotly figures are drawn and the equations typeset; it is saved (File › Save),
//   reopened in a fresh page (the kernel keeps running) and checked again; a new figure shown
//   after that reload draws too (plotly.js comes with the front end, not with an output);
// - a notebook with a failing cell fails the same check (fixture failing-cell.ipynb);
// - an untrusted copy (edited outside Jupyter) still draws its figures.
// Screenshots go to build/screenshots/lab-*.png. Run by `npm run test:browser`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BUILD_DIR, NOTEBOOKS_DIR, ROOT, isRoot, jupyterEnv } from '../../lib/cli/jupyter.js';
import { LAB_MAIN, ensureLab } from '../../lib/cli/lab.js';
import { readNotebook } from '../../lib/cli/notebook-files.js';
import { ensureBuild, ensureChromium, ensureJupyter, ensureKernel } from '../../lib/cli/setup.js';
import {
  equationCounts,
  openNotebook,
  runAll,
  saveNotebook,
  savedFigures,
  waitForFigures,
  watchKernel,
  type RunResult,
} from '../helpers/lab-page.js';
import { CHROMIUM_FLAGS, freePort, stopServer, waitForServer } from '../helpers/server.js';

const TOUR = '00-tour.ipynb';
const BROKEN = 'failing-cell.ipynb';
const UNTRUSTED = 'untrusted-copy.ipynb';
// A folder per process (removed afterwards). Notebooks import '../dist/lib/index.js', so the
// served folder sits next to a link to the project's dist/.
const WORK = path.join(BUILD_DIR, 'lab-e2e', `run-${process.pid}`);
const SERVED = path.join(WORK, 'notebooks');
const SCREENSHOTS = path.join(BUILD_DIR, 'screenshots');

async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, name) });
}

function mustRunClean(run: RunResult, name: string): void {
  expect(run.failures, `${name}: cells that did not run cleanly`).to.deep.equal([]);
  expect(run.replies.length, `${name}: execute replies`).to.equal(run.codeCells);
}

describe('the workbook in its own JupyterLab (lib/jupyterlab) in a real browser', function () {
  this.timeout(420000);
  let server: ChildProcess | null = null;
  let browser: Browser | null = null;
  let base = '';
  let serverLog = '';
  const token = randomBytes(16).toString('hex');
  // A fresh workspace for each page, so that it shows just the notebook it opens.
  let pages = 0;
  const url = (name: string) => `${base}/lab/workspaces/page${++pages}/tree/${encodeURIComponent(name)}?token=${token}`;

  before(async function () {
    this.timeout(600000);
    ensureBuild();
    const python = ensureJupyter();
    ensureKernel(python);
    ensureLab(python);
    const executablePath = ensureChromium();

    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(SERVED, { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'dist'), path.join(WORK, 'dist'), 'dir');
    fs.copyFileSync(path.join(NOTEBOOKS_DIR, TOUR), path.join(SERVED, TOUR));
    fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'notebooks', BROKEN), path.join(SERVED, BROKEN));

    // A private Jupyter (config, data with the signing secret, runtime) and lab settings folder.
    const env = jupyterEnv({
      JUPYTER_CONFIG_DIR: path.join(WORK, 'config'),
      JUPYTER_DATA_DIR: path.join(WORK, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(WORK, 'runtime'),
      SOFTMOE_LAB_DIR: path.join(WORK, 'lab'),
      SOFTMOE_QUICK: '1',
    });
    const port = await freePort();
    server = spawn(
      python,
      [
        LAB_MAIN,
        '--no-browser',
        '--ip=127.0.0.1',
        `--port=${port}`,
        '--port-retries=0',
        `--ServerApp.token=${token}`,
        `--notebook-dir=${SERVED}`,
        ...(isRoot() ? ['--allow-root'] : []),
      ],
      { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
    base = `http://127.0.0.1:${port}`;
    await waitForServer(`${base}/api/status?token=${token}`, server, () => serverLog, 60000);
    browser = await chromium.launch({ executablePath, args: CHROMIUM_FLAGS });
  });

  after(async () => {
    await browser?.close();
    if (server) await stopServer(server);
    fs.rmSync(WORK, { recursive: true, force: true });
  });

  it('serves JupyterLab, the tree API and the TypeScript kernel on 127.0.0.1, only with the token', async () => {
    const page = await fetch(`${base}/lab?token=${token}`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.match(/<title>JupyterLab\b/);
    expect((await fetch(`${base}/api/contents`)).status, 'tree API without the token').to.equal(403);
    const tree = (await (await fetch(`${base}/api/contents?token=${token}`)).json()) as { content: { name: string }[] };
    expect(tree.content.map((f) => f.name)).to.include(TOUR);
    const specs = (await (await fetch(`${base}/api/kernelspecs?token=${token}`)).json()) as {
      kernelspecs: Record<string, { spec: { display_name: string } }>;
    };
    expect(specs.kernelspecs.tslab?.spec.display_name).to.equal('TypeScript');
  });

  it('runs the tour through the UI, draws its figures and typesets its equations; again after save and reopen', async () => {
    const file = path.join(SERVED, TOUR);
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const watched = watchKernel(page);
    await openNotebook(page, url(TOUR), watched);

    const run = await runAll(page, file, watched, 240000);
    mustRunClean(run, TOUR);
    await saveNotebook(page);
    const saved = readNotebook(file).cells.filter((c) => c.cell_type === 'code');
    expect(
      saved.every((c) => typeof c.execution_count === 'number'),
      'execution counts in the saved file',
    ).to.equal(true);
    const expected = savedFigures(file);
    expect(expected, 'plotly figures in the saved tour').to.be.greaterThan(0);
    const afterRun = await waitForFigures(page, expected);
    const equations = await equationCounts(page);
    await page
      .locator(`.jp-OutputArea-output[data-mime-type="application/vnd.plotly.v1+json"]`)
      .first()
      .scrollIntoViewIfNeeded();
    await screenshot(page, 'lab-00-tour-run.png');
    await page.close();
    expect(afterRun, 'figures after Run All').to.deep.equal({ outputs: expected, drawn: expected });
    expect(equations.typeset, 'typeset equations').to.be.greaterThan(0);
    expect(equations.errors, 'MathJax errors').to.equal(0);

    // Reopen in a fresh page: the outputs come from the saved file; the kernel still runs.
    const again = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    again.on('pageerror', (e) => pageErrors.push(e.message));
    const watchedAgain = watchKernel(again);
    await openNotebook(again, url(TOUR), watchedAgain);
    const reopened = await waitForFigures(again, expected);
    const equationsAgain = await equationCounts(again);
    expect(reopened, 'figures after reopening').to.deep.equal({ outputs: expected, drawn: expected });
    expect(equationsAgain.typeset).to.equal(equations.typeset);

    // A new figure in the reopened page (typed into a new cell and run from the keyboard): the
    // kernel inlined plotly.js (in text/html) only with its first figure, which this page never
    // ran; the figure must draw anyway.
    await again.locator('.jp-Notebook .jp-Cell .jp-InputPrompt').last().click();
    await again.keyboard.press('Escape');
    await again.keyboard.press('b');
    await again.keyboard.press('Enter');
    await again.keyboard.insertText(
      "sm.plot.show(sm.plot.heatmap([[0, 1], [1, 0]], { title: 'drawn after a reload' }));",
    );
    const before = watchedAgain.replies.length;
    await again.keyboard.press('Control+Enter');
    const deadline = Date.now() + 60000;
    while (watchedAgain.replies.length === before && Date.now() < deadline) await again.waitForTimeout(250);
    const rerun = await waitForFigures(again, expected + 1);
    await again.locator('.jp-Notebook .jp-Cell').last().scrollIntoViewIfNeeded();
    await screenshot(again, 'lab-00-tour-reopened.png');
    const newOutput = await again.locator('.jp-Notebook .jp-Cell').last().locator('.jp-OutputArea').allTextContents();
    await again.close();
    expect(
      watchedAgain.replies.slice(before).map((r) => r.status),
      `the new figure cell: ${newOutput.join(' ')}`,
    ).to.deep.equal(['ok']);
    expect(rerun, 'figures after a new figure in the reopened page').to.deep.equal({
      outputs: expected + 1,
      drawn: expected + 1,
    });
    expect(
      pageErrors.filter((e) => /plotly|newPlot|Maximum call stack/i.test(e)),
      pageErrors.join('\n'),
    ).to.deep.equal([]);
  });

  it('fails on a broken cell: the fixture failing-cell.ipynb reports its cell and message', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    const watched = watchKernel(page);
    await openNotebook(page, url(BROKEN), watched);
    const run = await runAll(page, path.join(SERVED, BROKEN), watched, 120000);
    await screenshot(page, 'lab-failing-cell.png');
    await page.close();
    if (run.replies.length === 0)
      console.log(consoleLines.filter((l) => !/events\/subscribe|Yjs|Y.Doc/.test(l)).join('\n'));
    expect(() => mustRunClean(run, BROKEN)).to.throw(/did not run cleanly/);
    expect(run.failures[0]).to.match(/^cell 2: error — .*depth/s);
    expect(run.replies.map((r) => r.status)).to.deep.equal(['ok', 'error', 'abort']);
  });

  it('draws the figures of an untrusted copy (a notebook changed outside Jupyter)', async () => {
    // The saved tour, changed so that its signature no longer matches: Jupyter calls it untrusted.
    const nb = JSON.parse(fs.readFileSync(path.join(SERVED, TOUR), 'utf8')) as { metadata: Record<string, unknown> };
    nb.metadata.edited_outside_jupyter = true;
    fs.writeFileSync(path.join(SERVED, UNTRUSTED), JSON.stringify(nb));
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    await openNotebook(page, url(UNTRUSTED), watchKernel(page));
    const expected = savedFigures(path.join(SERVED, UNTRUSTED));
    const counts = await waitForFigures(page, expected);
    await page
      .locator(`.jp-OutputArea-output[data-mime-type="application/vnd.plotly.v1+json"]`)
      .first()
      .scrollIntoViewIfNeeded();
    await screenshot(page, 'lab-untrusted-copy.png');
    const log = serverLog;
    await page.close();
    expect(log).to.contain(`Notebook ${UNTRUSTED} is not trusted`);
    expect(counts).to.deep.equal({ outputs: expected, drawn: expected });
  });
});
