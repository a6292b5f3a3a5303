// End-to-end: the core library (backend choice, ops, moe, vit) bundled for the browser with
// esbuild (platform 'browser': a `node:` import on that path fails the build), served from
// 127.0.0.1 (WebGPU needs a secure context) and run in headless Chromium (Debian's, through
// playwright-core) on WebGPU (`--enable-unsafe-webgpu`: Chromium's SwiftShader adapter without a
// GPU) and on tfjs's WebGL backend. Every golden case must pass there as in Node.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BUILD_DIR, ROOT } from '../../lib/cli/jupyter.js';
import { ensureChromium } from '../../lib/cli/setup.js';
import { loadGolden } from '../helpers/golden.js';
import type { PageResult } from './golden-page.js';

const WORK = path.join(BUILD_DIR, 'browser-golden');
const FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Bundle test/browser/golden-page.ts for the browser; returns the bundle's size in bytes. */
export async function bundleGoldenPage(outfile: string): Promise<number> {
  await build({
    entryPoints: [path.join(ROOT, 'test', 'browser', 'golden-page.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outfile,
    // The native backends are Node-only optional packages, imported by a guarded dynamic import.
    external: ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
    logLevel: 'error',
  });
  return fs.statSync(outfile).size;
}

function serve(dir: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').split('?')[0] === '/' ? 'index.html' : path.basename(req.url ?? '');
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': name.endsWith('.html') ? 'text/html' : 'text/javascript' })
      .end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('the core library in a real browser: golden cases on WebGPU and WebGL', function () {
  this.timeout(300000);
  let browser: Browser | null = null;
  let server: http.Server | null = null;
  let page: Page;
  const cases = loadGolden();

  before(async function () {
    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(WORK, { recursive: true });
    await bundleGoldenPage(path.join(WORK, 'golden-page.js'));
    fs.writeFileSync(
      path.join(WORK, 'index.html'),
      '<!doctype html><meta charset="utf-8"><title>golden</title><script type="module" src="golden-page.js"></script>\n',
    );
    server = await serve(WORK);
    browser = await chromium.launch({ executablePath: ensureChromium(), args: FLAGS });
    page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page
      .waitForFunction(() => 'softmoeGolden' in globalThis, null, { timeout: 60000 })
      .catch(() => {
        throw new Error(`the bundle did not load: ${errors.join('; ')}`);
      });
  });

  after(async function () {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(null)));
    fs.rmSync(WORK, { recursive: true, force: true });
  });

  for (const backend of ['webgpu', 'webgl']) {
    it(`${backend}: every golden output, decision and gradient within 1e-4 + 1e-3·|reference|; the ViT runs; no leak`, async function () {
      const result = (await page.evaluate(
        ([c, b]) =>
          (globalThis as unknown as { softmoeGolden: (c: unknown, b: string) => Promise<unknown> }).softmoeGolden(c, b),
        [cases, backend] as const,
      )) as PageResult;
      console.log(`      ${result.description}`);
      expect(result.backend).to.equal(backend);
      if (backend === 'webgpu') expect(result.adapter, 'adapter report').to.not.equal(null);
      expect(result.cases.length).to.equal(cases.length);
      for (const c of result.cases) {
        expect(c.uncovered, `${c.name}: reference entries not compared`).to.deep.equal([]);
        const bad = c.results.filter((r) => !r.ok).map((r) => `${r.key} (${r.detail})`);
        expect(bad, `${c.name} on ${backend}`).to.deep.equal([]);
      }
      const worst = Math.max(...result.cases.flatMap((c) => c.results.map((r) => r.worstRatio)));
      console.log(`      ${cases.length} cases; worst |error| / tolerance ${worst.toFixed(3)}`);
      expect(result.vitLogits.length).to.equal(6);
      expect(result.vitLogits.every(Number.isFinite)).to.equal(true);
      expect(result.tensorsLeaked, 'tensors left after the cases').to.equal(0);
    });
  }
});
