/**
 * `npm run bench` — how fast the layers and the ViT train on this machine, and the paper's cost
 * claims measured here (issue 6). A script, not a test. It prints tables and writes
 * data/results/bench/bench-<backend>[-quick].json (plus the expert-scaling figure as plotly JSON
 * and standalone HTML).
 *
 *   npm run bench                              # wasm, 15 timed repetitions after 3 warm-ups
 *   npm run bench -- --quick                   # fewer configurations and repetitions
 *   npm run bench -- --backend cpu --iters 5
 *   npm run bench -- --torch-peer ../shared/peer/bench_torch.py   # also run a PyTorch peer, after
 *   npm run bench -- --torch /tmp/torch-bench.json                 # or read its JSON output
 *
 * Sections:
 *  (a) layers: forward + backward (gradients of sum(y·r) for x and every parameter) of a dense MLP,
 *      Soft MoE, Tokens Choice (K = 1) and Experts Choice, batch 32 × 64 tokens, d 128, MLP
 *      hidden 256, 64 slots per sequence (Soft MoE p = 64/n; sparse routers capacity factor 1);
 *  (b) the expert-scaling sweep of the paper's Fig. 6 (right): 128 slots per sequence fixed, experts
 *      4 → 128 (slots per expert 32 → 1), the sparse routers at the same expert counts with
 *      capacity factor 1; times relative to Soft MoE at 4 experts;
 *  (c) a ViT training step (Adam, batch 128): dense vs Soft MoE in the last 2 of 4 blocks (16
 *      experts × 4 slots) — the PyTorch peer's tiny ViT (28×28, patch 4, d 64, 4 heads, MLP 128);
 *  (d) plain matrix products: the backend's own tf.matMul and the fast kernel (GFLOP/s);
 *  (e) peak resident memory and tensor counts before/after each section.
 * Every entry records its configuration, FLOPs, the median and the min–max spread of the timed
 * repetitions. FLOPs count matrix products only, 2·m·k·n each; a forward+backward step counts
 * 3× the forward products (each product has two gradient products of the same size).
 *
 * The wasm and cpu backends run each op eagerly and synchronously, so a step's wall time is its
 * compute time; no data is read back inside a timed layer step. The webgpu backend queues work on
 * the GPU: there every timed step ends by reading one element computed after all of it
 * (`settle`), which waits for the GPU. With `--backend webgpu` the ViT step runs at several batch
 * sizes (images/s), and `--baseline wasm` then times the same ViT steps on wasm in the same
 * process, for the GPU speed-up target of issue 11 (≥ 10× in images/s at the best batch size). Other processes share the cores:
 * the load average is recorded before and after, and the spread shows the noise.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, describeBackend, initBackend } from '../backend.js';
import { adapterName } from '../webgpu/device.js';
import { moeLayerFlops } from '../moe/cost.js';
import { computeCapacity } from '../moe/dispatch.js';
import { denseMLP, type DenseMLPParams } from '../moe/dense-mlp.js';
import type { RouterParams } from '../moe/gating.js';
import { expertsChoice, expertsChoiceCapacity } from '../moe/routers/experts-choice.js';
import { tokensChoice } from '../moe/routers/tokens-choice.js';
import { softMoE, type SoftMoEParams } from '../moe/soft-moe.js';
import { fastWasmStatus, setFastWasmEnabled } from '../ops/index.js';
import { product } from '../ops/matmul.js';
import { writeHtml } from '../plot/html.js';
import { expertScalingFigure, type ScalingPoint } from '../plot/scaling.js';
import { writeFileAtomicSync } from '../train/file-safety.js';
import { defaultResultsDir, gitInfo, machineInfo, median, versions, writeResults } from '../train/results.js';
import { Trainer } from '../train/trainer.js';
import { modelCost } from '../vit/cost.js';
import type { ViTConfig } from '../vit/config.js';
import { ViT } from '../vit/vit.js';
import { terminalProgress, type Progress } from '../plot/terminal-progress.js';
import { isMain } from './setup.js';

/** The layer configuration of issue 6 and of the PyTorch peer (`bench_torch.py`). */
export const LAYER_CONFIG = { batch: 32, tokens: 64, dim: 128, hidden: 256, slots: 64 } as const;
/** Fig. 6 (right): total slots per sequence held fixed while experts grow. */
export const SWEEP_SLOTS = 128;

export interface Timing {
  /** Wall-clock time per step: median, fastest, slowest, every sample. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
  /**
   * CPU time of this process per step (user + system, `process.cpuUsage`): what the step costs
   * when other work shares the cores, where wall time also counts the time it waited. tfjs on
   * wasm/cpu computes on one thread; the figure also includes V8's helper threads (GC).
   */
  cpuMedianMs: number;
  cpuMinMs: number;
  cpuMaxMs: number;
}

export interface Entry extends Timing {
  section: 'layers' | 'sweep' | 'vit' | 'vit-baseline' | 'matmul' | 'ablation';
  name: string;
  /** n experts, p slots per expert (Soft MoE) or C capacity (sparse), slots per sequence, batch. */
  config: Record<string, number | string | boolean>;
  /** Matrix-product FLOPs of one timed step. */
  flops: number;
  /** flops / median time. */
  gflops: number;
}

/**
 * Wait until the backend has computed `tensors` (and everything queued before them): on webgpu
 * and webgl, read one element of the last one; wasm and cpu have already computed them.
 */
