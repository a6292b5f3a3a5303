/** expertScalingFigure (lib/plot/scaling.ts): one line per method, times relative to the reference. */
import { expect } from 'chai';
import { expertScalingFigure } from '../../lib/plot/scaling.js';

describe('plot/scaling: expertScalingFigure (paper Fig. 6 right)', function () {
  const points = [
    { method: 'Soft MoE', experts: 16, medianMs: 60, minMs: 55, maxMs: 70 },
    { method: 'Soft MoE', experts: 4, medianMs: 50, minMs: 45, maxMs: 52 },
    { method: 'Tokens Choice', experts: 4, medianMs: 40 },
    { method: 'Tokens Choice', experts: 16, medianMs: 80 },
  ];

  it('draws one line per method, sorted by experts, relative to the first method at its fewest experts', function () {
    const fig = expertScalingFigure(points);
    expect(fig.data.map((t) => t.name)).to.deep.equal(['Soft MoE', 'Tokens Choice']);
    expect(fig.data[0].x).to.deep.equal([4, 16]);
    expect(fig.data[0].y).to.deep.equal([1, 1.2]); // 50/50, 60/50
    expect(fig.data[1].y).to.deep.equal([0.8, 1.6]); // 40/50, 80/50
    // Error bars only where every point has a spread: (70 − 60)/50 above, (60 − 55)/50 below.
    expect((fig.data[0].error_y as { array: number[] }).array[1]).to.be.closeTo(0.2, 1e-12);
    expect((fig.data[0].error_y as { arrayminus: number[] }).arrayminus[1]).to.be.closeTo(0.1, 1e-12);
    expect(fig.data[1].error_y).to.equal(undefined);
    expect((fig.layout.xaxis as { type: string }).type).to.equal('log');
  });

  it('takes another reference on request and rejects empty or invalid points', function () {
    expect(expertScalingFigure(points, { referenceMs: 100 }).data[0].y).to.deep.equal([0.5, 0.6]);
    expect(() => expertScalingFigure([])).to.throw(/at least one point/);
    expect(() => expertScalingFigure([{ method: 'x', experts: 0, medianMs: 1 }])).to.throw(/experts ≥ 1/);
    expect(() => expertScalingFigure([{ method: 'x', experts: 2, medianMs: 1 }], { referenceMs: -1 })).to.throw(
      /referenceMs must be > 0, got -1/,
    );
  });
});
