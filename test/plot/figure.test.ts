import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import {
  barChart,
  categoricalColors,
  describeFigure,
  heatmap,
  imageGrid,
  lineChart,
  paretoChart,
  paretoFront,
  scatterChart,
  toMatrix,
} from '../../lib/plot/figure.js';

describe('plot/figure', () => {
  describe('paretoFront', () => {
    // Points (cost x, quality y); by hand, with lower x and higher y better:
    // #0 (1, 0.5) kept (cheapest); #1 (2, 0.4) dominated by #0; #2 (2, 0.7) kept;
    // #3 (3, 0.7) dominated by #2 (same y, more cost); #4 (4, 0.9) kept; #5 (5, 0.8) dominated by #4.
    const points = [
      { x: 1, y: 0.5 },
      { x: 2, y: 0.4 },
      { x: 2, y: 0.7 },
      { x: 3, y: 0.7 },
      { x: 4, y: 0.9 },
      { x: 5, y: 0.8 },
    ];

    it('keeps exactly the non-dominated points, ordered by x', () => {
      expect(paretoFront(points)).to.deep.equal([0, 2, 4]);
    });

    it('follows the requested directions', () => {
      // Lower x and lower y better: #1 (2, 0.4) beats everything with x ≥ 2; #0 is cheapest.
      expect(paretoFront(points, { x: 'min', y: 'min' })).to.deep.equal([0, 1]);
      // Higher x and higher y better: #4 (4, 0.9) and #5 (5, 0.8).
      expect(paretoFront(points, { x: 'max', y: 'max' })).to.deep.equal([4, 5]);
    });

    it('agrees with a brute-force dominance check on random points', () => {
      let seed = 7;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const pts = Array.from({ length: 60 }, () => ({ x: Math.round(rand() * 20), y: Math.round(rand() * 20) }));
      const dominated = (i: number) =>
        pts.some((q, j) => j !== i && q.x <= pts[i]!.x && q.y >= pts[i]!.y && (q.x < pts[i]!.x || q.y > pts[i]!.y));
      const firstOfEqual = (i: number) => pts.findIndex((q) => q.x === pts[i]!.x && q.y === pts[i]!.y) === i;
      const expected = pts
        .map((_, i) => i)
        .filter((i) => !dominated(i) && firstOfEqual(i))
        .sort((a, b) => pts[a]!.x - pts[b]!.x);
      expect(paretoFront(pts)).to.deep.equal(expected);
    });

    it('rejects non-finite points by index', () => {
      expect(() =>
        paretoFront([
          { x: 1, y: 1 },
          { x: NaN, y: 2 },
        ]),
      ).to.throw(/pareto point #1 must have finite x and y, got \(NaN, 2\)/);
    });

    it('paretoChart draws the front of each series as a line through the front points', () => {
      const fig = paretoChart([{ name: 'Soft MoE', points }], { xTitle: 'GFLOPs', yTitle: 'precision@1' });
      expect(fig.data).to.have.length(2);
      expect(fig.data[1]!.x).to.deep.equal([1, 2, 4]);
      expect(fig.data[1]!.y).to.deep.equal([0.5, 0.7, 0.9]);
      expect(fig.data[0]!.mode).to.equal('markers');
      // A front is drawn in its series' colour; the second series takes plotly's second colour.
      const two = paretoChart([
        { name: 'a', points },
        { name: 'b', points },
      ]);
      expect(
        two.data.map((t) => (t.marker as { color?: string } | undefined)?.color ?? (t.line as { color: string }).color),
      ).to.deep.equal(['#1f77b4', '#1f77b4', '#ff7f0e', '#ff7f0e']);
    });
  });

  describe('builders', () => {
    it('lineChart turns typed arrays into plain arrays and defaults x to 0..n-1', () => {
      const fig = lineChart([{ name: 'loss', y: new Float32Array([3, 2, 1]) }], { title: 'Training', logY: true });
      const trace = fig.data[0]!;
      expect(Array.isArray(trace.y)).to.equal(true);
      expect(trace.y).to.deep.equal([3, 2, 1]);
      expect(trace.x).to.deep.equal([0, 1, 2]);
      expect((fig.layout.yaxis as { type: string }).type).to.equal('log');
      // JSON round trip keeps the figure intact (no typed arrays, no functions).
      expect(JSON.parse(JSON.stringify(fig))).to.deep.equal(fig);
    });

    it('lineChart and scatterChart reject mismatched x and y by series name', () => {
      expect(() => lineChart([{ name: 'acc', x: [1, 2], y: [1, 2, 3] }])).to.throw(
        /series "acc" \(#0\) has 2 x values but 3 y values/,
      );
      expect(() => scatterChart([])).to.throw(/at least one series/);
    });

    it('heatmap keeps rows as written, reverses the y axis, and validates labels', () => {
      const fig = heatmap(
        [
          [0.1, 0.9],
          [0.5, 0.5],
          [1, 0],
        ],
        { xLabels: ['slot 0', 'slot 1'], zmin: 0, zmax: 1 },
      );
      expect(fig.data[0]!.z).to.deep.equal([
        [0.1, 0.9],
        [0.5, 0.5],
        [1, 0],
      ]);
      expect((fig.layout.yaxis as { autorange: string }).autorange).to.equal('reversed');
      // No forced axis type: a 'linear' x axis with string labels draws an empty plot.
      expect((fig.layout.xaxis as { type?: string }).type).to.equal(undefined);
      // Plotly needs both bounds: zmax is filled with the data's largest value, 1.
      expect([fig.data[0]!.zmin, fig.data[0]!.zmax]).to.deep.equal([0, 1]);
      expect(heatmap([[0.5, 2]], { zmin: 0 }).data[0]!.zmax).to.equal(2);
      expect(() => heatmap([[1, 2], [3]])).to.throw(/row 1 has 1 values but row 0 has 2/);
      expect(() => heatmap([[1, 2]], { yLabels: ['a', 'b'] })).to.throw(/yLabels has 2 labels for 1 rows/);
    });

    it('heatmap reads a 2-D tensor and rejects other ranks', () => {
      const t = tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      expect(heatmap(t).data[0]!.z).to.deep.equal([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const t3 = tf.zeros([1, 2, 3]);
      expect(() => toMatrix(t3, 'dispatch')).to.throw(/dispatch must be a 2-D tensor, got shape \[1, 2, 3\]/);
      t.dispose();
      t3.dispose();
    });

    it('imageGrid puts each image on its own square axes with one shared colour range', () => {
      const a = { width: 2, height: 2, data: [0, 1, 2, 3] };
      const b = tf.tensor3d([
        [[4], [5]],
        [[6], [7]],
      ]);
      const before = tf.memory().numTensors;
      const fig = imageGrid([a, b], { columns: 2, titles: ['slot 0', 'slot 1'] });
      expect(tf.memory().numTensors).to.equal(before);
      expect(fig.data.map((t) => t.z)).to.deep.equal([
        [
          [0, 1],
          [2, 3],
        ],
        [
          [4, 5],
          [6, 7],
        ],
      ]);
      // Shared range = min and max over both images: 0 and 7.
      expect(fig.data.map((t) => [t.zmin, t.zmax])).to.deep.equal([
        [0, 7],
        [0, 7],
      ]);
      expect(fig.data.map((t) => [t.xaxis, t.yaxis])).to.deep.equal([
        ['x', 'y'],
        ['x2', 'y2'],
      ]);
      expect((fig.layout.yaxis2 as { scaleanchor: string }).scaleanchor).to.equal('x2');
      expect(() => imageGrid([{ width: 2, height: 2, data: [1, 2, 3] }])).to.throw(
        /image #0 has 3 values, expected width·height = 2·2 = 4/,
      );
      b.dispose();
    });

    it('barChart checks labels against values', () => {
      const fig = barChart([{ name: 'tokens', x: [0, 1, 2], y: [5, 3, 8] }], { barmode: 'stack' });
      expect(fig.data[0]!.x).to.deep.equal(['0', '1', '2']);
      expect(fig.layout.barmode).to.equal('stack');
      expect(() => barChart([{ name: 'tokens', x: ['a'], y: [1, 2] }])).to.throw(
        /bar series "tokens" has 1 labels but 2 values/,
      );
    });

    it('describeFigure summarises traces for text outputs', () => {
      expect(
        describeFigure(
          heatmap(
            [
              [0.25, 2],
              [1, 0.5],
            ],
            { title: 'Dispatch' },
          ),
        ),
      ).to.equal('"Dispatch": heatmap 2×2 (0.25 … 2)');
      expect(describeFigure(lineChart([{ name: 'loss', y: [1, 2, 3] }]))).to.equal('figure: lines "loss" (3 points)');
    });
  });

  describe('readable without hovering', () => {
    it('axes grow their margins to fit long tick labels and titles (automargin)', () => {
      const fig = barChart([{ name: 'a', x: ['uniform dispatch and combine', 'identity experts'], y: [1, 2] }], {
        xTitle: 'variant',
        yTitle: 'accuracy',
      });
      expect((fig.layout.xaxis as { automargin?: boolean }).automargin).to.equal(true);
      expect((fig.layout.yaxis as { automargin?: boolean }).automargin).to.equal(true);
    });

    it('bars start at 0, unless the axis is logarithmic', () => {
      expect((barChart([{ name: 'a', x: ['x'], y: [0.8] }]).layout.yaxis as { rangemode?: string }).rangemode).to.equal(
        'tozero',
      );
      expect(
        (barChart([{ name: 'a', x: ['x'], y: [0.8] }], { logY: true }).layout.yaxis as { rangemode?: string })
          .rangemode,
      ).to.equal(undefined);
    });

    it("showValues writes every bar's value, zeros included", () => {
      const fig = barChart([{ name: 'changed', x: ['a', 'b'], y: [0, 11] }], { showValues: true });
      expect(fig.data[0]!.text).to.deep.equal(['0', '11']);
      expect(fig.data[0]!.textposition).to.equal('outside');
      expect(barChart([{ name: 'changed', x: ['a'], y: [0] }]).data[0]!.text).to.equal(undefined);
    });

    it('a named single series still gets its legend (plotly hides a one-trace legend)', () => {
      expect(lineChart([{ name: 'uniform (1/64)', y: [1, 2], dash: 'dot' }]).layout.showlegend).to.equal(true);
      expect(lineChart([{ name: '', y: [1, 2] }]).layout.showlegend).to.equal(undefined);
    });

    it('two series with the same colour, dash and mode are drawn differently', () => {
      const fig = lineChart([
        { name: 'Soft MoE, 16 experts', y: [1, 2], color: '#1f77b4', mode: 'lines+markers' },
        { name: 'Soft MoE, 64 experts', y: [2, 3], color: '#1f77b4', mode: 'lines+markers' },
        { name: 'Soft MoE, 128 experts', y: [3, 4], color: '#1f77b4', mode: 'lines+markers' },
        { name: 'dense', y: [1, 1], color: '#ff7f0e', mode: 'lines+markers' },
      ]);
      const styles = fig.data.map((t) =>
        JSON.stringify([
          (t.line as { dash?: string }).dash ?? 'solid',
          (t.marker as { symbol?: string }).symbol ?? 'circle',
          (t.line as { color?: string }).color,
        ]),
      );
      expect(new Set(styles).size).to.equal(4);
      // The first of a style and a series of another colour keep what the caller asked for.
      expect((fig.data[0]!.line as { dash?: string }).dash).to.equal(undefined);
      expect((fig.data[3]!.line as { dash?: string }).dash).to.equal(undefined);
      expect((fig.data[1]!.line as { color?: string }).color).to.equal('#1f77b4');
    });

    it('a log axis over a few measured sizes puts its ticks at those sizes', () => {
      const fig = lineChart(
        [
          { name: 'a', x: [2, 8, 64], y: [1, 2, 3] },
          { name: 'b', x: [4, 8], y: [1, 2] },
        ],
        { logX: true },
      );
      expect((fig.layout.xaxis as { tickvals?: number[] }).tickvals).to.deep.equal([2, 4, 8, 64]);
      const big = lineChart([{ name: 'a', x: [1024, 16384], y: [1, 2] }], { logX: true });
      expect((big.layout.xaxis as { ticktext?: string[] }).ticktext).to.deep.equal(['1024', '16384']);
      const many = lineChart(
        [{ name: 'a', x: Array.from({ length: 40 }, (_, i) => i + 1), y: Array.from({ length: 40 }, () => 1) }],
        { logX: true },
      );
      expect((many.layout.xaxis as { tickvals?: number[] }).tickvals).to.equal(undefined);
      // Over at most 3 decades, label 1, 2, 5 of each decade; wider ranges keep plotly's choice.
      expect((many.layout.xaxis as { dtick?: string }).dtick).to.equal('D2');
      const narrowY = lineChart([{ name: 'a', x: [1, 2], y: [0.5, 100] }], { logY: true });
      expect((narrowY.layout.yaxis as { dtick?: string; tickvals?: number[] }).dtick).to.equal('D2');
      expect((narrowY.layout.yaxis as { tickvals?: number[] }).tickvals).to.equal(undefined);
      const wideY = lineChart([{ name: 'a', x: [1, 2], y: [1e-12, 1] }], { logY: true });
      expect((wideY.layout.yaxis as { dtick?: string }).dtick).to.equal(undefined);
    });

    it("showText writes each point's label on the figure and checks there is one per point", () => {
      const fig = scatterChart([{ name: 'runs', x: [1, 2], y: [3, 4], text: ['dense', 'soft'], showText: true }]);
      expect(fig.data[0]!.mode).to.equal('markers+text');
      expect(fig.data[0]!.text).to.deep.equal(['dense', 'soft']);
      expect(() => scatterChart([{ name: 'runs', x: [1, 2], y: [3, 4], text: ['dense'], showText: true }])).to.throw(
        /"runs" \(#0\) has showText but 1 texts for 2 points/,
      );
      const pareto = paretoChart([{ name: 'Soft MoE', points: [{ x: 1, y: 2, label: 'n=16' }] }], {
        labelPoints: true,
      });
      expect(pareto.data[0]!.mode).to.equal('markers+text');
      expect(pareto.data[0]!.text).to.deep.equal(['n=16']);
    });

    it('a categorical heat map gives each category its own colour band and a labelled colour bar', () => {
      const fig = heatmap(
        [
          [0, 1],
          [2, 1],
        ],
        { categories: ['slot 0', 'slot 1', 'slot 2'] },
      );
      const t = fig.data[0]!;
      expect([t.zmin, t.zmax]).to.deep.equal([-0.5, 2.5]);
      const scale = t.colorscale as Array<[number, string]>;
      // Category c owns [c/3, (c+1)/3]: the value c maps to (c + 0.5)/3, inside its own band.
      const colourAt = (v: number) => {
        const u = (v - -0.5) / 3;
        return scale.find(([lo], i) => i % 2 === 0 && u >= lo && u <= scale[i + 1]![0])![1];
      };
      expect([0, 1, 2].map(colourAt)).to.deep.equal(categoricalColors(3));
      expect(new Set(categoricalColors(3)).size).to.equal(3);
      expect((t.colorbar as { ticktext?: string[] }).ticktext).to.deep.equal(['slot 0', 'slot 1', 'slot 2']);
      expect(t.text).to.deep.equal([
        ['slot 0', 'slot 1'],
        ['slot 2', 'slot 1'],
      ]);
      expect(() => heatmap([[0, 3]], { categories: ['a', 'b', 'c'] })).to.throw(
        /needs integer values 0 … 2, got 3 at row 0, column 1/,
      );
      expect(() => heatmap([[0.5]], { categories: ['a', 'b'] })).to.throw(/got 0.5/);
    });

    it('categoricalColors gives k distinct colours for any k', () => {
      for (const k of [1, 10, 11, 64]) expect(new Set(categoricalColors(k)).size).to.equal(k);
      expect(() => categoricalColors(0)).to.throw(/≥ 1, got 0/);
    });

    it('imageGrid can show patch axes (row and column numbers) with titles on the outer images', () => {
      const img = { width: 7, height: 7, data: Array.from({ length: 49 }, (_, i) => i) };
      const fig = imageGrid([img, img, img], { columns: 2, axes: { x: 'patch column', y: 'patch row' } });
      const ax = (k: string) => fig.layout[k] as { visible?: boolean; title?: { text: string } };
      expect(ax('xaxis').visible).to.equal(true);
      expect(ax('yaxis').title?.text).to.equal('patch row'); // first column
      expect(ax('yaxis2').title).to.equal(undefined); // second column
      expect(ax('xaxis3').title?.text).to.equal('patch column'); // bottom row
      expect(ax('xaxis').title).to.equal(undefined); // top row
      expect((imageGrid([img]).layout.xaxis as { visible?: boolean }).visible).to.equal(false);
    });
  });
});
