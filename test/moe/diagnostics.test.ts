/**
 * Soft MoE diagnostics (lib/moe/diagnostics.ts): hand cases with known values (uniform weights,
 * one token per slot, orthogonal/opposite vectors), and random weights against float64 loops
 * written here from the definitions (vmoe `SoftRouter.get_metrics` / `cosine_psim`); no leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import {
  diagnosticsValues,
  pairwiseCosine,
  softMoEDiagnostics,
  type DiagnosticsInput,
} from '../../lib/moe/diagnostics.js';
import { diagnosticsCharts } from '../../lib/plot/diagnostics.js';
import { initExpertParams } from '../../lib/moe/experts.js';
import { SeededRandom } from '../../lib/core/random.js';

/** Column-major helpers in float64: w[g][i][j] with i over tokens, j over slots. */
type W = number[][][];

function softmaxTensors(logits: W): { dispatch: W; combine: W } {
  const g = logits.length;
  const m = logits[0].length;
  const s = logits[0][0].length;
  const dispatch: W = [];
  const combine: W = [];
  for (let b = 0; b < g; b++) {
    dispatch.push(Array.from({ length: m }, () => new Array<number>(s).fill(0)));
    combine.push(Array.from({ length: m }, () => new Array<number>(s).fill(0)));
    for (let j = 0; j < s; j++) {
      let z = 0;
      for (let i = 0; i < m; i++) z += Math.exp(logits[b][i][j]);
      for (let i = 0; i < m; i++) dispatch[b][i][j] = Math.exp(logits[b][i][j]) / z;
    }
    for (let i = 0; i < m; i++) {
      let z = 0;
      for (let j = 0; j < s; j++) z += Math.exp(logits[b][i][j]);
      for (let j = 0; j < s; j++) combine[b][i][j] = Math.exp(logits[b][i][j]) / z;
    }
  }
  return { dispatch, combine };
}

const cos = (a: number[], b: number[]) => {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < a.length; k++) {
    ab += a[k] * b[k];
    aa += a[k] * a[k];
    bb += b[k] * b[k];
  }
  return ab / Math.sqrt(aa * bb);
};

/** Mean/min/max cosine over all ordered pairs a ≠ b of the vectors of each group. */
function pairStats(groups: number[][][]): { mean: number; min: number; max: number } {
  let sum = 0;
  let count = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const vs of groups) {
    for (let a = 0; a < vs.length; a++) {
      for (let b = 0; b < vs.length; b++) {
        if (a === b) continue;
        const c = cos(vs[a], vs[b]);
        sum += c;
        count++;
        min = Math.min(min, c);
        max = Math.max(max, c);
      }
    }
  }
  return { mean: sum / count, min, max };
}

const column = (w: number[][], j: number) => w.map((row) => row[j]);
const entropyExp = (p: number[]) => Math.exp(-p.reduce((s, x) => s + (x > 0 ? x * Math.log(x) : 0), 0));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.floor(s.length / 2);
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};

function tensors(dispatch: W, combine: W, n: number, p: number) {
  const g = dispatch.length;
  const m = dispatch[0].length;
  return {
    dispatch: tf.tensor4d(dispatch.flat(2), [g, m, n, p]),
    combine: tf.tensor4d(combine.flat(2), [g, m, n, p]),
  };
}

