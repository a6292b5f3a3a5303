/**
 * Train a ViT (dense, Soft MoE, Tokens Choice or Experts Choice blocks) on MNIST or
 * Fashion-MNIST and write a results file under data/results/.
 *
 *   npm run train -- --dataset fashion-mnist --model soft --experts 16 --slots 1 --steps 2000 --seed 0 --backend wasm
 *   npm run train -- --dataset fashion-mnist --steps 1500 \
 *       --sweep model=dense,soft,soft+experts=64,tokens-choice,tokens-choice+k=2,experts-choice --sweep seed=0,1
 *
 * A sweep axis is `key=alt1,alt2,…`; an alternative may set other options too, joined by `+`
 * (`soft+experts=64`). Axes multiply. Each run writes one file; a finished result is skipped
 * unless --force. `--help` lists every option.
 */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, describeBackend, initBackend } from '../backend.js';
import { DATASET_NAMES, splitValidation, type DatasetName, type ImageDataset } from '../data/datasets.js';
import { loadDataset } from '../data/load.js';
import { batchesPerEpoch, batchFromIndices } from '../data/batches.js';
import { defaultResultsDir, gitInfo, machineInfo, median, resultStatus, versions, writeResults } from '../train/results.js';
import { loadTrainerCheckpoint, saveTrainerCheckpoint } from '../train/checkpoint.js';
import { Trainer, type EvalResult, type History, type StepResult } from '../train/trainer.js';
import { BLOCK_KINDS, SIZE_PRESETS, type BlockKind, type SizePreset, type ViTConfig } from '../vit/config.js';
import { modelCost } from '../vit/cost.js';
import { ViT } from '../vit/vit.js';
import { terminalProgress } from '../plot/terminal-progress.js';