export async function settle(tensors: tf.Tensor[]): Promise<void> {
  if (!['webgpu', 'webgl'].includes(tf.getBackend()) || tensors.length === 0) return;
  const last = tensors[tensors.length - 1];
  const one = tf.tidy(() => last.reshape([-1]).slice(0, 1));
  await one.data();
  one.dispose();
}

/** Time `step` after `warmup` untimed calls: `iters` wall-clock samples. */
export async function timeSteps(step: () => void | Promise<void>, warmup: number, iters: number): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await step();
  const samples: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < iters; i++) {
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    await step();
    samples.push(performance.now() - start);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  return {
    medianMs: median(samples),
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    samplesMs: samples.map((s) => Math.round(s * 1000) / 1000),
    cpuMedianMs: median(cpu),
    cpuMinMs: Math.min(...cpu),
    cpuMaxMs: Math.max(...cpu),
  };
}

// ---------------------------------------------------------------------------------------------
// Layer parameters and FLOPs (forward products; a step is 3×).

function randn(shape: number[], std: number, seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, std, 'float32', seed);
}

function expertParams(n: number, d: number, h: number, seed: number) {
  return {
    w1: randn([n, d, h], 1 / Math.sqrt(d), seed) as tf.Tensor3D,
    b1: randn([n, h], 0.01, seed + 1) as tf.Tensor2D,
    w2: randn([n, h, d], 1 / Math.sqrt(h), seed + 2) as tf.Tensor3D,
    b2: randn([n, d], 0.01, seed + 3) as tf.Tensor2D,
  };
}

/** Forward matrix-product FLOPs of one layer on [g, m, d]: g × lib/moe/cost.ts `moeLayerFlops`. */
export function layerForwardFlops(
  kind: LayerKind,
  g: number,
  m: number,
  d: number,
  h: number,
  n = 1,
  slotsPerExpert?: number,
): number {
  const sizes = {
    tokens: m,
    dim: d,
    hidden: h,
    experts: n,
    capacityFactor: 1,
    ...(kind === 'soft' ? { slotsPerExpert } : {}),
  };
  return g * moeLayerFlops(kind === 'dense' ? 'dense-mlp' : kind, sizes).total;
}

type LayerKind = 'dense' | 'soft' | 'tokens-choice' | 'experts-choice';

interface LayerCase {
  kind: LayerKind;
  n: number;
  /** Soft MoE: slots per expert p; sparse: capacity C; dense: 0. */
  buffer: number;
  slotsPerSequence: number;
  step: () => Promise<void>;
  dispose: () => void;
}

/** A forward+backward step of one layer on x [g, m, d] with a fixed random cotangent r. */
function layerCase(kind: LayerKind, n: number, slotsPerSequence: number, seed: number): LayerCase {
  const { batch: g, tokens: m, dim: d, hidden: h } = LAYER_CONFIG;
  const x = randn([g, m, d], 1, seed) as tf.Tensor3D;
  const r = randn([g, m, d], 1, seed + 10);
  let tensors: tf.Tensor[];
  let f: (...args: tf.Tensor[]) => tf.Tensor;
  let buffer = 0;
  if (kind === 'dense') {
    const p: DenseMLPParams = {
      w1: randn([d, h], 1 / Math.sqrt(d), seed + 1) as tf.Tensor2D,
      b1: randn([h], 0.01, seed + 2) as tf.Tensor1D,
      w2: randn([h, d], 1 / Math.sqrt(h), seed + 3) as tf.Tensor2D,
      b2: randn([d], 0.01, seed + 4) as tf.Tensor1D,
    };
    tensors = [p.w1, p.b1, p.w2, p.b2];
    f = (xx, w1, b1, w2, b2) => denseMLP(xx, { w1, b1, w2, b2 } as DenseMLPParams);
  } else if (kind === 'soft') {
    buffer = slotsPerSequence / n;
    const p: SoftMoEParams = {
      phi: randn([d, n, buffer], 1 / Math.sqrt(d), seed + 1) as tf.Tensor3D,
      scale: tf.scalar(1),
      ...expertParams(n, d, h, seed + 2),
    };
    tensors = [p.phi, p.scale, p.w1, p.b1, p.w2, p.b2];
    f = (xx, phi, scale, w1, b1, w2, b2) =>
      softMoE(xx as tf.Tensor3D, { phi, scale, w1, b1, w2, b2 } as SoftMoEParams).y;
  } else {
    const p: RouterParams = {
      wg: randn([d, n], 1 / Math.sqrt(d), seed + 1) as tf.Tensor2D,
      ...expertParams(n, d, h, seed + 2),
    };
    tensors = [p.wg, p.w1, p.b1, p.w2, p.b2];
    if (kind === 'tokens-choice') {
      // C = ceil(m·K·cf/n), K = 1, cf = 1 (vmoe's Tokens Choice default rounding).
      buffer = computeCapacity(m, n, 1, { ceilOrRound: 'ceil' });
      f = (xx, wg, w1, b1, w2, b2) =>
        tokensChoice(xx as tf.Tensor3D, { wg, w1, b1, w2, b2 } as RouterParams, { k: 1, capacityFactor: 1 }).y;
    } else {
      // C = round(m·cf/n) ≥ 1, cf = 1.
      buffer = expertsChoiceCapacity(m, n, 1);
      f = (xx, wg, w1, b1, w2, b2) =>
        expertsChoice(xx as tf.Tensor3D, { wg, w1, b1, w2, b2 } as RouterParams, { capacityFactor: 1 }).y;
    }
  }
  const args = [x, ...tensors];
  const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r));
  return {
    kind,
    n,
    buffer,
    slotsPerSequence,
    step: async () => {
      const grads = tf.grads(loss)(args);
      await settle(grads);
      tf.dispose(grads);
    },
    dispose: () => tf.dispose([x, r, ...tensors]),
  };
}