describe('moe/diagnostics', function () {
  it('pairwiseCosine equals a float64 loop (random vectors, several batches)', async function () {
    const rng = new SeededRandom(3);
    const data = Array.from({ length: 2 }, () =>
      Array.from({ length: 5 }, () => Array.from({ length: 7 }, () => rng.normal())),
    );
    const sim = tf.tidy(() => pairwiseCosine(tf.tensor3d(data)));
    const got = (await sim.array()) as number[][][];
    sim.dispose();
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 5; j++) expect(got[b][i][j]).to.be.closeTo(cos(data[b][i], data[b][j]), 1e-5);
  });

  it('uniform dispatch and combine: similarity 1, max dispatch × m = 1, m effective tokens, n·p effective slots', async function () {
    const [g, m, n, p] = [2, 6, 3, 2];
    const input: DiagnosticsInput = {
      dispatch: tf.fill([g, m, n, p], 1 / m) as tf.Tensor4D,
      combine: tf.fill([g, m, n, p], 1 / (n * p)) as tf.Tensor4D,
      phi: tf.randomNormal([4, n, p], 0, 1, 'float32', 1) as tf.Tensor3D,
      scale: tf.scalar(2.5),
    };
    const d = await softMoEDiagnostics(input);
    expect(d).to.include({ tokens: m, slots: n * p, groups: g });
    expect(d.scale).to.equal(2.5);
    for (const k of ['mean', 'min', 'max'] as const) {
      expect(d.dispatchSimilarity[k]).to.be.closeTo(1, 1e-5);
      expect(d.combineSimilarity[k]).to.be.closeTo(1, 1e-5);
    }
    expect(d.maxDispatchRelMedian).to.be.closeTo(1, 1e-5);
    expect(d.maxDispatchRelMean).to.be.closeTo(1, 1e-5);
    expect(d.effectiveTokensPerSlot).to.be.closeTo(m, 1e-4);
    expect(d.effectiveSlotsPerToken).to.be.closeTo(n * p, 1e-4);
    expect(d.expertSimilarity).to.equal(null);
    tf.dispose(Object.values(input));
  });

  it('one token per slot: dispatch similarity 0, max dispatch × m = m, one effective token; known Φ and expert cosines', async function () {
    // m = n·p = 4 and slot j takes token j only; token i's combine weight goes to slot i only.
    const [m, n, p] = [4, 2, 2];
    const eye = Array.from({ length: m }, (_, i) => Array.from({ length: m }, (__, j) => (i === j ? 1 : 0)));
    // Φ's slot vectors: e1, −e1, e2, e1 + e2 → pairwise cosines −1, 0, 1/√2, 0, −1/√2, 1/√2.
    const slots = [
      [1, 0],
      [-1, 0],
      [0, 1],
      [1, 1],
    ];
    const phiData = [0, 1].map((dIdx) => slots.map((v) => v[dIdx])); // [d, n·p]
    // Experts: 2 experts whose flattened parameters are orthogonal (w1 of one, w2 of the other).
    const [dim, h] = [2, 3];
    const experts = {
      w1: tf.tensor3d([
        Array.from({ length: dim }, () => new Array<number>(h).fill(1)),
        Array.from({ length: dim }, () => new Array<number>(h).fill(0)),
      ]),
      b1: tf.zeros([n, h]) as tf.Tensor2D,
      w2: tf.tensor3d([
        Array.from({ length: h }, () => new Array<number>(dim).fill(0)),
        Array.from({ length: h }, () => new Array<number>(dim).fill(1)),
      ]),
      b2: tf.zeros([n, dim]) as tf.Tensor2D,
    };
    const input: DiagnosticsInput = {
      dispatch: tf.tensor4d(eye.flat(), [1, m, n, p]),
      combine: tf.tensor4d(eye.flat(), [1, m, n, p]),
      phi: tf.tensor3d(phiData.flat(), [2, n, p]),
      scale: tf.scalar(1),
      experts,
    };
    const d = await softMoEDiagnostics(input);
    expect(d.dispatchSimilarity.mean).to.be.closeTo(0, 1e-6);
    expect(d.dispatchSimilarity.max).to.be.closeTo(0, 1e-6);
    expect(d.combineSimilarity.mean).to.be.closeTo(0, 1e-6);
    expect(d.maxDispatchRelMedian).to.be.closeTo(m, 1e-5);
    expect(d.effectiveTokensPerSlot).to.be.closeTo(1, 1e-6);
    expect(d.effectiveSlotsPerToken).to.be.closeTo(1, 1e-6);
    const phiCos = [-1, 0, Math.SQRT1_2, 0, -Math.SQRT1_2, Math.SQRT1_2];
    expect(d.phiSimilarity.mean).to.be.closeTo(phiCos.reduce((a, b) => a + b) / 6, 1e-6);
    expect(d.phiSimilarity.min).to.be.closeTo(-1, 1e-6);
    expect(d.phiSimilarity.max).to.be.closeTo(Math.SQRT1_2, 1e-6);
    expect(d.expertSimilarity?.mean).to.be.closeTo(0, 1e-6);
    tf.dispose([...Object.values(input).filter((t) => t instanceof tf.Tensor), ...Object.values(experts)]);
  });

  it('random routing weights: every statistic equals a float64 loop; shared experts are exactly similar', async function () {
    const [g, m, n, p, dim] = [3, 7, 4, 2, 5];
    const s = n * p;
    const rng = new SeededRandom(11);
    const logits: W = Array.from({ length: g }, () =>
      Array.from({ length: m }, () => Array.from({ length: s }, () => 2 * rng.normal())),
    );
    const { dispatch, combine } = softmaxTensors(logits);
    const phiRows = Array.from({ length: dim }, () => Array.from({ length: s }, () => rng.normal()));
    const shared = initExpertParams(n, dim, 6, { mode: 'shared', seed: 4 });
    const t = tensors(dispatch, combine, n, p);
    const input: DiagnosticsInput = {
      ...t,
      phi: tf.tensor3d(phiRows.flat(), [dim, n, p]),
      scale: tf.scalar(-0.75),
      experts: shared,
    };
    const before = tf.memory().numTensors;
    const d = await softMoEDiagnostics(input);
    expect(tf.memory().numTensors, 'no tensor left behind').to.equal(before);

    const columns = dispatch.map((w) => Array.from({ length: s }, (_, j) => column(w, j)));
    const close = (
      got: { mean: number; min: number; max: number },
      want: { mean: number; min: number; max: number },
      what: string,
    ) => {
      for (const k of ['mean', 'min', 'max'] as const) expect(got[k], `${what} ${k}`).to.be.closeTo(want[k], 2e-5);
    };
    close(d.dispatchSimilarity, pairStats(columns), 'dispatch');
    close(d.combineSimilarity, pairStats(combine), 'combine');
    close(d.phiSimilarity, pairStats([Array.from({ length: s }, (_, j) => column(phiRows, j))]), 'phi');
    expect(d.expertSimilarity?.mean).to.be.closeTo(1, 1e-6);
    expect(d.expertSimilarity?.min).to.be.closeTo(1, 1e-6);
    const maxRel = columns.flatMap((cols) => cols.map((c) => m * Math.max(...c)));
    expect(d.maxDispatchRelMedian).to.be.closeTo(median(maxRel), 1e-4);
    expect(d.maxDispatchRelMean).to.be.closeTo(maxRel.reduce((a, b) => a + b) / maxRel.length, 1e-4);
    const effTokens = columns.flatMap((cols) => cols.map(entropyExp));
    expect(d.effectiveTokensPerSlot).to.be.closeTo(effTokens.reduce((a, b) => a + b) / effTokens.length, 1e-4);
    const effSlots = combine.flatMap((rows) => rows.map(entropyExp));
    expect(d.effectiveSlotsPerToken).to.be.closeTo(effSlots.reduce((a, b) => a + b) / effSlots.length, 1e-4);
    expect(d.scale).to.equal(-0.75);
    tf.dispose([t.dispatch, t.combine, input.phi, input.scale, ...Object.values(shared)]);
  });

  it('rejects mismatched or too small inputs with clear errors', async function () {
    const dispatch = tf.fill([1, 3, 2, 1], 1 / 3) as tf.Tensor4D;
    const combine = tf.fill([1, 3, 2, 1], 0.5) as tf.Tensor4D;
    const phi = tf.ones([4, 2, 1]) as tf.Tensor3D;
    const scale = tf.scalar(1);
    const bad = async (input: DiagnosticsInput, message: RegExp) => {
      let error: unknown = null;
      try {
        await softMoEDiagnostics(input);
      } catch (e) {
        error = e;
      }
      expect(String(error)).to.match(message);
    };
    await bad(
      { dispatch, combine: tf.fill([1, 3, 1, 2], 0.5) as tf.Tensor4D, phi, scale },
      /combine must have the dispatch shape \[1, 3, 2, 1\]/,
    );
    await bad({ dispatch, combine, phi: tf.ones([4, 3, 1]) as tf.Tensor3D, scale }, /phi must be \[d, 2, 1\]/);
    await bad(
      {
        dispatch: tf.fill([1, 3, 1, 1], 1 / 3) as tf.Tensor4D,
        combine: tf.fill([1, 3, 1, 1], 1) as tf.Tensor4D,
        phi: tf.ones([4, 1, 1]) as tf.Tensor3D,
        scale,
      },
      /at least 2 tokens and 2 slots/,
    );
    await bad({ dispatch, combine, phi, scale: tf.ones([1]) as unknown as tf.Scalar }, /scale/);
    tf.disposeVariables();
    tf.dispose([dispatch, combine, phi, scale]);
  });
});