const OPTIONS = {
  dataset: { type: 'string', default: 'fashion-mnist' },
  model: { type: 'string', default: 'soft' },
  size: { type: 'string', default: 'small' },
  dim: { type: 'string' },
  depth: { type: 'string' },
  heads: { type: 'string' },
  'mlp-dim': { type: 'string' },
  patch: { type: 'string', default: '4' },
  experts: { type: 'string', default: '16' },
  slots: { type: 'string' },
  k: { type: 'string', default: '1' },
  'capacity-factor': { type: 'string' },
  bpr: { type: 'boolean', default: false },
  'noise-std': { type: 'string' },
  'moe-layers': { type: 'string' },
  'aux-weight': { type: 'string' },
  'expert-init': { type: 'string' },
  'head-init': { type: 'string' },
  dispatch: { type: 'string' },
  combine: { type: 'string' },
  'experts-fn': { type: 'string' },
  normalize: { type: 'string' },
  'scale-init': { type: 'string' },
  'scale-lr-mult': { type: 'string' },
  'phi-lr-mult': { type: 'string' },
  'phi-init-std': { type: 'string' },
  'soft-noise-std': { type: 'string' },
  'probe-examples': { type: 'string', default: '64' },
  steps: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string', default: '128' },
  lr: { type: 'string', default: '1e-3' },
  warmup: { type: 'string' },
  decay: { type: 'string', default: 'cosine' },
  'end-lr': { type: 'string', default: '0' },
  'weight-decay': { type: 'string', default: '0' },
  shift: { type: 'string', default: '0' },
  clip: { type: 'string', default: '1' },
  seed: { type: 'string', default: '0' },
  'split-seed': { type: 'string', default: '0' },
  validation: { type: 'string', default: '5000' },
  'eval-every': { type: 'string', default: '250' },
  'eval-examples': { type: 'string' },
  backend: { type: 'string' },
  out: { type: 'string' },
  'results-dir': { type: 'string' },
  tag: { type: 'string' },
  checkpoint: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  resume: { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  sweep: { type: 'string', multiple: true },
  help: { type: 'boolean', default: false },
} as const;

const HELP = `npm run train -- [options]
Data       --dataset mnist|fashion-mnist|tiny-mnist|tiny-fashion-mnist (fashion-mnist)
           --validation N   images held out of the training split for validation (5000)
           --split-seed S   seed of that hold-out (0; keep it fixed across runs)
Model      --model dense|soft|tokens-choice|experts-choice (soft)
           --size tiny|small|medium (small: d 64, 4 blocks, 4 heads, MLP 256)
           --dim --depth --heads --mlp-dim --patch (4)   override the preset
           --experts N (16)  --slots P (Soft MoE, default 1)  --k K (Tokens Choice, 1)
           --capacity-factor C  --bpr  --noise-std S  --moe-layers 2,3  --aux-weight W
           --expert-init shared|independent  --head-init zeros|uniform (zeros, as vmoe)
           --dispatch softmax|uniform  --combine softmax|uniform  --experts-fn mlp|identity
                            Soft MoE ablations of the paper's Table 2 (default softmax, softmax, mlp)
           --normalize true|false  Soft MoE §2.3 l2 normalisation of X and Φ (true, as vmoe)
           --scale-init S   initial Soft MoE scale (1, vmoe scale_init = ones)
           --scale-lr-mult K  --phi-lr-mult K   learning-rate multiplier of scale / Φ (1, as vmoe)
           --phi-init-std S   std of Φ's normal init (1/√d, vmoe lecun_normal)
           --soft-noise-std S   Gaussian noise on Soft MoE logits in training (0, vmoe noise_std)
Training   --steps N | --epochs E  --batch-size B (128)  --lr (1e-3)  --warmup N
           --decay cosine|linear|constant  --end-lr  --weight-decay  --clip (1; 0 = none)
           --shift S   move each training image by up to S pixels per axis (0: no augmentation)
           --seed S (0: weights and batch order)  --backend wasm|cpu|tensorflow|webgpu
Evaluation --eval-every N (250)  --eval-examples N (all validation images)
           --probe-examples N   first N validation images on which the Soft MoE diagnostics
                            (lib/moe/diagnostics.ts) are recorded at each evaluation (64; 0 = off)
Output     --out FILE | --results-dir DIR  --tag T  --force (overwrite finished results)
           --checkpoint FILE  --checkpoint-every N  --resume
Sweeps     --sweep key=a,b,c (repeatable; axes multiply; 'soft+experts=64' sets two options)
           --dry-run   list the runs and their files without training`;

type Args = { [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K] extends { multiple: true } ? string[] | undefined : (typeof OPTIONS)[K] extends { type: 'boolean' } ? boolean : string | undefined };

function num(args: Args, key: keyof Args, integer = false, min = -Infinity): number | undefined {
  const raw = args[key];
  if (raw == null) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw new Error(`--${key} must be ${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` ≥ ${min}` : ''}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A `true|false` option, or undefined when not given. */
function bool(args: Args, key: keyof Args): boolean | undefined {
  const raw = args[key];
  if (raw == null) return undefined;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new Error(`--${key} must be true or false, got ${JSON.stringify(raw)}`);
}

/** Expand `--sweep` axes into lists of extra arguments (one list per run). */
function expandSweep(axes: readonly string[]): string[][] {
  let runs: string[][] = [[]];
  for (const axis of axes) {
    const eq = axis.indexOf('=');
    if (eq <= 0) throw new Error(`--sweep axis must look like key=a,b,c, got ${JSON.stringify(axis)}`);
    const key = axis.slice(0, eq);
    const alternatives = axis.slice(eq + 1).split(',').filter((a) => a.length > 0);
    if (alternatives.length === 0) throw new Error(`--sweep ${key} lists no values`);
    const expanded = alternatives.map((alt) => {
      const [value, ...extras] = alt.split('+');
      const args = [`--${key}`, value];
      for (const extra of extras) {
        const e = extra.indexOf('=');
        if (e <= 0) throw new Error(`--sweep alternative ${JSON.stringify(alt)}: extra settings must look like key=value`);
        args.push(`--${extra.slice(0, e)}`, extra.slice(e + 1));
      }
      return args;
    });
    runs = runs.flatMap((r) => expanded.map((e) => [...r, ...e]));
  }
  return runs;
}

function parse(argv: string[]): Args {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values as unknown as Args;
}

interface RunPlan {
  args: Args;
  dataset: DatasetName;
  model: ViTConfig;
  size: SizePreset;
  steps: number | null;
  epochs: number | null;
  outPath: string;
  name: string;
}

/** Soft MoE recipe options and how a run's name shows them when given (`-scale10`, `-nonorm`). */
const SOFT_RECIPE_KEYS = [
  ['scale-init', 'scale'],
  ['scale-lr-mult', 'scalelr'],
  ['phi-lr-mult', 'philr'],
  ['phi-init-std', 'phistd'],
  ['soft-noise-std', 'noise'],
] as const;

function softRecipePart(args: Args): string {
  const parts = SOFT_RECIPE_KEYS.filter(([key]) => args[key] != null).map(([key, short]) => `-${short}${String(args[key])}`);
  if (args.normalize === 'false') parts.push('-nonorm');
  return parts.join('');
}

/** Options already spelled out in a run's name; other swept options are appended to it. */
const NAMED_KEYS = new Set(['dataset', 'model', 'size', 'head-init', 'shift', 'experts', 'slots', 'k', 'bpr', 'capacity-factor', 'steps', 'epochs', 'seed', 'tag', 'dispatch', 'combine', 'experts-fn', 'expert-init', 'normalize', ...SOFT_RECIPE_KEYS.map(([k]) => k)]);

/** `_lr2e-3` style suffix for the swept options a run's name does not already show. */
function sweepSuffix(extra: string[]): string {
  const parts: string[] = [];
  for (let i = 0; i + 1 < extra.length; i += 2) {
    const key = extra[i].replace(/^--/, '');
    if (!NAMED_KEYS.has(key)) parts.push(`${key}${extra[i + 1]}`);
  }
  return parts.length > 0 ? `_${parts.join('_')}` : '';
}

function planRun(args: Args, suffix = ''): RunPlan {
  const dataset = args.dataset as DatasetName;
  if (!DATASET_NAMES.includes(dataset)) throw new Error(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got ${JSON.stringify(args.dataset)}`);
  const kind = args.model as BlockKind;
  if (!BLOCK_KINDS.includes(kind)) throw new Error(`--model must be one of ${BLOCK_KINDS.join(', ')}, got ${JSON.stringify(args.model)}`);
  const size = args.size as SizePreset;
  if (!(size in SIZE_PRESETS)) throw new Error(`--size must be one of ${Object.keys(SIZE_PRESETS).join(', ')}, got ${JSON.stringify(args.size)}`);
  const preset = SIZE_PRESETS[size];
  const seed = num(args, 'seed', true, 0) as number;
  const moeLayers = args['moe-layers'] != null ? args['moe-layers'].split(',').map((s) => Number(s)) : undefined;
  const model: ViTConfig = {
    patchSize: num(args, 'patch', true, 1),
    dim: num(args, 'dim', true, 1) ?? preset.dim,
    depth: num(args, 'depth', true, 1) ?? preset.depth,
    numHeads: num(args, 'heads', true, 1) ?? preset.numHeads,
    mlpDim: num(args, 'mlp-dim', true, 1) ?? preset.mlpDim,
    kind,
    headInit: args['head-init'] as 'zeros' | 'uniform' | undefined,
    moe: {
      numExperts: num(args, 'experts', true, 1),
      slotsPerExpert: num(args, 'slots', true, 1),
      k: num(args, 'k', true, 1),
      capacityFactor: num(args, 'capacity-factor', false, 0),
      batchPriority: args.bpr,
      layers: moeLayers,
      auxLossWeight: num(args, 'aux-weight', false, 0),
      expertInit: args['expert-init'] as 'shared' | 'independent' | undefined,
      noiseStd: num(args, 'noise-std', false, 0),
      scaleInit: num(args, 'scale-init'),
      phiInitStd: num(args, 'phi-init-std', false, 0),
      softNoiseStd: num(args, 'soft-noise-std', false, 0),
      scaleLrMultiplier: num(args, 'scale-lr-mult', false, 0),
      phiLrMultiplier: num(args, 'phi-lr-mult', false, 0),
      softOptions: {
        normalize: bool(args, 'normalize'),
        dispatch: args.dispatch as 'softmax' | 'uniform' | undefined,
        combine: args.combine as 'softmax' | 'uniform' | undefined,
        experts: args['experts-fn'] as 'mlp' | 'identity' | undefined,
      },
    },
    seed,
  };
  const steps = num(args, 'steps', true, 1) ?? null;
  const epochs = num(args, 'epochs', false, 0) ?? null;
  if ((steps == null) === (epochs == null)) throw new Error('give exactly one of --steps N or --epochs E');
  const moePart =
    kind === 'dense'
      ? ''
      : `-e${model.moe?.numExperts}` +
        (kind === 'soft' ? `-p${model.moe?.slotsPerExpert ?? 1}` : '') +
        (kind === 'soft' && args.dispatch === 'uniform' ? '-dispatch-uniform' : '') +
        (kind === 'soft' && args.combine === 'uniform' ? '-combine-uniform' : '') +
        (kind === 'soft' && args['experts-fn'] === 'identity' ? '-identity-experts' : '') +
        (kind === 'soft' ? softRecipePart(args) : '') +
        (args['expert-init'] === 'independent' ? '-indep' : '') +
        (kind === 'tokens-choice' ? `-k${model.moe?.k}${args.bpr ? '-bpr' : ''}` : '') +
        (model.moe?.capacityFactor != null ? `-cf${model.moe.capacityFactor}` : '');
  const length = steps != null ? `${steps}steps` : `${epochs}epochs`;
  const headPart = args['head-init'] === 'uniform' ? '_head-uniform' : '';
  const shiftPart = Number(args.shift ?? 0) > 0 ? `_shift${args.shift}` : '';
  const name = `${dataset}_${kind}${moePart}_${size}${headPart}${shiftPart}_${length}_seed${seed}${suffix}${args.tag ? `_${args.tag}` : ''}`;
  const dir = args['results-dir'] != null ? resolve(args['results-dir']) : defaultResultsDir();
  const outPath = args.out != null ? (isAbsolute(args.out) ? args.out : resolve(args.out)) : join(dir, `${name}.json`);
  return { args, dataset, model, size, steps, epochs, outPath, name };
}

/** Round to 5 significant digits to keep curves compact. */
function compact(values: readonly number[]): number[] {
  return values.map((v) => (Number.isFinite(v) ? Number(v.toPrecision(5)) : v));
}

const datasetCache = new Map<string, ImageDataset>();
async function dataset(name: DatasetName, split: 'train' | 'test'): Promise<ImageDataset> {
  const key = `${name}/${split}`;
  let ds = datasetCache.get(key);
  if (!ds) {
    ds = await loadDataset(name, split);
    datasetCache.set(key, ds);
  }
  return ds;
}

async function runOne(plan: RunPlan, index: number, count: number): Promise<void> {
  const { args } = plan;
  const started = new Date();
  const full = await dataset(plan.dataset, 'train');
  const validationCount = num(args, 'validation', true, 1) as number;
  const splitSeed = num(args, 'split-seed', true, 0) as number;
  const { train, validation } = splitValidation(full, { count: validationCount, seed: splitSeed });
  const test = await dataset(plan.dataset, 'test');
  const batchSize = num(args, 'batch-size', true, 1) as number;
  const steps = plan.steps ?? Math.max(1, Math.round((plan.epochs as number) * batchesPerEpoch(train.count, batchSize, true)));
  const clip = num(args, 'clip', false, 0) as number;

  const model = new ViT(plan.model);
  const trainer = new Trainer(model, {
    steps,
    batchSize,
    learningRate: num(args, 'lr', false, 0),
    warmupSteps: num(args, 'warmup', true, 0),
    decay: args.decay as 'cosine' | 'linear' | 'constant',
    endLearningRate: num(args, 'end-lr', false, 0),
    adam: { weightDecay: num(args, 'weight-decay', false, 0), clipNorm: clip > 0 ? clip : null },
    seed: model.config.seed,
    maxShift: num(args, 'shift', true, 0),
  });
  const cost = modelCost(model.config);
  if (args.resume) {
    if (!args.checkpoint) throw new Error('--resume needs --checkpoint FILE');
    if (existsSync(args.checkpoint)) {
      const meta = await loadTrainerCheckpoint(trainer, args.checkpoint);
      console.error(`resumed from ${args.checkpoint} at update ${meta.step}`);
    } else {
      console.error(`no checkpoint at ${args.checkpoint} yet: starting from update 0`);
    }
  }
  const evalEvery = num(args, 'eval-every', true, 0) as number;
  const evalExamples = num(args, 'eval-examples', true, 1);
  const probeExamples = num(args, 'probe-examples', true, 0) as number;
  // The probe: the first images of the validation split (fixed across runs with the same --split-seed).
  const probe = probeExamples > 0 && model.config.blocks.includes('soft') ? batchFromIndices(validation, Int32Array.from({ length: Math.min(probeExamples, validation.count) }, (_, i) => i)) : undefined;

  const header = {
    name: plan.name,
    command: ['npm', 'run', 'train', '--', ...process.argv.slice(2)].join(' '),
    startedAt: started.toISOString(),
    config: {
      dataset: plan.dataset,
      size: plan.size,
      model: model.config,
      trainer: trainer.options,
      epochs: plan.epochs,
      data: { trainCount: train.count, validationCount: validation.count, testCount: test.count, splitSeed, normalization: full.normalization },
      evaluation: { every: evalEvery, examples: evalExamples ?? validation.count, probeExamples: probe ? probe.x.shape[0] : 0 },
    },
    backend: backendInfo(),
    machine: machineInfo(),
    versions: versions(),
    git: gitInfo(),
    cost: { parameters: cost.parameters, parameterCountFromVariables: model.parameterCount, flopsPerImage: cost.flopsPerImage, blocks: cost.blocks },
  };
  const curves = (h: History) => ({
    loss: compact(h.loss),
    trainAccuracy: compact(h.accuracy),
    auxLoss: compact(h.auxLoss),
    learningRate: compact(h.learningRate),
    gradNorm: compact(h.gradNorm),
    dropFraction: compact(h.dropFraction),
    stepMs: compact(h.stepMs),
    validation: h.evals.map((e) => ({ step: e.step, accuracy: e.accuracy, loss: Number(e.loss.toPrecision(5)), count: e.count })),
    /** Soft MoE diagnostics per block on the probe batch (lib/moe/diagnostics.ts), before training and at each evaluation. */
    diagnostics: h.diagnostics,
  });
  writeResults(plan.outPath, { status: 'running', ...header, curves: curves(trainer.history) }, { force: args.force });

  const label = `[${index + 1}/${count}] ${plan.name}`;
  console.error(`${label}: ${cost.parameters.toLocaleString('en')} parameters, ${(cost.flopsPerImage.total / 1e6).toFixed(2)} MFLOP/image forward, ${steps} updates of ${batchSize}, backend ${tf.getBackend()}`);
  const bar = terminalProgress({ total: steps, label: 'train' });
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  let lastVal: EvalResult | null = null;
  const recent: number[] = [];
  let smoothLoss = NaN;
  const note = (r: StepResult) => {
    const rate = recent.length > 0 ? 1000 / median(recent) : NaN;
    return `loss ${smoothLoss.toFixed(3)}  acc ${r.accuracy.toFixed(3)}${lastVal ? `  val ${lastVal.accuracy.toFixed(4)}` : ''}  ${rate.toFixed(2)} step/s`;
  };
  try {
    await trainer.fit(train, {
      validation,
      evalEvery,
      evalLimit: evalExamples,
      probe: probe?.x,
      ...(args.checkpoint ? { saveCheckpoint: (t: Trainer) => saveTrainerCheckpoint(t, args.checkpoint!) } : {}),
      checkpointEvery: num(args, 'checkpoint-every', true, 1),
      onStep: (r) => {
        recent.push(r.ms);
        if (recent.length > 50) recent.shift();
        smoothLoss = Number.isNaN(smoothLoss) ? r.loss : 0.95 * smoothLoss + 0.05 * r.loss;
        bar.update(r.step, note(r));
      },
      onEval: (e) => {
        lastVal = e;
        writeResults(plan.outPath, { status: 'running', ...header, curves: curves(trainer.history) }, { force: args.force });
      },
    });
    bar.finish(`loss ${smoothLoss.toFixed(3)}${lastVal ? `  val ${(lastVal as EvalResult).accuracy.toFixed(4)}` : ''}`);
    const trainWallSeconds = (performance.now() - wallStart) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    // CPU time of this process while training: on a shared machine the wall time also holds the
    // time other processes had the cores (see machine.loadAverage and loadAverageAtEnd).
    const trainCpuSeconds = (cpu.user + cpu.system) / 1e6;
    console.error('evaluating on the validation and test splits …');
    const finalValidation = await trainer.evaluate(validation);
    const finalTest = await trainer.evaluate(test);
    const h = trainer.history;
    const lastN = Math.min(100, h.loss.length);
    const summary = {
      steps: trainer.step,
      epochs: (trainer.step * batchSize) / train.count,
      msPerStepMedian: median(h.stepMs),
      msPerStepMean: h.stepMs.reduce((a, b) => a + b, 0) / h.stepMs.length,
      trainSeconds: h.stepMs.reduce((a, b) => a + b, 0) / 1000,
      trainWallSeconds,
      trainCpuSeconds,
      loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
      finalTrainLoss: h.loss.slice(-lastN).reduce((a, b) => a + b, 0) / lastN,
      /** Tokens no expert processed, mean over the MoE blocks and the last 100 updates (sparse MoEs). */
      finalDropFraction: h.dropFraction.slice(-lastN).reduce((a, b) => a + b, 0) / lastN,
      validationAccuracy: finalValidation.accuracy,
      validationLoss: finalValidation.loss,
      testAccuracy: finalTest.accuracy,
      testLoss: finalTest.loss,
      testCount: finalTest.count,
      /** Soft MoE diagnostics per block on the probe batch after the last update (null without a probe). */
      finalDiagnostics: h.diagnostics.at(-1)?.blocks ?? null,
    };
    writeResults(plan.outPath, { status: 'finished', ...header, finishedAt: new Date().toISOString(), summary, curves: curves(h) }, { force: args.force });
    console.log(
      `${plan.name}: test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%  validation ${(summary.validationAccuracy * 100).toFixed(2)}%  ` +
        `${summary.msPerStepMedian.toFixed(0)} ms/step (median)  training ${(trainWallSeconds / 60).toFixed(1)} min wall, ${(trainCpuSeconds / 60).toFixed(1)} min CPU  → ${plan.outPath}`,
    );
  } catch (e) {
    bar.finish('failed');
    writeResults(plan.outPath, { status: 'failed', error: (e as Error).message, ...header, curves: curves(trainer.history) }, { force: true });
    throw e;
  } finally {
    trainer.dispose();
    model.dispose();
    probe?.x.dispose();
    probe?.y.dispose();
  }
}

async function main(argv: string[]): Promise<void> {
  const base = parse(argv);
  if (base.help) {
    console.log(HELP);
    return;
  }
  const sweepRuns = expandSweep(base.sweep ?? []);
  const plans = sweepRuns.map((extra) => planRun(parse([...argv.filter((_, i) => !isSweepArg(argv, i)), ...extra]), sweepSuffix(extra)));
  const names = new Set<string>();
  for (const p of plans) {
    if (names.has(p.outPath)) throw new Error(`two runs of the sweep would write ${p.outPath}; add a --tag or vary the output`);
    names.add(p.outPath);
  }
  if (plans.length > 1 && base.out != null) throw new Error('--out names one file; a sweep writes one file per run (use --results-dir)');
  if (plans.length > 1 && base.checkpoint != null) throw new Error('--checkpoint names one file; use it with single runs');
  if (base['dry-run']) {
    for (const p of plans) console.log(`${resultStatus(p.outPath) ?? 'new'}\t${p.outPath}`);
    return;
  }
  const info = await initBackend(base.backend);
  console.error(`backend ${describeBackend(info)}${info.skipped.length ? ` (skipped: ${info.skipped.join('; ')})` : ''}`);
  let failures = 0;
  for (const [i, plan] of plans.entries()) {
    const status = resultStatus(plan.outPath);
    if (status === 'finished' && !plan.args.force) {
      console.error(`[${i + 1}/${plans.length}] ${plan.name}: finished result exists at ${plan.outPath}; skipping (--force overwrites)`);
      continue;
    }
    try {
      await runOne(plan, i, plans.length);
    } catch (e) {
      failures++;
      console.error(`[${i + 1}/${plans.length}] ${plan.name} failed: ${(e as Error).message}`);
      if (plans.length === 1) throw e;
    }
  }
  if (failures > 0) throw new Error(`${failures} of ${plans.length} runs failed`);
}

/** Whether argv[i] is a `--sweep` flag or its value (kept out of the per-run arguments). */
function isSweepArg(argv: string[], i: number): boolean {
  if (argv[i] === '--sweep' || argv[i].startsWith('--sweep=')) return true;
  return i > 0 && argv[i - 1] === '--sweep';
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