// ---------------------------------------------------------------------------------------------
// The PyTorch peer (optional): its JSON as written by bench_torch.py.

export interface TorchLayerRow {
  config: string;
  n: number;
  p: number;
  dense: number;
  soft_moe: number;
  tc_k1_index: number;
  tc_k1_einsum: number;
  ec_index: number;
  ec_einsum: number;
}
export interface TorchFile {
  info: Record<string, unknown>;
  layers: TorchLayerRow[];
  vit: Array<{ config: string; model: string; ms_per_step: number; params: number }>;
}

function readTorch(file: string): TorchFile {
  let doc: TorchFile;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as TorchFile;
  } catch (e) {
    throw new Error(`cannot read the torch peer's results ${file}: ${(e as Error).message}`);
  }
  if (!Array.isArray(doc.layers) || !Array.isArray(doc.vit))
    throw new Error(`${file}: not a bench_torch.py result (no layers/vit arrays)`);
  return doc;
}

/** The peer's median for a layer entry (one thread), the faster of its two dispatch variants. */
function torchLayerMs(torch: TorchFile, kind: LayerKind, n: number): number | null {
  const row =
    torch.layers.find((l) => l.config === '1thr' && l.n === n) ??
    (kind === 'dense' ? torch.layers.find((l) => l.config === '1thr') : undefined);
  if (!row) return null;
  switch (kind) {
    case 'dense':
      return row.dense;
    case 'soft':
      return row.soft_moe;
    case 'tokens-choice':
      return Math.min(row.tc_k1_index, row.tc_k1_einsum);
    case 'experts-choice':
      return Math.min(row.ec_index, row.ec_einsum);
  }
}

// ---------------------------------------------------------------------------------------------

