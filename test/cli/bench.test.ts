/**
 * The arithmetic of `npm run bench` (lib/cli/bench.ts): FLOP counts by hand, the targets of
 * issue 6 derived from synthetic timings, and the timing loop. The benchmark itself is a script.
 */
import { expect } from 'chai';
import { deriveTargets, layerForwardFlops, timeSteps, type Entry, type TorchFile } from '../../lib/cli/bench.js';

function entry(
  section: Entry['section'],
  name: string,
  config: Entry['config'],
  flops: number,
  wall: number,
  cpu: number,
): Entry {
  return {
    section,
    name,
    config,
    flops,
    gflops: flops / wall / 1e6,
    medianMs: wall,
    minMs: wall,
    maxMs: wall,
    samplesMs: [wall],
    cpuMedianMs: cpu,
    cpuMinMs: cpu,
    cpuMaxMs: cpu,
  };
}

describe('cli/bench', function () {
  it('counts layer FLOPs by hand (batch 32 × 64 tokens, d 128, h 256)', function () {
    // Dense MLP: 2 products [64, 128]·[128, 256] and back per sequence: 32 · 2 · 2·64·128·256.
    expect(layerForwardFlops('dense', 32, 64, 128, 256)).to.equal(32 * 2 * 2 * 64 * 128 * 256);
    // Soft MoE n = 16, p = 4 (64 slots = m): logits 2·m·d·s, Dᵀ·X and C·Ỹ 2·(2·s·m·d), experts
    // s·4·d·h; against the dense 4·m·d·h the ratio is 1 + 6·64/(4·256) = 1.375 (issue 6: "about 1.4").
    const soft = layerForwardFlops('soft', 32, 64, 128, 256, 16, 4);
    expect(soft).to.equal(32 * (2 * 64 * 128 * 64 + 4 * 64 * 64 * 128 + 64 * 4 * 128 * 256));
    expect(soft / layerForwardFlops('dense', 32, 64, 128, 256)).to.be.closeTo(1.375, 1e-12);
    // Tokens Choice n = 4, C = ceil(64/4) = 16: router 2·m·d·n + one-hot moves 2·(2·m·n·C·d) + experts n·C·4dh.
    expect(layerForwardFlops('tokens-choice', 1, 64, 128, 256, 4)).to.equal(
      2 * 64 * 128 * 4 + 4 * 64 * 4 * 16 * 128 + 4 * 16 * 4 * 128 * 256,
    );
  });

  it('derives the targets from the timings: ratio to dense against 1.1 × FLOP ratio, flatness, products, ViT', function () {
    const dense = entry('layers', 'dense MLP', { kind: 'dense', n: 1 }, 100, 20, 10);
    const soft = entry('layers', 'Soft MoE n=16', { kind: 'soft', n: 16, p: 4 }, 137.5, 30, 16);
    const plain = entry('matmul', 'tf.matMul 512³ (backend kernel)', {}, 100, 2, 2);
    const sweep = [
      entry('sweep', 'a', { kind: 'soft', n: 4 }, 1, 50, 40),
      entry('sweep', 'b', { kind: 'soft', n: 128 }, 1, 60, 44),
    ];
    const vit = [entry('vit', 'd', { kind: 'dense' }, 1, 100, 100), entry('vit', 's', { kind: 'soft' }, 1, 140, 120)];
    const { layerRows, targets } = deriveTargets([dense, soft, plain, ...sweep, ...vit], null);
    expect(layerRows[1].wall.timeRatioToDense).to.equal(1.5);
    expect(layerRows[1].cpu.timeRatioToDense).to.equal(1.6);
    const [softWall] = targets.wall.softOverDense;
    expect(softWall.flopRatio).to.equal(1.375);
    expect(softWall.limit).to.be.closeTo(1.5125, 1e-12);
    expect(softWall.met).to.equal(true); // 1.5 ≤ 1.5125
    expect(targets.cpu.softOverDense[0].met).to.equal(false); // 1.6 > 1.5125
    expect(targets.wall.sweepFlatness!.slowestOverFastest).to.equal(1.2);
    expect(targets.cpu.sweepFlatness!.met).to.equal(true); // 44/40 = 1.1
    // Plain product 100 FLOPs in 2 ms = 5e-5 GFLOP/s; dense 100 in 20 ms: plain/achieved = 10.
    expect(targets.wall.matmulBound[0].plainOverAchieved).to.be.closeTo(10, 1e-12);
    expect(targets.wall.vitSoftOverDense!.ratio).to.equal(1.4);
    expect(targets.cpu.vitSoftOverDense!.met).to.equal(true);
  });

  it('compares with the PyTorch peer on wall time, and on CPU time only when the peer ran on a quiet machine', function () {
    const dense = entry('layers', 'dense MLP', { kind: 'dense', n: 1 }, 100, 30, 12);
    const row = {
      config: '1thr',
      n: 4,
      p: 16,
      dense: 10,
      soft_moe: 17,
      tc_k1_index: 13,
      tc_k1_einsum: 14,
      ec_index: 15,
      ec_einsum: 14,
    };
    const torch: TorchFile = { info: {}, layers: [row], vit: [] };
    const busy = deriveTargets([dense], torch, { torchQuiet: false });
    expect(busy.layerRows[0].wall.timeRatioToTorch).to.equal(3); // 30 / 10
    expect(busy.layerRows[0].cpu.timeRatioToTorch).to.equal(null);
    expect(busy.targets.cpu.withinTwiceTorch).to.deep.equal([]);
    const quiet = deriveTargets([dense], torch, { torchQuiet: true });
    expect(quiet.layerRows[0].cpu.timeRatioToTorch).to.equal(1.2); // 12 / 10
    expect(quiet.targets.cpu.withinTwiceTorch[0].met).to.equal(true);
  });

  it('timeSteps runs warm-ups, then records wall and CPU time of each repetition', async function () {
    let calls = 0;
    const t = await timeSteps(
      () => {
        calls++;
        let x = 0;
        for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
        if (x < 0) throw new Error('unreachable');
      },
      2,
      5,
    );
    expect(calls).to.equal(7);
    expect(t.samplesMs).to.have.length(5);
    expect(t.minMs).to.be.at.most(t.medianMs);
    expect(t.medianMs).to.be.at.most(t.maxMs);
    expect(t.cpuMinMs).to.be.at.most(t.cpuMaxMs);
  });
});
