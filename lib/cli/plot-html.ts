/**
 * `npm run plot -- FIGURE.json [MORE.json …] OUT.html [--title TEXT]`: write plotly figures
 * (JSON files holding `{data, layout}`, e.g. saved from a figure builder with
 * `fs.writeFileSync(f, JSON.stringify(figure))`) to one standalone HTML page with plotly.js
 * inlined, which opens offline in any browser.
 */
import * as fs from 'node:fs';
import { writeHtml } from '../plot/html.js';
import type { Figure } from '../plot/figure.js';
import { isMain } from './setup.js';

export function readFigure(file: string): Figure {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read a JSON figure (${(e as Error).message})`);
  }
  const fig = value as Figure;
  if (fig == null || !Array.isArray(fig.data) || typeof fig.layout !== 'object' || fig.layout == null) {
    throw new Error(`${file}: expected a plotly figure {data: [...], layout: {...}}`);
  }
  return fig;
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  let title: string | undefined;
  const t = args.indexOf('--title');
  if (t >= 0) {
    title = args[t + 1];
    args.splice(t, 2);
  }
  const out = args.pop();
  if (!out || !out.endsWith('.html') || args.length === 0) {
    console.error('usage: npm run plot -- FIGURE.json [MORE.json …] OUT.html [--title TEXT]');
    process.exit(2);
  }
  try {
    const file = writeHtml(args.map(readFigure), out, title);
    console.log(`wrote ${file}`);
  } catch (e) {
    console.error(`plot: ${(e as Error).message}`);
    process.exit(1);
  }
}