const OPTIONS = {
  backend: { type: 'string', default: 'wasm' },
  'vit-batches': { type: 'string' },
  baseline: { type: 'string' },
  iters: { type: 'string' },
  warmup: { type: 'string', default: '3' },
  quick: { type: 'boolean', default: false },
  out: { type: 'string' },
  torch: { type: 'string' },
  'torch-peer': { type: 'string' },
  'torch-load': { type: 'string' },
  python: { type: 'string', default: '/usr/bin/python3' },
  only: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

const HELP = `npm run bench -- [options]
  --backend wasm|cpu|tensorflow|webgpu  backend (default wasm)
  --vit-batches 32,64,…           ViT step batch sizes (default 128; on webgpu 32,64,128,256)
  --baseline wasm                 afterwards, time the same ViT steps on this backend (same
                                  process, same machine) and compare images/s (issue 11 target)
  --iters N                       timed repetitions per entry (default 15, --quick 5)
  --warmup N                      untimed repetitions first (default 3)
  --quick                         fewer configurations and repetitions
  --only a,b,…                    sections: layers, sweep, vit, matmul, ablation (default all)
  --out DIR                       output folder (default data/results/bench)
  --torch FILE                    compare with a PyTorch peer's JSON (bench_torch.py --out FILE)
  --torch-load L                  the 1-min load average when that file was timed (if known): below
                                  half the cores, our CPU times are compared with it too
  --torch-peer SCRIPT             run that peer (one thread) after the tfjs measurements
  --python PATH                   interpreter for --torch-peer (default /usr/bin/python3)`;

function positiveInt(value: string, name: string): number {
  const v = Number(value);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be an integer ≥ 1, got ${JSON.stringify(value)}`);
  return v;
}

const fmt = (v: number | null | undefined, digits = 1) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(digits));

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padStart(widths[i])).join(' | ') + ' |';
  return [line(headers), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join(
    '\n',
  );
}

function peakRssMB(): number {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

type Basis = 'wall' | 'cpu';
const BASES: Basis[] = ['wall', 'cpu'];
const ms = (e: Timing, basis: Basis) => (basis === 'wall' ? e.medianMs : e.cpuMedianMs);

/** Per-layer ratios and the four targets of issue 6, on wall time and on CPU time. */
export function deriveTargets(entries: Entry[], torch: TorchFile | null, options: { torchQuiet?: boolean } = {}) {
  // The peer reports wall-clock medians. Our CPU time is compared with them only when the peer
  // ran on a quiet machine (its wall time then is its CPU time: one thread); under load its wall
  // time includes waiting, and only our wall time from the same run is comparable.
  const torchFor = (basis: Basis) => basis === 'wall' || options.torchQuiet === true;
  const find = (section: Entry['section'], pred: (e: Entry) => boolean) =>
    entries.find((e) => e.section === section && pred(e));
  const dense = find('layers', (e) => e.config.kind === 'dense');
  const plainTf = find('matmul', (e) => e.name.startsWith('tf.matMul 512'));
  const plainFast = find('matmul', (e) => e.name.startsWith('lib product 512'));
  const layerRows = entries
    .filter((e) => e.section === 'layers')
    .map((e) => {
      const torchMs = torch ? torchLayerMs(torch, e.config.kind as LayerKind, e.config.n as number) : null;
      const per = (basis: Basis) => ({
        timeRatioToDense: dense ? ms(e, basis) / ms(dense, basis) : null,
        gflops: e.flops / ms(e, basis) / 1e6,
        timeRatioToTorch: torchMs && torchFor(basis) ? ms(e, basis) / torchMs : null,
      });
      return {
        name: e.name,
        config: e.config,
        flops: e.flops,
        flopRatioToDense: dense ? e.flops / dense.flops : null,
        torchMs,
        wall: per('wall'),
        cpu: per('cpu'),
      };
    });
  const sweepSoft = entries.filter((e) => e.section === 'sweep' && e.config.kind === 'soft');
  const vitDense = find('vit', (e) => e.config.kind === 'dense');
  const vitSoft = find('vit', (e) => e.config.kind === 'soft');
  const targetsOn = (basis: Basis) => ({
    softOverDense: layerRows
      .filter((r) => r.config.kind === 'soft')
      .map((r) => {
        const limit = r.flopRatioToDense != null ? 1.1 * r.flopRatioToDense : null;
        const ratio = r[basis].timeRatioToDense;
        return {
          n: r.config.n,
          timeRatio: ratio,
          flopRatio: r.flopRatioToDense,
          limit,
          met: ratio != null && limit != null ? ratio <= limit : null,
        };
      }),
    sweepFlatness: sweepSoft.length
      ? (() => {
          const times = sweepSoft.map((e) => ms(e, basis));
          const ratio = Math.max(...times) / Math.min(...times);
          return { slowestOverFastest: ratio, limit: 1.15, met: ratio <= 1.15 };
        })()
      : null,
    matmulBound: entries
      .filter((e) => e.section === 'layers' && (e.config.kind === 'dense' || e.config.kind === 'soft'))
      .map((e) => {
        const achieved = e.flops / ms(e, basis) / 1e6;
        const plain = plainTf ? plainTf.flops / ms(plainTf, basis) / 1e6 : null;
        return {
          name: e.name,
          achievedGflops: achieved,
          plainTfMatMulGflops: plain,
          plainFastGflops: plainFast ? plainFast.flops / ms(plainFast, basis) / 1e6 : null,
          plainOverAchieved: plain != null ? plain / achieved : null,
          limit: 1.3,
          met: plain != null ? plain / achieved <= 1.3 : null,
        };
      }),
    vitSoftOverDense:
      vitDense && vitSoft
        ? {
            ratio: ms(vitSoft, basis) / ms(vitDense, basis),
            limit: 1.3,
            met: ms(vitSoft, basis) / ms(vitDense, basis) <= 1.3,
          }
        : null,
    withinTwiceTorch: layerRows
      .filter((r) => r.torchMs != null && torchFor(basis))
      .map((r) => ({
        name: r.name,
        ratio: r[basis].timeRatioToTorch,
        limit: 2,
        met: (r[basis].timeRatioToTorch ?? Infinity) <= 2,
      })),
  });
  return { layerRows, targets: { wall: targetsOn('wall'), cpu: targetsOn('cpu') } };
}

function formatTables(
  entries: Entry[],
  layerRows: ReturnType<typeof deriveTargets>['layerRows'],
  torch: TorchFile | null,
): string[] {
  const out: string[] = [];
  const { batch: g, tokens: m, dim: d, hidden: h } = LAYER_CONFIG;
  const timeCells = (e: Timing) => [fmt(e.medianMs), `${fmt(e.minMs)}–${fmt(e.maxMs)}`, fmt(e.cpuMedianMs)];
  if (layerRows.length) {
    out.push(
      `\n### (a) Layers, forward + backward: batch ${g} × ${m} tokens, d ${d}, hidden ${h}, ${LAYER_CONFIG.slots} slots (Soft MoE) / capacity factor 1 (sparse)`,
    );
    out.push(
      table(
        [
          'layer',
          'n',
          'p/C',
          'wall ms',
          'min–max',
          'cpu ms',
          'GFLOP',
          'GFLOP/s cpu',
          'time/dense wall',
          'cpu',
          'FLOPs/dense',
          'torch ms',
          'ours/torch wall',
          'cpu',
        ],
        layerRows.map((r) => {
          const e = entries.find((x) => x.section === 'layers' && x.name === r.name)!;
          return [
            r.name,
            r.config.n as number,
            (r.config.p ?? r.config.C ?? '–') as number,
            ...timeCells(e),
            fmt(r.flops / 1e9, 3),
            fmt(r.cpu.gflops),
            fmt(r.wall.timeRatioToDense, 2),
            fmt(r.cpu.timeRatioToDense, 2),
            fmt(r.flopRatioToDense, 3),
            fmt(r.torchMs),
            fmt(r.wall.timeRatioToTorch, 2),
            fmt(r.cpu.timeRatioToTorch, 2),
          ];
        }),
      ),
    );
  }
  const sweep = entries.filter((e) => e.section === 'sweep');
  if (sweep.length) {
    const soft = sweep.filter((e) => e.config.kind === 'soft');
    const ref = soft.reduce((a, b) => ((a.config.n as number) <= (b.config.n as number) ? a : b), soft[0]);
    out.push(
      `\n### (b) Expert scaling (Fig. 6 right): ${SWEEP_SLOTS} slots per sequence for Soft MoE; sparse routers capacity factor 1; relative to Soft MoE at ${ref?.config.n} experts`,
    );
    out.push(
      table(
        ['layer', 'n', 'p/C', 'wall ms', 'min–max', 'cpu ms', 'relative wall', 'cpu', 'GFLOP', 'GFLOP/s cpu'],
        sweep.map((e) => [
          e.name.replace('sweep ', ''),
          e.config.n as number,
          (e.config.p ?? e.config.C) as number,
          ...timeCells(e),
          fmt(ref ? e.medianMs / ref.medianMs : null, 2),
          fmt(ref ? e.cpuMedianMs / ref.cpuMedianMs : null, 2),
          fmt(e.flops / 1e9, 3),
          fmt(e.flops / e.cpuMedianMs / 1e6),
        ]),
      ),
    );
  }
  const vits = entries.filter((e) => e.section === 'vit' || e.section === 'vit-baseline');
  if (vits.length) {
    const torchVit = (model: string) =>
      torch?.vit.find((v) => v.config === '1thr' && v.model === model)?.ms_per_step ?? null;
    out.push(
      '\n### (c) ViT training step (Adam, clip 1.0), 28×28, patch 4, d 64, 4 blocks, MLP 128 (the PyTorch peer times batch 128)',
    );
    out.push(
      table(
        [
          'model',
          'backend',
          'batch',
          'params',
          'wall ms',
          'min–max',
          'cpu ms',
          'images/s',
          'GFLOP',
          'GFLOP/s wall',
          'torch ms',
        ],
        vits.map((e) => [
          e.name,
          String(e.config.backend ?? ''),
          e.config.batch as number,
          e.config.parameters as number,
          ...timeCells(e),
          fmt(e.config.imagesPerSecond as number),
          fmt(e.flops / 1e9, 3),
          fmt(e.gflops),
          e.config.batch === 128 ? fmt(torchVit(e.config.kind === 'soft' ? 'softmoe' : 'dense')) : '–',
        ]),
      ),
    );
  }
  const mms = entries.filter((e) => e.section === 'matmul' || e.section === 'ablation');
  if (mms.length) {
    out.push('\n### (d) Plain products, and the layers through the portable path (public tfjs ops)');
    out.push(
      table(
        ['what', 'wall ms', 'min–max', 'cpu ms', 'GFLOP/s wall', 'GFLOP/s cpu'],
        mms.map((e) => [
          e.name,
          fmt(e.medianMs, 3),
          `${fmt(e.minMs, 3)}–${fmt(e.maxMs, 3)}`,
          fmt(e.cpuMedianMs, 3),
          fmt(e.gflops),
          fmt(e.flops / e.cpuMedianMs / 1e6),
        ]),
      ),
    );
  }
  return out;
}

