import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { expect } from 'chai';
import { terminalProgress, formatProgress } from '../../lib/plot/terminal-progress.js';
import { barChart, describeFigure, heatmap, imageGrid, lineChart, scatterChart } from '../../lib/plot/figure.js';
import { escapeFigureText, figureHtml, plotlyJs, standaloneHtml, writeHtml } from '../../lib/plot/html.js';
import { inNotebook, quickMode, quickOr } from '../../lib/plot/notebook.js';
import { PLOTLY_MIME, figureBundle, show } from '../../lib/plot/show.js';

describe('plot/show and HTML', () => {
  const fig = heatmap(
    [
      [0, 1],
      [1, 0],
    ],
    { title: 'a </script> title' },
  );

  it('every string reaching HTML is escaped: titles, names, labels, hover text, ids (issue 12)', () => {
    const evil = '<img src=x onerror=alert(1)>';
    const figures = [
      lineChart([{ name: evil, y: [1, 2] }], { title: evil, xTitle: evil, yTitle: evil }),
      scatterChart([{ name: evil, x: [1], y: [2] }]),
      heatmap([[1]], { xLabels: [evil], yLabels: [evil], zTitle: evil }),
      barChart([{ name: evil, x: [evil], y: [1] }]),
      imageGrid(
        [
          [
            [0, 1],
            [1, 0],
          ],
        ],
        { titles: [evil], title: evil },
      ),
    ];
    for (const f of figures) {
      const bundle = figureBundle(f);
      expect(JSON.stringify(bundle[PLOTLY_MIME])).to.not.contain('<img');
      expect(bundle['text/html'] as string).to.not.contain('<img');
      expect(standaloneHtml(f, evil)).to.not.contain('<img');
    }
    expect(escapeFigureText({ a: ['x & y < z'], n: 1, t: new Float32Array([1]) })).to.deep.equal({
      a: ['x &amp; y &lt; z'],
      n: 1,
      t: new Float32Array([1]),
    });
    expect(() => figureHtml(fig, { id: '"><script>alert(1)</script>' })).to.throw(
      /figureHtml id must be letters, digits/,
    );
    expect(() => lineChart([{ name: 'a', y: [1] }], { titel: 'x' } as never)).to.throw(
      /lineChart: unknown option "titel" — did you mean "title"\?/,
    );
    expect(() => heatmap([[1]], { logX: 'yes' } as never)).to.throw('heatmap: logX must be true or false, got "yes"');
  });

  it('a bundle carries plotly JSON, an HTML fallback and a text summary', () => {
    const bundle = figureBundle(fig);
    expect(Object.keys(bundle).sort()).to.deep.equal([PLOTLY_MIME, 'text/html', 'text/plain'].sort());
    // Strings reach plotly as text: &, < and > as entities (plotly decodes them when drawing).
    expect(bundle[PLOTLY_MIME]).to.deep.equal({
      data: fig.data,
      layout: { ...fig.layout, title: { text: 'a &lt;/script&gt; title' } },
    });
    expect(bundle['text/plain']).to.equal('"a </script> title": heatmap 2×2 (0 … 1)');
    const html = bundle['text/html'] as string;
    // Without includePlotly the fragment is small and waits for window.Plotly.
    expect(html.length).to.be.lessThan(5000);
    expect(html).to.contain('window.Plotly.newPlot');
    // The title's "</script>" must not close the script element early.
    expect(html.match(/<\/script>/g)).to.have.length(1);
  });

  it('an untrusted notebook (scripts stripped) still shows the summary and how to trust it', () => {
    const html = figureHtml(fig, { includePlotly: false });
    // What Jupyter's sanitizer leaves of an untrusted output: the markup without its scripts.
    const visible = html
      .replace(/<script[\s\S]*?<\/script>/g, '')
      .replace(/<[^>]+>/g, '')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
    expect(visible).to.contain(describeFigure(fig));
    expect(visible).to.contain('not trusted');
    expect(visible).to.contain('jupyter trust');
    // The plot <div> itself has no height until the script draws, so no empty box remains.
    expect(html).to.match(/<div id="[^"]+" class="softmoe-plot" style="width: [^;]+;"><\/div>/);
  });

  it('includePlotly inlines plotly.js once, guarded by window.Plotly', () => {
    const html = figureHtml(fig, { includePlotly: true });
    expect(html.length).to.be.greaterThan(plotlyJs().length);
    expect(html.startsWith('<script type="text/javascript">if (!window.Plotly)')).to.equal(true);
    expect(html.split('plotly.js v3.').length - 1).to.equal(1);
  });

  it('the inlined plotly.js lands on window.Plotly even where require.js (AMD) and CommonJS globals exist', () => {
    // Run the loader script in a sandbox that looks like the classic notebook page: a window
    // with `define.amd` (require.js) and a global `module`. plotly.js must not register with
    // either; the draw script must then call window.Plotly.newPlot with the figure.
    const html = figureHtml(fig, { includePlotly: true, id: 'plot-1' });
    const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(scripts).to.have.length(2);
    const calls: unknown[][] = [];
    const element = { id: 'plot-1', textContent: '' };
    const amd: string[] = [];
    const sandbox: Record<string, unknown> = {
      define: Object.assign((...args: unknown[]) => amd.push(String(args.length)), { amd: true }),
      module: { exports: {} },
      document: { getElementById: (id: string) => (id === 'plot-1' ? element : null) },
      setTimeout: () => 0,
    };
    sandbox.window = sandbox;
    sandbox.self = sandbox;
    const context = vm.createContext(sandbox);
    // Stand-in for plotly.js: the real bundle needs a DOM; its loader wrapper is what is tested.
    const loader = scripts[0]!.replace(
      plotlyJs(),
      'if (typeof module === "object" && module && module.exports) { module.exports = 1 } else { window.Plotly = { newPlot: function () { window.__calls.push([].slice.call(arguments)); } }; }',
    );
    sandbox.__calls = calls;
    vm.runInContext(loader, context);
    vm.runInContext(scripts[1]!, context);
    expect(amd).to.deep.equal([]);
    expect((sandbox.module as { exports: unknown }).exports).to.deep.equal({});
    expect(calls).to.have.length(1);
    expect(calls[0]![0]).to.equal(element);
    expect(calls[0]![1]).to.deep.equal(fig.data);
  });

  it('writeHtml writes a standalone page that needs no network', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'softmoe-plot-'));
    const file = writeHtml(
      [fig, lineChart([{ name: 'loss', y: [3, 2, 1] }])],
      path.join(dir, 'sub', 'fig.html'),
      'Two <figures>',
    );
    const html = fs.readFileSync(file, 'utf8');
    expect(html).to.match(/^<!DOCTYPE html>/);
    expect(html).to.contain('<title>Two &lt;figures&gt;</title>');
    expect(html.match(/class="softmoe-plot"/g)).to.have.length(2);
    // No external resources outside plotly.js itself: no src= or href= to any URL, no <link>.
    const ours = html.replace(plotlyJs(), '');
    expect(ours).not.to.match(/(src|href)=["']?(https?:)?\/\//);
    expect(ours).not.to.match(/<link\b/);
    expect(() => standaloneHtml([])).to.throw(/at least one figure/);
    fs.rmSync(dir, { recursive: true });
  });

  it('outside a notebook, show() prints the summary instead of failing', () => {
    expect(inNotebook()).to.equal(false);
    const logged: string[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => logged.push(args.join(' '));
    try {
      show(fig);
    } finally {
      console.log = original;
    }
    expect(logged.join('\n')).to.contain('"a </script> title": heatmap 2×2');
    expect(() => show({} as never)).to.throw(/a figure must be an object \{data: Trace\[\], layout/);
  });

  it('quick mode follows SOFTMOE_QUICK', () => {
    const saved = process.env.SOFTMOE_QUICK;
    try {
      for (const [value, quick] of [
        ['1', true],
        ['yes', true],
        ['0', false],
        ['', false],
        ['false', false],
      ] as const) {
        process.env.SOFTMOE_QUICK = value;
        expect(quickMode(), `SOFTMOE_QUICK=${JSON.stringify(value)}`).to.equal(quick);
      }
      process.env.SOFTMOE_QUICK = '1';
      expect(quickOr(10, 1000)).to.equal(10);
      delete process.env.SOFTMOE_QUICK;
      expect(quickOr(10, 1000)).to.equal(1000);
    } finally {
      if (saved == null) delete process.env.SOFTMOE_QUICK;
      else process.env.SOFTMOE_QUICK = saved;
    }
  });
});

describe('plot/terminal-progress', () => {
  it('formats the bar, counts, percent and time left', () => {
    // 45 of 100 after 9 s: 20 ms per unit, 55 left → 11 s left; 45% of 24 cells = 10.8 → 11 filled.
    const line = formatProgress({ label: 'train', done: 45, total: 100, elapsedMs: 9000, note: 'loss 0.5' });
    expect(line).to.equal(`train ${'█'.repeat(11)}${'░'.repeat(13)}  45/100  45%  9.0 s, ~11.0 s left  loss 0.5`);
    expect(formatProgress({ label: '', done: 3, total: 3, elapsedMs: 125000 }, 0)).to.equal('3/3 100%  2 min 05 s');
  });

  it('in a log it prints at most one line per interval, and the final line', () => {
    let clock = 0;
    const written: string[] = [];
    const stream = { isTTY: false, write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream;
    const bar = terminalProgress({ total: 10, label: 'x', stream, intervalMs: 1000, now: () => clock });
    for (let i = 1; i <= 10; i++) {
      clock += 300;
      bar.update(i);
    }
    bar.finish('done');
    // Updates at t = 300 (first), 1500, 2700 pass the 1 s interval (t=300 → next ≥ 1300 → 1500 → ≥ 2500 → 2700), then finish.
    expect(written).to.have.length(4);
    expect(written[3]).to.match(/^x █{24} 10\/10 100% {2}3\.0 s {2}done\n$/);
    expect(() => terminalProgress({ total: 0 })).to.throw(/progress total must be an integer ≥ 1, got 0/);
  });

  it('on a TTY it redraws one line in place', () => {
    const written: string[] = [];
    const stream = {
      isTTY: true,
      columns: 200,
      write: (s: string) => written.push(s),
    } as unknown as NodeJS.WritableStream;
    const bar = terminalProgress({ total: 2, stream, intervalMs: 0 });
    bar.update(1);
    bar.finish();
    expect(written.every((s) => s.startsWith('\r'))).to.equal(true);
    expect(written[written.length - 1]!.endsWith('\n')).to.equal(true);
  });
});
