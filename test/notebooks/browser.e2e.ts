// End-to-end: the executed tour notebook, served by Jupyter's classic notebook server on
// 127.0.0.1, opened in headless Chromium (Debian's, through playwright-core); plotly must have
// drawn the dispatch heat map. Run by `npm run test:browser` after `npm run test:notebooks`
// (it executes the tour itself when build/notebooks/ holds no fresh executed copy).
//
// Executed notebooks are untrusted until signed, and Jupyter strips their scripts: the copy
// opened here is signed with a secret in a Jupyter data folder of its own (nothing global).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { BUILD_DIR, NOTEBOOKS_DIR, ROOT, isRoot, jupyterEnv } from '../../lib/cli/jupyter.js';
import { executeNotebook } from '../../lib/cli/notebook-exec.js';
import { readNotebook } from '../../lib/cli/notebook-files.js';
import { ensureBuild, ensureChromium, ensureJupyter, ensureKernel } from '../../lib/cli/setup.js';
import { CHROMIUM_FLAGS, freePort, stopServer, waitForServer } from '../helpers/server.js';

const NOTEBOOK = '00-tour.ipynb';
// A folder per process (removed afterwards): parallel runs in one checkout must not collide.
const WORK = path.join(BUILD_DIR, 'browser', `run-${process.pid}`);
const SCREENSHOT = path.join(BUILD_DIR, 'screenshots', '00-tour-notebook.png');