/**
 * Issue 11 targets, when the ViT ran on a GPU backend with a baseline: Soft MoE ViT training
 * throughput at the best batch size ≥ 10× the baseline's best (images/s), and (from the sweep)
 * Soft MoE step time flat in experts at fixed slots.
 */
export function gpuTargets(entries: Entry[], software = false) {
  const best = (section: Entry['section'], kind: string) => {
    const rows = entries.filter((e) => e.section === section && e.config.kind === kind);
    if (!rows.length) return null;
    const top = rows.reduce((a, b) =>
      (a.config.imagesPerSecond as number) >= (b.config.imagesPerSecond as number) ? a : b,
    );
    return {
      imagesPerSecond: top.config.imagesPerSecond as number,
      batch: top.config.batch as number,
      backend: top.config.backend as string,
    };
  };
  const gpuSoft = best('vit', 'soft');
  const cpuSoft = best('vit-baseline', 'soft');
  if (!gpuSoft || !cpuSoft) return null;
  const speedup = gpuSoft.imagesPerSecond / cpuSoft.imagesPerSecond;
  return {
    // A software adapter is the CPU emulating a GPU: not judged (met null).
    vitSoftThroughput: {
      gpu: gpuSoft,
      baseline: cpuSoft,
      dense: { gpu: best('vit', 'dense'), baseline: best('vit-baseline', 'dense') },
      speedup,
      limit: 10,
      met: software ? null : speedup >= 10,
    },
  };
}

function formatGpuTargets(gpu: NonNullable<ReturnType<typeof gpuTargets>>): string[] {
  const t = gpu.vitSoftThroughput;
  const verdict = t.met == null ? 'not judged (software adapter)' : t.met ? 'met' : 'NOT met';
  return [
    '\n### GPU target (issue 11)',
    `- Soft MoE ViT training throughput, best batch: ${t.gpu.backend} ${fmt(t.gpu.imagesPerSecond)} images/s (batch ${t.gpu.batch}) vs ${t.baseline.backend} ${fmt(t.baseline.imagesPerSecond)} (batch ${t.baseline.batch}): ${fmt(t.speedup, 2)}× vs ≥ 10×: ${verdict}`,
  ];
}

