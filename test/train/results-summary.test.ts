import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { groupRuns, readResultsDir, seedStats, summarizeRun } from '../../lib/train/results-summary.js';
import { resolveViTConfig } from '../../lib/vit/config.js';

/** A results document shaped as lib/cli/train.ts writes it (only the fields read back). */
function doc(name: string, status: string, seed: number, testAccuracy: number) {
  return {
    status,
    name,
    command: `npm run train -- --seed ${seed}`,
    startedAt: '2026-01-01T00:00:00.000Z',
    config: {
      dataset: 'fashion-mnist',
      model: resolveViTConfig({ kind: 'soft' }),
      trainer: { steps: 300, batchSize: 64, seed, learningRate: 4e-3, ...(seed === 2 ? { maxShift: 2 } : {}) },
    },
    backend: { name: 'wasm' },
    machine: { cpuModel: 'AMD EPYC', cores: 2, loadAverage: [3.5, 2, 1] },
    git: { commit: 'a'.repeat(40), uncommittedLibraryFiles: ['lib/ops/matmul.ts'] },
    cost: { parameters: 1234, flopsPerImage: { total: 5678 } },
    ...(status === 'finished'
      ? {
          summary: {
            steps: 300,
            testAccuracy,
            validationAccuracy: 0.5,
            testCount: 10000,
            msPerStepMedian: 150,
            trainCpuSeconds: 15,
            trainWallSeconds: 16.5,
            finalDropFraction: 0.25,
          },
        }
      : {}),
    curves: { validation: [{ step: 100, accuracy: 0.4, loss: 1.5, count: 1000 }] },
  };
}

describe('train/results-summary: reading recorded runs back', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'softmoe-summary-'));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(doc('b', 'finished', 2, 0.6)));
    writeFileSync(join(dir, 'a.json'), JSON.stringify(doc('a', 'finished', 1, 0.5)));
    writeFileSync(join(dir, 'c.json'), JSON.stringify(doc('c', 'running', 3, 0)));
    writeFileSync(join(dir, 'notes.txt'), 'not a result');
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('summarises a run: accuracy, seed, CPU ms per update, command', function () {
    const r = summarizeRun(doc('a', 'finished', 1, 0.5));
    expect(r).to.include({
      name: 'a',
      kind: 'soft',
      seed: 1,
      steps: 300,
      testAccuracy: 0.5,
      msPerStepMedian: 150,
      parameters: 1234,
      flopsPerImage: 5678,
      loadAverage: 3.5,
    });
    expect(r.cpuMsPerStep).to.equal(50); // 15 CPU seconds / 300 updates = 50 ms
    expect(r.dropFraction).to.equal(0.25);
    expect(r).to.include({ trainWallSeconds: 16.5, learningRate: 4e-3, maxShift: 0, headInit: 'zeros' });
    // Files written before --shift existed have no maxShift: 0; this one has 2.
    expect(summarizeRun(doc('b', 'finished', 2, 0.6)).maxShift).to.equal(2);
    expect(summarizeRun(doc('c', 'running', 3, 0)).trainWallSeconds).to.equal(null);
    expect(r.command).to.equal('npm run train -- --seed 1');
    expect(r.uncommittedLibraryFiles).to.deep.equal(['lib/ops/matmul.ts']);
    expect(summarizeRun(doc('c', 'running', 3, 0)).testAccuracy).to.equal(null);
    expect(() => summarizeRun({ hello: 1 }, 'x.json')).to.throw(/x\.json is not a results file/);
  });

  it('reads the finished runs of a folder in name order (all: true keeps the others); a missing folder is empty', function () {
    expect(readResultsDir(dir).map((r) => r.name)).to.deep.equal(['a', 'b']);
    expect(readResultsDir(dir, { all: true }).map((r) => r.status)).to.deep.equal(['finished', 'finished', 'running']);
    expect(readResultsDir(join(dir, 'nope'))).to.deep.equal([]);
  });

  it('seed statistics: mean, sample standard deviation, range; groups in first-seen order', function () {
    const s = seedStats([0.5, 0.6]);
    // mean (0.5 + 0.6)/2 = 0.55; sample variance (0.05² + 0.05²)/(2 − 1) = 0.005, std √0.005 ≈ 0.0707107
    expect(s.mean).to.be.closeTo(0.55, 1e-12);
    expect(s.std).to.be.closeTo(0.0707107, 1e-6);
    expect([s.min, s.max, s.count]).to.deep.equal([0.5, 0.6, 2]);
    expect(seedStats([0.7]).std).to.equal(0);
    expect(() => seedStats([])).to.throw(/at least one value/);
    expect(() => seedStats([1, NaN])).to.throw(/value #1 must be finite, got NaN/);
    const groups = groupRuns(readResultsDir(dir, { all: true }), (r) => r.status);
    expect([...groups.keys()]).to.deep.equal(['finished', 'running']);
    expect(groups.get('finished')!.map((r) => r.seed)).to.deep.equal([1, 2]);
  });
});