describe('the notebooks in a real browser', function () {
  this.timeout(300000);
  let server: ChildProcess | null = null;
  let browser: Browser | null = null;
  let serverBase: { base: string; token: string; root: string } | null = null;
  const otherNotebooks: string[] = [];

  after(async () => {
    await browser?.close();
    if (server) await stopServer(server);
    fs.rmSync(WORK, { recursive: true, force: true });
  });

  it('serves the signed, executed notebook and plotly draws the dispatch heat map', async () => {
    ensureBuild();
    const python = ensureJupyter();
    ensureKernel(python);
    const executablePath = ensureChromium();

    // 1. An executed copy: the runner's, if newer than the notebook and the library build.
    const source = path.join(NOTEBOOKS_DIR, NOTEBOOK);
    const executed = path.join(BUILD_DIR, 'notebooks', NOTEBOOK);
    const mtime = (f: string) => fs.statSync(f).mtimeMs;
    const fresh =
      fs.existsSync(executed) &&
      mtime(executed) > mtime(source) &&
      mtime(executed) > mtime(path.join(ROOT, 'dist', 'lib', 'node.js'));
    if (!fresh) {
      const r = await executeNotebook(source, { python, executed, html: false, env: { SOFTMOE_QUICK: '1' } });
      expect(r.ok, `executing ${NOTEBOOK} failed: ${r.failure?.message}`).to.equal(true);
    }
    const outputs = readNotebook(executed).cells.flatMap((c) => c.outputs ?? []);
    expect(JSON.stringify(outputs)).to.contain('application/vnd.plotly.v1+json');

    // 2. A private Jupyter: its own config, data (signing secret) and runtime folders.
    fs.rmSync(WORK, { recursive: true, force: true });
    const root = path.join(WORK, 'root');
    fs.mkdirSync(root, { recursive: true });
    const opened = path.join(root, NOTEBOOK);
    fs.copyFileSync(executed, opened);
    const env = jupyterEnv({
      JUPYTER_CONFIG_DIR: path.join(WORK, 'config'),
      JUPYTER_DATA_DIR: path.join(WORK, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(WORK, 'runtime'),
      SOFTMOE_QUICK: '1',
    });
    // Every other notebook executed by the runner (`npm run test:notebooks`, which `npm test` runs
    // first) is served too, for the second test.
    for (const name of fs.readdirSync(NOTEBOOKS_DIR).filter((f) => f.endsWith('.ipynb') && f !== NOTEBOOK)) {
      const copy = path.join(BUILD_DIR, 'notebooks', name);
      if (fs.existsSync(copy) && mtime(copy) > mtime(path.join(NOTEBOOKS_DIR, name))) {
        fs.copyFileSync(copy, path.join(root, name));
        otherNotebooks.push(name);
      }
    }
    for (const file of [opened, ...otherNotebooks.map((n) => path.join(root, n))]) {
      const sign = spawnSync(python, ['-m', 'nbformat.sign', file], { env, encoding: 'utf8' });
      expect(sign.status, `signing ${path.basename(file)} failed: ${sign.stdout}${sign.stderr}`).to.equal(0);
    }
    serverBase = null;

    // 3. The classic notebook server on 127.0.0.1, a free port and a random token.
    const port = await freePort();
    const token = randomBytes(16).toString('hex');
    let serverLog = '';
    server = spawn(
      python,
      [
        '-m',
        'notebook',
        '--no-browser',
        '--ip=127.0.0.1',
        `--port=${port}`,
        '--port-retries=0',
        `--NotebookApp.token=${token}`,
        `--notebook-dir=${root}`,
        ...(isRoot() ? ['--allow-root'] : []),
      ],
      { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    await waitForServer(`${base}/api/status?token=${token}`, server, () => serverLog, 60000);
    serverBase = { base, token, root };

    // 4. Chromium opens the notebook; plotly must draw (the figure's SVG and heat map image).
    browser = await chromium.launch({ executablePath, args: CHROMIUM_FLAGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${base}/notebooks/${NOTEBOOK}?token=${token}`, { waitUntil: 'domcontentloaded' });
    const plot = page.locator('.js-plotly-plot').first();
    await plot.waitFor({ state: 'visible', timeout: 90000 });
    await page.locator('.js-plotly-plot .main-svg').first().waitFor({ timeout: 30000 });
    const svgCount = await page.locator('.js-plotly-plot .main-svg').count();
    const heatmapImages = await page.locator('.js-plotly-plot g.hm image').count();
    // The heat map image covers the plot area (an axis of the wrong type leaves it empty), and
    // the x axis carries the slot labels.
    const imageBox = heatmapImages > 0 ? await page.locator('.js-plotly-plot g.hm image').first().boundingBox() : null;
    const xTicks = await page.locator('.js-plotly-plot .xtick text').allTextContents();
    const title = await page.locator('.js-plotly-plot .gtitle').first().textContent();
    const notLoaded = await page.getByText('plotly.js is not loaded on this page').count();
    // The untrusted-notebook note of each figure (lib/plot/html.ts) is removed once it is drawn.
    const notes = await page.locator('.softmoe-plot-note').count();
    // The markdown cells' equations are typeset by MathJax (Debian's libjs-mathjax, served locally).
    const mathSelector = '.MathJax, .MathJax_Display, .MathJax_CHTML';
    await page.locator(mathSelector).first().waitFor({ state: 'attached', timeout: 60000 });
    // …and MathJax 2 hides its "Loading …" message once it has typeset the whole page.
    // (A string: it runs in the page, and this project's TypeScript has no DOM types.)
    await page.waitForFunction(
      "(() => { const m = document.getElementById('MathJax_Message'); return m == null || m.style.display === 'none'; })()",
      null,
      { timeout: 60000 },
    );
    const equations = await page.locator(mathSelector).count();
    await plot.scrollIntoViewIfNeeded();
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    console.log(
      `      screenshot: ${path.relative(ROOT, SCREENSHOT)} (${svgCount} plotly SVG layers, ${heatmapImages} heat map image, ${equations} typeset equations)`,
    );

    expect(svgCount, 'plotly SVG layers').to.be.greaterThan(0);
    expect(heatmapImages, 'heat map image inside the plot').to.equal(1);
    expect(imageBox?.width ?? 0, 'heat map image width (px)').to.be.greaterThan(200);
    expect(imageBox?.height ?? 0, 'heat map image height (px)').to.be.greaterThan(200);
    expect(xTicks.slice(0, 2)).to.deep.equal(['e0·s0', 'e0·s1']);
    expect(title).to.contain('Dispatch weights');
    expect(notLoaded).to.equal(0);
    expect(notes, 'untrusted notes left next to drawn figures').to.equal(0);
    expect(equations, 'equations typeset by MathJax').to.be.greaterThan(0);
    expect(
      pageErrors.filter((e) => /plotly|newPlot/i.test(e)),
      pageErrors.join('\n'),
    ).to.deep.equal([]);
  });
  it('draws every plotly figure of every other executed notebook', async function () {
    if (serverBase == null || browser == null) throw new Error('the first test did not start the server and browser');
    const notebooks = fs.readdirSync(NOTEBOOKS_DIR).filter((f) => f.endsWith('.ipynb') && f !== NOTEBOOK);
    const missing = notebooks.filter((n) => !otherNotebooks.includes(n));
    expect(
      missing,
      'notebooks without a fresh executed copy in build/notebooks (run `npm run test:notebooks` first)',
    ).to.deep.equal([]);
    const { base, token, root } = serverBase;
    const drawn: string[] = [];
    for (const name of otherNotebooks) {
      // Figures in the executed copy: outputs carrying plotly's JSON mime type.
      const figures = readNotebook(path.join(root, name))
        .cells.flatMap((c) => c.outputs ?? [])
        .filter((o) => JSON.stringify(o).includes('application/vnd.plotly.v1+json')).length;
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}/notebooks/${name}?token=${token}`, { waitUntil: 'domcontentloaded' });
      if (figures > 0) {
        await page.locator('.js-plotly-plot .main-svg').first().waitFor({ timeout: 90000 });
        // Plotly draws each figure as its script runs; wait until all are drawn.
        await page.waitForFunction(
          `document.querySelectorAll('.js-plotly-plot .main-svg').length > 0 && document.querySelectorAll('.js-plotly-plot').length >= ${figures}`,
          null,
          { timeout: 90000 },
        );
      }
      const plots = await page.locator('.js-plotly-plot').count();
      const notLoaded = await page.getByText('plotly.js is not loaded on this page').count();
      await page.close();
      drawn.push(`${name}: ${plots}/${figures}`);
      expect(plots, `${name}: plotly figures drawn`).to.equal(figures);
      expect(notLoaded, `${name}: figures without plotly.js`).to.equal(0);
    }
    console.log(`      figures drawn: ${drawn.join(', ')}`);
    expect(drawn.length).to.be.greaterThan(0);
  });
});