describe('moe/diagnostics: diagnosticsValues and plot.diagnosticsCharts', function () {
  it('flattens the statistics by name and draws one figure per quantity, one line per run', async function () {
    const d = {
      tokens: 4,
      slots: 2,
      groups: 1,
      scale: 3,
      dispatchSimilarity: { mean: 0.5, min: 0.1, max: 0.9 },
      combineSimilarity: { mean: 0.4, min: 0.2, max: 0.6 },
      phiSimilarity: { mean: 0, min: -1, max: 1 },
      expertSimilarity: null,
      maxDispatchRelMedian: 2,
      maxDispatchRelMean: 2.5,
      effectiveTokensPerSlot: 3,
      effectiveSlotsPerToken: 1.5,
    };
    const values = diagnosticsValues(d);
    expect(values).to.include({
      scale: 3,
      dispatchSimilarityMean: 0.5,
      dispatchSimilarityMin: 0.1,
      combineSimilarityMax: 0.6,
      phiSimilarityMin: -1,
      maxDispatchRelMedian: 2,
    });
    expect(values).not.to.have.property('expertSimilarityMean');
    const runs = [
      {
        name: 'a',
        points: [
          { step: 0, values },
          { step: 10, values: { ...values, scale: 4 } },
        ],
      },
      {
        name: 'b',
        points: [{ step: 0, values: { ...values, expertSimilarityMean: 1 } }],
        color: '#123456',
        dash: 'dot' as const,
      },
    ];
    const figures = diagnosticsCharts(runs, ['scale', 'expertSimilarityMean']);
    expect(figures).to.have.length(2);
    // A short y-axis title (the long label is the figure's title) and the run's own colour and dash.
    const layout = figures[1].layout as { yaxis: { title: { text: string } }; title: { text: string } };
    expect(layout.yaxis.title.text).to.equal('cosine');
    expect(layout.title.text).to.equal('mean cosine similarity of expert weights');
    const line = (figures[0].data[1] as { line?: { color?: string; dash?: string } }).line;
    expect(line).to.deep.include({ color: '#123456', dash: 'dot' });
    expect(figures[0].data.map((t) => t.name)).to.deep.equal(['a', 'b']);
    expect(figures[0].data[0].y).to.deep.equal([3, 4]);
    expect(figures[0].data[0].x).to.deep.equal([0, 10]);
    expect(
      figures[1].data.map((t) => t.name),
      'a run without the quantity is left out',
    ).to.deep.equal(['b']);
    expect(() => diagnosticsCharts(runs, ['nope'])).to.throw(/no run has values of "nope"/);
    expect(() => diagnosticsCharts([])).to.throw(/at least one run/);
  });
});