function formatTargets(targets: ReturnType<typeof deriveTargets>['targets']): string[] {
  const out = ['\n### Targets (issue 6)'];
  const verdict = (met: boolean | null) => (met == null ? 'n/a' : met ? 'met' : 'NOT met');
  for (const basis of BASES) {
    const t = targets[basis];
    out.push(`on ${basis} time:`);
    for (const r of t.softOverDense)
      out.push(
        `- Soft MoE n=${r.n}: time/dense ${fmt(r.timeRatio, 2)} vs 1.1 × FLOP ratio ${fmt(r.flopRatio, 3)} = ${fmt(r.limit, 2)}: ${verdict(r.met)}`,
      );
    if (t.sweepFlatness)
      out.push(
        `- Soft MoE flat in experts at ${SWEEP_SLOTS} slots: slowest/fastest ${fmt(t.sweepFlatness.slowestOverFastest, 2)} vs 1.15: ${verdict(t.sweepFlatness.met)}`,
      );
    for (const r of t.matmulBound) {
      out.push(
        `- ${r.name}: ${fmt(r.achievedGflops)} GFLOP/s; backend tf.matMul 512³ ${fmt(r.plainTfMatMulGflops)} (÷ achieved ${fmt(r.plainOverAchieved, 2)} vs 1.3: ${verdict(r.met)}); fast kernel 512³ ${fmt(r.plainFastGflops)}`,
      );
    }
    if (t.vitSoftOverDense)
      out.push(
        `- ViT Soft MoE / dense: ${fmt(t.vitSoftOverDense.ratio, 2)} vs 1.3: ${verdict(t.vitSoftOverDense.met)}`,
      );
    for (const r of t.withinTwiceTorch)
      out.push(`- ${r.name} / PyTorch peer: ${fmt(r.ratio, 2)} vs 2: ${verdict(r.met)}`);
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  const { values: opts } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false });
  if (opts.help) {
    console.log(HELP);
    return;
  }
  const quick = opts.quick;
  const iters = opts.iters != null ? positiveInt(opts.iters, 'iters') : quick ? 5 : 15;
  const warmup = Number(opts.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be an integer ≥ 0, got ${opts.warmup}`);
  const sections = new Set((opts.only ?? 'layers,sweep,vit,matmul,ablation').split(','));
  for (const s of sections)
    if (!['layers', 'sweep', 'vit', 'matmul', 'ablation'].includes(s))
      throw new Error(`--only: unknown section ${JSON.stringify(s)}`);
  const outDir = resolve(opts.out ?? join(defaultResultsDir(), 'bench'));
  const torchFile = opts.torch != null ? readTorch(opts.torch) : null;

  const info = await initBackend(opts.backend);
  const backend = info.name;
  const vitBatches = (opts['vit-batches'] ?? (backend === 'webgpu' ? '32,64,128,256' : '128'))
    .split(',')
    .map((b) => positiveInt(b, 'vit-batches'));
  const baseline = opts.baseline ?? null;
  if (baseline != null && baseline === backend)
    throw new Error(`--baseline ${baseline} is the benchmarked backend itself; name another (wasm)`);
  const loadBefore = os.loadavg();
  const layerExperts = quick ? [4, 16] : [4, 16, 64];
  const sweepExperts = quick ? [4, 16, 128] : [4, 8, 16, 32, 64, 128];
  const total =
    (sections.has('layers') ? 1 + 3 * layerExperts.length : 0) +
    (sections.has('sweep') ? 3 * sweepExperts.length : 0) +
    (sections.has('vit') ? 2 * vitBatches.length * (baseline ? 2 : 1) : 0) +
    (sections.has('matmul') ? 5 : 0) +
    (sections.has('ablation') && backend === 'wasm' ? 2 : 0);
  const bar: Progress = terminalProgress({ total, label: `bench ${backend}` });
  const entries: Entry[] = [];
  const tensorCounts: Record<string, { before: number; after: number }> = {};
  let done = 0;
  const record = (entry: Omit<Entry, 'gflops'>): Entry => {
    const full: Entry = { ...entry, gflops: entry.flops > 0 ? entry.flops / entry.medianMs / 1e6 : 0 };
    entries.push(full);
    bar.update(++done, `${entry.name}: ${entry.medianMs.toFixed(1)} ms`);
    return full;
  };
  const section = async (name: string, body: () => Promise<void>) => {
    if (!sections.has(name === 'vit-baseline' ? 'vit' : name)) return;
    const before = tf.memory().numTensors;
    await body();
    tensorCounts[name] = { before, after: tf.memory().numTensors };
  };
  const { batch: g, tokens: m, dim: d, hidden: h } = LAYER_CONFIG;
  const measureLayer = async (
    sectionName: 'layers' | 'sweep' | 'ablation',
    kind: LayerKind,
    n: number,
    slots: number,
    label: string,
    seed: number,
    reps = iters,
  ) => {
    const c = layerCase(kind, n, slots, seed);
    try {
      const t = await timeSteps(c.step, warmup, reps);
      return record({
        section: sectionName,
        name: label,
        config: {
          kind,
          n,
          [kind === 'soft' ? 'p' : 'C']: c.buffer,
          slotsPerSequence: kind === 'dense' ? m : n * c.buffer,
          batch: g,
          tokens: m,
          d,
          h,
        },
        flops: 3 * layerForwardFlops(kind, g, m, d, h, n, kind === 'soft' ? c.buffer : undefined),
        ...t,
      });
    } finally {
      c.dispose();
    }
  };

  // (a) the four layer kinds.
  await section('layers', async () => {
    await measureLayer('layers', 'dense', 1, m, 'dense MLP', 1);
    for (const n of layerExperts) {
      await measureLayer('layers', 'soft', n, LAYER_CONFIG.slots, `Soft MoE n=${n}`, 10 + n);
      await measureLayer('layers', 'tokens-choice', n, 0, `Tokens Choice K=1 n=${n}`, 20 + n);
      await measureLayer('layers', 'experts-choice', n, 0, `Experts Choice n=${n}`, 30 + n);
    }
  });

  // (b) Fig. 6 right: 128 slots per sequence, experts 4 → 128.
  await section('sweep', async () => {
    for (const n of sweepExperts) {
      await measureLayer('sweep', 'soft', n, SWEEP_SLOTS, `sweep Soft MoE n=${n}`, 40 + n);
      await measureLayer('sweep', 'tokens-choice', n, 0, `sweep Tokens Choice n=${n}`, 50 + n);
      await measureLayer('sweep', 'experts-choice', n, 0, `sweep Experts Choice n=${n}`, 60 + n);
    }
  });

  // (c) ViT training step, dense vs Soft MoE (the peer's tiny ViT).
  const vitBase: ViTConfig = {
    imageSize: 28,
    channels: 1,
    patchSize: 4,
    dim: 64,
    depth: 4,
    numHeads: 4,
    mlpDim: 128,
    seed: 0,
  };
  const vitConfigs: Array<[string, ViTConfig]> = [
    ['ViT dense', { ...vitBase, kind: 'dense' }],
    [
      'ViT Soft MoE (16 experts × 4 slots, blocks 2–3)',
      { ...vitBase, kind: 'soft', moe: { numExperts: 16, slotsPerExpert: 4, layers: [2, 3] } },
    ],
  ];
  const vitSection = async (sectionName: 'vit' | 'vit-baseline') => {
    for (const vitBatch of vitBatches) {
      const images = tf.randomUniform([vitBatch, 28, 28, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
      const labels = tf.randomUniform([vitBatch], 0, 10, 'int32', 8) as tf.Tensor1D;
      try {
        for (const [name, config] of vitConfigs) {
          const model = new ViT(config);
          const trainer = new Trainer(model, { steps: 100000, batchSize: vitBatch });
          try {
            // trainStep reads its loss back, so it has finished on every backend when it returns.
            const t = await timeSteps(
              async () => {
                await trainer.trainStep(images, labels);
              },
              warmup,
              iters,
            );
            const cost = modelCost(config);
            record({
              section: sectionName,
              name: vitBatches.length > 1 ? `${name}, batch ${vitBatch}` : name,
              config: {
                kind: config.kind ?? 'dense',
                batch: vitBatch,
                parameters: cost.parameters,
                imagesPerSecond: (vitBatch / t.medianMs) * 1000,
                backend: tf.getBackend(),
                ...(config.moe ? { n: 16, p: 4, slotsPerSequence: 64 } : {}),
              },
              flops: 3 * vitBatch * cost.flopsPerImage.total,
              ...t,
            });
          } finally {
            trainer.dispose();
            model.dispose();
          }
        }
      } finally {
        tf.dispose([images, labels]);
      }
    }
  };
  await section('vit', () => vitSection('vit'));

  // (d) plain products.
  await section('matmul', async () => {
    const plain = async (
      name: string,
      mm: number,
      kk: number,
      nn: number,
      run: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
      batch = 1,
    ) => {
      const a = randn(batch > 1 ? [batch, mm, kk] : [mm, kk], 1, 1);
      const b = randn(batch > 1 ? [batch, kk, nn] : [kk, nn], 1, 2);
      try {
        const t = await timeSteps(
          async () => {
            const out = tf.tidy(() => run(a, b));
            await settle([out]);
            out.dispose();
          },
          warmup,
          Math.max(iters, 10),
        );
        record({
          section: 'matmul',
          name,
          config: { m: mm, k: kk, n: nn, batch },
          flops: 2 * batch * mm * kk * nn,
          ...t,
        });
      } finally {
        tf.dispose([a, b]);
      }
    };
    await plain('tf.matMul 512³ (backend kernel)', 512, 512, 512, (a, b) =>
      tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    );
    await plain('tf.matMul 1024³ (backend kernel)', 1024, 1024, 1024, (a, b) =>
      tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    );
    await plain('lib product 512³ (fast path if on)', 512, 512, 512, (a, b) =>
      product(a.reshape([1, 512, 512]) as tf.Tensor3D, b.reshape([1, 512, 512]) as tf.Tensor3D),
    );
    await plain(
      'tf.matMul [32, 64, 64]·[32, 64, 128] (rank 3)',
      64,
      64,
      128,
      (a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
      32,
    );
    await plain(
      'lib product [32, 64, 64]·[32, 64, 128]',
      64,
      64,
      128,
      (a, b) => product(a as tf.Tensor3D, b as tf.Tensor3D),
      32,
    );
  });

  // Ablation: the same Soft MoE and dense layers through the portable path (public tfjs ops).
  if (backend === 'wasm') {
    await section('ablation', async () => {
      const previous = setFastWasmEnabled(false);
      try {
        const reps = Math.min(iters, 5);
        await measureLayer('ablation', 'dense', 1, m, 'dense MLP, portable path', 1, reps);
        await measureLayer('ablation', 'soft', 16, LAYER_CONFIG.slots, 'Soft MoE n=16, portable path', 26, reps);
      } finally {
        setFastWasmEnabled(previous);
      }
    });
  }
  // The same ViT steps on the baseline backend (issue 11: GPU images/s against this machine's CPU).
  let baselineInfo: ReturnType<typeof backendInfo> | null = null;
  if (baseline != null && sections.has('vit')) {
    const gpuInfo = backendInfo();
    baselineInfo = await initBackend(baseline);
    await section('vit-baseline', () => vitSection('vit-baseline'));
    await initBackend(gpuInfo.name);
  }
  bar.finish();
  const loadAfter = os.loadavg();

  // The PyTorch peer, run after the tfjs measurements (never at the same time).
  let torch = torchFile;
  let torchSource = opts.torch ?? null;
  let torchLoad: number[] | null = opts['torch-load'] != null ? [Number(opts['torch-load'])] : null;
  if (opts['torch-peer'] != null) {
    const script = resolve(opts['torch-peer']);
    if (!existsSync(script)) throw new Error(`--torch-peer: ${script} does not exist`);
    const out = join(os.tmpdir(), `softmoe-torch-bench-${process.pid}.json`);
    console.error(`running the PyTorch peer: ${opts.python} ${script} --iters ${iters} --configs 1thr`);
    const before = os.loadavg();
    execFileSync(opts.python, [script, '--iters', String(iters), '--configs', '1thr', '--out', out], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    torchLoad = [before[0], os.loadavg()[0]];
    torch = readTorch(out);
    torchSource = `${script} (run by this benchmark, --iters ${iters}, one thread)`;
  }

  // ---- Derived numbers and targets (issue 6), on wall time and on CPU time.
  const b = backendInfo();
  const torchQuiet = torchLoad != null && torchLoad.every((l) => l < os.cpus().length / 2);
  const { layerRows, targets } = deriveTargets(entries, torch, { torchQuiet });
  const gpu = gpuTargets(entries, b.webgpu?.software === true);
  const out: string[] = [];
  const fast = fastWasmStatus();
  out.push(
    `\n## Benchmark: backend ${describeBackend(b)} (tfjs ${b.tfjsVersion}), fast wasm kernels: ${fast.active ? 'on' : `off (${fast.reason})`}`,
  );
  if (b.webgpu?.software)
    out.push(
      `**${adapterName(b.webgpu)} is a software adapter (the CPU emulating a GPU): these times check that the webgpu path runs, they say nothing about GPU speed.**`,
    );
  out.push(
    `${iters} timed repetitions after ${warmup} warm-ups; wall = median (min–max) wall-clock ms, cpu = median CPU ms of this process; ` +
      `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} cores` +
      (loadBefore[0] > os.cpus().length * 0.5
        ? ' — the machine is shared and busy: wall times include waiting; CPU times are the cost of the step'
        : ''),
  );
  if (torch) {
    out.push(
      `PyTorch peer (${torchSource}): wall-clock medians, one thread; load average ${torchLoad ? torchLoad.map((l) => l.toFixed(2)).join(' → ') : 'unknown'}` +
        (torchQuiet
          ? ' (quiet: our CPU times are compared with it too)'
          : ' (not known to be quiet: compared with our wall times only)'),
    );
  }
  out.push(...formatTables(entries, layerRows, torch));
  out.push(
    `\n### (e) Memory: peak RSS ${peakRssMB()} MB; tensors before → after each section: ${Object.entries(tensorCounts)
      .map(([k, v]) => `${k} ${v.before}→${v.after}`)
      .join(', ')}`,
  );
  out.push(...formatTargets(targets));
  if (gpu) out.push(...formatGpuTargets(gpu));
  console.log(out.join('\n'));

  // ---- Files.
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create the output folder ${outDir}: ${(e as Error).message}`);
  }
  const suffix = `${backend}${b.webgpu?.software ? '-software' : ''}${quick ? '-quick' : ''}`;
  const file = join(outDir, `bench-${suffix}.json`);
  const doc = {
    status: 'finished',
    kind: 'benchmark',
    createdAt: new Date().toISOString(),
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    backend: backendInfo(),
    fastWasm: fastWasmStatus(),
    machine: { ...machineInfo(), loadAverageBefore: loadBefore, loadAverageAfter: loadAfter },
    versions: versions(),
    git: gitInfo(),
    settings: {
      iters,
      warmup,
      quick,
      layer: LAYER_CONFIG,
      sweepSlots: SWEEP_SLOTS,
      flops: 'matrix products only, 2·m·k·n each; a training step counts 3× its forward products',
    },
    entries,
    layers: layerRows,
    targets,
    gpuTargets: gpu,
    baseline: baselineInfo,
    memory: { peakRssMB: peakRssMB(), tensorCounts },
    torch: torch
      ? {
          source: torchSource,
          loadAverage: torchLoad,
          quiet: torchQuiet,
          info: torch.info,
          layers: torch.layers.filter((l) => l.config === '1thr'),
          vit: torch.vit.filter((v) => v.config === '1thr'),
        }
      : null,
  };
  writeResults(file, doc, { force: true });
  console.log(`\nwrote ${file}`);
  const sweep = entries.filter((e) => e.section === 'sweep');
  if (sweep.length) {
    const figures = BASES.map((basis) => {
      const points: ScalingPoint[] = sweep.map((e) => ({
        method:
          e.config.kind === 'soft'
            ? 'Soft MoE'
            : e.config.kind === 'tokens-choice'
              ? 'Tokens Choice (K=1, cf 1)'
              : 'Experts Choice (cf 1)',
        experts: e.config.n as number,
        medianMs: ms(e, basis),
        minMs: basis === 'wall' ? e.minMs : e.cpuMinMs,
        maxMs: basis === 'wall' ? e.maxMs : e.cpuMaxMs,
      }));
      return expertScalingFigure(points, {
        title: `${basis === 'wall' ? 'Wall-clock' : 'CPU'} time per forward+backward step vs experts, ${SWEEP_SLOTS} slots per sequence (${backend})`,
      });
    });
    const figFile = join(outDir, `scaling-${suffix}.figure.json`);
    writeFileAtomicSync(figFile, JSON.stringify(figures[1]) + '\n');
    const html = writeHtml(
      figures,
      join(outDir, `scaling-${suffix}.html`),
      'Soft MoE expert scaling (Fig. 6 right), measured',
    );
    console.log(`wrote ${figFile} (CPU time)\nwrote ${html} (wall and CPU time)`);
  }
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
