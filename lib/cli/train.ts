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
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, describeBackend, initBackend } from '../backend.js';
import { DATASET_NAMES, DATASETS, splitValidation, type DatasetName, type ImageDataset } from '../data/datasets.js';
import { loadDataset } from '../data/load.js';
import { batchesPerEpoch, batchFromIndices } from '../data/batches.js';
import { checkReplaceable, loadTrainerCheckpoint, saveTrainerCheckpoint } from '../train/checkpoint.js';
import { acquireLock, removePendingTemps, type FileLock } from '../train/file-safety.js';
import {
  defaultResultsDir,
  gitInfo,
  inspectResultsFile,
  machineInfo,
  median,
  RESULTS_KIND,
  settingsDifferences,
  settingsHash,
  versions,
  writeResults,
} from '../train/results.js';
import {
  resolveTrainerOptions,
  Trainer,
  TrainingInterrupted,
  type EvalResult,
  type History,
  type ResolvedTrainerOptions,
  type StepResult,
  type TrainerOptions,
} from '../train/trainer.js';
import {
  BLOCK_KINDS,
  resolveViTConfig,
  SIZE_PRESETS,
  type BlockKind,
  type ResolvedViTConfig,
  type SizePreset,
  type ViTConfig,
} from '../vit/config.js';
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
  validation: { type: 'string' },
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
           --validation N   images held out of the training split for validation
                            (default min(5000, 10% of the training split): 5000 for the full
                            data sets, 51 for the tiny ones)
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
                            A finished result with the same settings is skipped; one with other
                            settings is refused (name the new run with --tag, or --force). A file
                            that is not a results file is never overwritten.
           --checkpoint FILE  --checkpoint-every N (default: --eval-every, or 250)  --resume
Stopping   a diverging run (loss above 10 × max(first loss, ln classes), or not finite) fails;
           Ctrl-C / SIGTERM stop after the current update and record status "interrupted"
           (a second signal stops at once, still removing temporary files)
Sweeps     --sweep key=a,b,c (repeatable; axes multiply; 'soft+experts=64' sets two options)
           --dry-run   list the runs and their files without training`;

type Args = {
  [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K] extends { multiple: true }
    ? string[] | undefined
    : (typeof OPTIONS)[K] extends { type: 'boolean' }
      ? boolean
      : string | undefined;
};

function num(args: Args, key: keyof Args, integer = false, min = -Infinity): number | undefined {
  const raw = args[key];
  if (raw == null) return undefined;
  const value = Number(raw);
  if (
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    !Number.isFinite(value) ||
    (integer && !Number.isInteger(value)) ||
    value < min
  ) {
    throw new Error(
      `--${key} must be ${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` ≥ ${min}` : ''}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** Expand `--sweep` axes into lists of extra arguments (one list per run). */
function expandSweep(axes: readonly string[]): string[][] {
  let runs: string[][] = [[]];
  for (const axis of axes) {
    const eq = axis.indexOf('=');
    if (eq <= 0) throw new Error(`--sweep axis must look like key=a,b,c, got ${JSON.stringify(axis)}`);
    const key = axis.slice(0, eq);
    const alternatives = axis
      .slice(eq + 1)
      .split(',')
      .filter((a) => a.length > 0);
    if (alternatives.length === 0) throw new Error(`--sweep ${key} lists no values`);
    const expanded = alternatives.map((alt) => {
      const [value, ...extras] = alt.split('+');
      const args = [`--${key}`, value];
      for (const extra of extras) {
        const e = extra.indexOf('=');
        if (e <= 0)
          throw new Error(`--sweep alternative ${JSON.stringify(alt)}: extra settings must look like key=value`);
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

/** Soft MoE recipe options and how a run's name shows them when given (`-scale10`, `-nonorm`). */
const SOFT_RECIPE_KEYS = [
  ['scale-init', 'scale'],
  ['scale-lr-mult', 'scalelr'],
  ['phi-lr-mult', 'philr'],
  ['phi-init-std', 'phistd'],
  ['soft-noise-std', 'noise'],
] as const;

function softRecipePart(args: Args): string {
  const parts = SOFT_RECIPE_KEYS.filter(([key]) => args[key] != null).map(
    ([key, short]) => `-${short}${String(args[key])}`,
  );
  if (args.normalize === 'false') parts.push('-nonorm');
  return parts.join('');
}

interface RunPlan {
  args: Args;
  dataset: DatasetName;
  model: ResolvedViTConfig;
  /** The config as given (the ViT resolves it to `model`). */
  modelConfig: ViTConfig;
  size: SizePreset;
  steps: number | null;
  epochs: number | null;
  trainer: ResolvedTrainerOptions;
  /** Images held out for validation, and the seed of that hold-out. */
  validationCount: number;
  splitSeed: number;
  evaluation: { every: number; examples: number; probeExamples: number };
  checkpointEvery: number | undefined;
  /** Every setting that changes what a run computes, normalised; its hash identifies the run. */
  settings: RunSettings;
  settingsHash: string;
  outPath: string;
  name: string;
}

/** What a results file records as the run's settings (`config` minus the counts derived from the data). */
interface RunSettings {
  dataset: DatasetName;
  size: SizePreset;
  model: ResolvedViTConfig;
  trainer: ResolvedTrainerOptions;
  epochs: number | null;
  data: { validationCount: number; splitSeed: number };
  evaluation: { every: number; examples: number; probeExamples: number };
}

/** The settings of a results file written before files stored them (from its `config`). */
function legacySettings(config: unknown): unknown {
  if (config == null || typeof config !== 'object') return {};
  const c = config as Record<string, unknown> & { data?: Record<string, unknown> };
  return { ...c, data: { validationCount: c.data?.validationCount, splitSeed: c.data?.splitSeed } };
}

/** Default validation hold-out: min(5000, 10% of the training split) — 5000 for MNIST, 51 for the tiny slices. */
export function defaultValidationCount(trainTotal: number): number {
  return Math.min(5000, Math.max(1, Math.round(trainTotal / 10)));
}

/** Characters allowed in a results file name (a tag, a swept value): no path separators, no "..". */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+=,-]*$/;

/** Options already spelled out in a run's name; other swept options are appended to it. */
const NAMED_KEYS = new Set([
  'dataset',
  'model',
  'size',
  'head-init',
  'shift',
  'experts',
  'slots',
  'k',
  'bpr',
  'capacity-factor',
  'steps',
  'epochs',
  'seed',
  'tag',
  'dispatch',
  'combine',
  'experts-fn',
  'expert-init',
  'normalize',
  ...SOFT_RECIPE_KEYS.map(([k]) => k),
]);

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
  if (!DATASET_NAMES.includes(dataset))
    throw new Error(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got ${JSON.stringify(args.dataset)}`);
  const kind = args.model as BlockKind;
  if (!BLOCK_KINDS.includes(kind))
    throw new Error(`--model must be one of ${BLOCK_KINDS.join(', ')}, got ${JSON.stringify(args.model)}`);
  const size = args.size as SizePreset;
  if (!Object.hasOwn(SIZE_PRESETS, size))
    throw new Error(`--size must be one of ${Object.keys(SIZE_PRESETS).join(', ')}, got ${JSON.stringify(args.size)}`);
  const oneOf = <T extends string>(key: keyof Args, allowed: readonly T[]): T | undefined => {
    const v = args[key];
    if (v == null) return undefined;
    if (!(allowed as readonly unknown[]).includes(v))
      throw new Error(`--${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const preset = SIZE_PRESETS[size];
  const seed = num(args, 'seed', true, 0) as number;
  let moeLayers: number[] | undefined;
  if (args['moe-layers'] != null) {
    moeLayers = args['moe-layers'].split(',').map((s) => {
      const v = Number(s);
      if (s.trim() === '' || !Number.isInteger(v) || v < 0)
        throw new Error(`--moe-layers must list block indices like 2,3, got ${JSON.stringify(args['moe-layers'])}`);
      return v;
    });
  }
  const config: ViTConfig = {
    patchSize: num(args, 'patch', true, 1),
    dim: num(args, 'dim', true, 1) ?? preset.dim,
    depth: num(args, 'depth', true, 1) ?? preset.depth,
    numHeads: num(args, 'heads', true, 1) ?? preset.numHeads,
    mlpDim: num(args, 'mlp-dim', true, 1) ?? preset.mlpDim,
    kind,
    headInit: oneOf('head-init', ['zeros', 'uniform'] as const),
    moe: {
      numExperts: num(args, 'experts', true, 1),
      slotsPerExpert: num(args, 'slots', true, 1),
      k: num(args, 'k', true, 1),
      capacityFactor: num(args, 'capacity-factor', false, 0),
      batchPriority: args.bpr,
      layers: moeLayers,
      auxLossWeight: num(args, 'aux-weight', false, 0),
      expertInit: oneOf('expert-init', ['shared', 'independent'] as const),
      noiseStd: num(args, 'noise-std', false, 0),
      scaleInit: num(args, 'scale-init'),
      phiInitStd: num(args, 'phi-init-std', false, 0),
      softNoiseStd: num(args, 'soft-noise-std', false, 0),
      scaleLrMultiplier: num(args, 'scale-lr-mult', false, 0),
      phiLrMultiplier: num(args, 'phi-lr-mult', false, 0),
      softOptions: {
        normalize: oneOf('normalize', ['true', 'false'] as const) == null ? undefined : args.normalize === 'true',
        dispatch: oneOf('dispatch', ['softmax', 'uniform'] as const),
        combine: oneOf('combine', ['softmax', 'uniform'] as const),
        experts: oneOf('experts-fn', ['mlp', 'identity'] as const),
      },
    },
    seed,
  };
  // Validate everything before any file is looked at (a bad --heads must fail even when a
  // results file of that name exists).
  const model = resolveViTConfig(config);
  const steps = num(args, 'steps', true, 1) ?? null;
  const epochs = num(args, 'epochs', false, 0) ?? null;
  if ((steps == null) === (epochs == null)) throw new Error('give exactly one of --steps N or --epochs E');
  if (epochs != null && !(epochs > 0)) throw new Error(`--epochs must be > 0, got ${JSON.stringify(args.epochs)}`);
  const trainTotal = DATASETS[dataset].counts.train;
  const validationCount = num(args, 'validation', true, 1) ?? defaultValidationCount(trainTotal);
  if (validationCount >= trainTotal) {
    throw new Error(
      `--validation ${validationCount} leaves no training images: ${dataset} has ${trainTotal} training images; use at most ${trainTotal - 1} (default min(5000, 10%) = ${defaultValidationCount(trainTotal)})`,
    );
  }
  const splitSeed = num(args, 'split-seed', true, 0) as number;
  const batchSize = num(args, 'batch-size', true, 1) as number;
  const trainCount = trainTotal - validationCount;
  const totalSteps =
    steps ?? Math.max(1, Math.round((epochs as number) * batchesPerEpoch(trainCount, batchSize, true)));
  const clip = num(args, 'clip', false, 0) as number;
  const trainerOptions: TrainerOptions = {
    steps: totalSteps,
    batchSize,
    learningRate: num(args, 'lr', false, 0),
    warmupSteps: num(args, 'warmup', true, 0),
    decay: oneOf('decay', ['cosine', 'linear', 'constant'] as const),
    endLearningRate: num(args, 'end-lr', false, 0),
    adam: { weightDecay: num(args, 'weight-decay', false, 0), clipNorm: clip > 0 ? clip : null },
    seed: model.seed,
    maxShift: num(args, 'shift', true, 0),
  };
  const trainer = resolveTrainerOptions(trainerOptions);
  const evalEvery = num(args, 'eval-every', true, 0) as number;
  const evalExamples = num(args, 'eval-examples', true, 1) ?? validationCount;
  const probeExamples = num(args, 'probe-examples', true, 0) as number;
  const evaluation = {
    every: evalEvery,
    examples: Math.min(evalExamples, validationCount),
    probeExamples: kind === 'soft' || model.blocks.includes('soft') ? Math.min(probeExamples, validationCount) : 0,
  };
  if (args['checkpoint-every'] != null && args.checkpoint == null)
    throw new Error('--checkpoint-every needs --checkpoint FILE');
  const checkpointEvery =
    args.checkpoint != null ? (num(args, 'checkpoint-every', true, 1) ?? (evalEvery > 0 ? evalEvery : 250)) : undefined;
  if (args.resume && args.checkpoint == null) throw new Error('--resume needs --checkpoint FILE');
  if (args.tag != null && !SAFE_NAME.test(args.tag))
    throw new Error(
      `--tag must be letters, digits and . _ + = , - (no path separators), got ${JSON.stringify(args.tag)}`,
    );

  const moePart =
    kind === 'dense'
      ? ''
      : `-e${model.moe.numExperts}` +
        (kind === 'soft' ? `-p${config.moe?.slotsPerExpert ?? 1}` : '') +
        (kind === 'soft' && args.dispatch === 'uniform' ? '-dispatch-uniform' : '') +
        (kind === 'soft' && args.combine === 'uniform' ? '-combine-uniform' : '') +
        (kind === 'soft' && args['experts-fn'] === 'identity' ? '-identity-experts' : '') +
        (kind === 'soft' ? softRecipePart(args) : '') +
        (args['expert-init'] === 'independent' ? '-indep' : '') +
        (kind === 'tokens-choice' ? `-k${model.moe.k}${args.bpr ? '-bpr' : ''}` : '') +
        (config.moe?.capacityFactor != null ? `-cf${config.moe.capacityFactor}` : '');
  const length = steps != null ? `${steps}steps` : `${epochs}epochs`;
  const headPart = args['head-init'] === 'uniform' ? '_head-uniform' : '';
  const shiftPart = Number(args.shift ?? 0) > 0 ? `_shift${args.shift}` : '';
  const name = `${dataset}_${kind}${moePart}_${size}${headPart}${shiftPart}_${length}_seed${seed}${suffix}${args.tag ? `_${args.tag}` : ''}`;
  if (!SAFE_NAME.test(name) || name.includes('..'))
    throw new Error(
      `the run's file name ${JSON.stringify(name)} would leave its folder or hold odd characters; check the swept values and --tag`,
    );
  const dir = args['results-dir'] != null ? resolve(args['results-dir']) : defaultResultsDir();
  const outPath = args.out != null ? (isAbsolute(args.out) ? args.out : resolve(args.out)) : join(dir, `${name}.json`);
  const settings: RunSettings = {
    dataset,
    size,
    model,
    trainer,
    epochs,
    data: { validationCount, splitSeed },
    evaluation,
  };
  return {
    args,
    dataset,
    model,
    modelConfig: config,
    size,
    steps,
    epochs,
    trainer,
    validationCount,
    splitSeed,
    evaluation,
    checkpointEvery,
    settings,
    settingsHash: settingsHash(settings),
    outPath,
    name,
  };
}

/** What to do about the file a run would write: write it, skip the run, or refuse (throws). */
function existingFileDecision(plan: RunPlan): 'new' | 'skip' | 'replace' {
  const state = inspectResultsFile(plan.outPath);
  if (state.kind === 'absent') return 'new';
  if (state.kind === 'foreign') {
    throw new Error(
      `refusing to write ${plan.outPath}: ${state.reason}. Results go only to new files or to results files of this program; remove it or choose another --out`,
    );
  }
  const doc = state.doc;
  const same = doc.settingsHash === plan.settingsHash;
  const differences = same
    ? []
    : doc.settings != null
      ? settingsDifferences(doc.settings, plan.settings)
      : settingsDifferences(legacySettings(doc.config), plan.settings, { ignoreMissing: true });
  if (state.status === 'finished') {
    if (plan.args.force) return 'replace';
    if (differences.length === 0) return 'skip';
    throw new Error(
      `${plan.outPath} holds a finished run with other settings:\n  ${differences.slice(0, 12).join('\n  ')}${differences.length > 12 ? `\n  … ${differences.length - 12} more` : ''}\n` +
        'Give this run its own file (--tag NAME, --results-dir DIR or --out FILE), or pass --force to replace the finished result.',
    );
  }
  return 'replace';
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

/** The run in progress, for the signal handler's last-resort cleanup. */
interface ActiveRun {
  outPath: string;
  runId: string;
  /** The last document written (null before the first write: then the file is not ours to touch). */
  written: Record<string, unknown> | null;
  locks: FileLock[];
}
let active: ActiveRun | null = null;
const stopController = new AbortController();

/** Record an interruption or failure in the run's own file, if it wrote one; never throws. */
function recordEnd(
  run: ActiveRun,
  status: 'failed' | 'interrupted',
  message: string,
  extra: Record<string, unknown> = {},
): void {
  if (run.written == null) return;
  try {
    const doc = { ...run.written, ...extra, status, error: message, endedAt: new Date().toISOString() };
    writeResults(run.outPath, doc, { owner: run.runId });
    run.written = doc;
  } catch (e) {
    console.error(`could not record the ${status} run in ${run.outPath}: ${(e as Error).message}`);
  }
}

async function runOne(plan: RunPlan, index: number, count: number): Promise<void> {
  const { args } = plan;
  const label = `[${index + 1}/${count}] ${plan.name}`;
  const run: ActiveRun = { outPath: plan.outPath, runId: randomBytes(8).toString('hex'), written: null, locks: [] };
  active = run;
  try {
    run.locks.push(acquireLock(plan.outPath, 'writing'));
    if (args.checkpoint != null) {
      run.locks.push(acquireLock(resolve(args.checkpoint), 'checkpointing to'));
      await checkReplaceable(resolve(args.checkpoint));
    }
    // Decide again under the lock: another run may have finished this file meanwhile.
    if (existingFileDecision(plan) === 'skip') {
      console.error(`${label}: a finished result with these settings appeared at ${plan.outPath}; skipping`);
      return;
    }
    await train(plan, run, label);
  } finally {
    for (const lock of run.locks.reverse()) lock.release();
    active = null;
  }
}

async function train(plan: RunPlan, run: ActiveRun, label: string): Promise<void> {
  const { args } = plan;
  const started = new Date();
  const full = await dataset(plan.dataset, 'train');
  const { train, validation } = splitValidation(full, { count: plan.validationCount, seed: plan.splitSeed });
  const test = await dataset(plan.dataset, 'test');
  const { batchSize, steps } = plan.trainer;

  const model = new ViT(plan.modelConfig);
  let trainer: Trainer;
  try {
    trainer = new Trainer(model, plan.trainer);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const cost = modelCost(model.config);
  // The probe of the Soft MoE diagnostics: the first images of the validation split (fixed across
  // runs with the same --split-seed).
  const probeCount = plan.evaluation.probeExamples;
  const probe =
    probeCount > 0
      ? batchFromIndices(
          validation,
          Int32Array.from({ length: probeCount }, (_, i) => i),
        )
      : undefined;
  const header = {
    kind: RESULTS_KIND,
    runId: run.runId,
    name: plan.name,
    command: ['npm', 'run', 'train', '--', ...process.argv.slice(2)].join(' '),
    startedAt: started.toISOString(),
    settingsHash: plan.settingsHash,
    settings: plan.settings,
    config: {
      dataset: plan.dataset,
      size: plan.size,
      model: model.config,
      trainer: trainer.options,
      epochs: plan.epochs,
      data: {
        trainCount: train.count,
        validationCount: validation.count,
        testCount: test.count,
        splitSeed: plan.splitSeed,
        normalization: full.normalization,
      },
      evaluation: plan.evaluation,
    },
    backend: backendInfo(),
    machine: machineInfo(),
    versions: versions(),
    git: gitInfo(),
    cost: {
      parameters: cost.parameters,
      parameterCountFromVariables: model.parameterCount,
      flopsPerImage: cost.flopsPerImage,
      blocks: cost.blocks,
    },
  };
  const curves = (h: History) => ({
    loss: compact(h.loss),
    trainAccuracy: compact(h.accuracy),
    auxLoss: compact(h.auxLoss),
    learningRate: compact(h.learningRate),
    gradNorm: compact(h.gradNorm),
    dropFraction: compact(h.dropFraction),
    stepMs: compact(h.stepMs),
    validation: h.evals.map((e) => ({
      step: e.step,
      accuracy: e.accuracy,
      loss: Number(e.loss.toPrecision(5)),
      count: e.count,
    })),
    /** Soft MoE diagnostics per block on the probe batch (lib/moe/diagnostics.ts), before training and at each evaluation. */
    diagnostics: h.diagnostics,
  });
  const write = (doc: { status: string } & Record<string, unknown>) => {
    // The first write may replace a file of ours (decided above); later ones only our own file.
    writeResults(plan.outPath, doc, run.written == null ? { force: args.force } : { owner: run.runId });
    run.written = doc;
  };
  const bar = terminalProgress({ total: steps, label: 'train' });
  try {
    if (args.resume && args.checkpoint != null) {
      if (existsSync(args.checkpoint)) {
        const meta = await loadTrainerCheckpoint(trainer, args.checkpoint);
        console.error(`resumed from ${args.checkpoint} at update ${meta.step}`);
      } else {
        console.error(`no checkpoint at ${args.checkpoint} yet: starting from update 0`);
      }
    }
    write({ status: 'running', ...header, curves: curves(trainer.history) });

    console.error(
      `${label}: ${cost.parameters.toLocaleString('en')} parameters, ${(cost.flopsPerImage.total / 1e6).toFixed(2)} MFLOP/image forward, ${steps} updates of ${batchSize}, backend ${tf.getBackend()}`,
    );
    if (args.checkpoint != null)
      console.error(`checkpoint every ${plan.checkpointEvery} updates to ${args.checkpoint}`);
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    let lastVal: EvalResult | null = null;
    const recent: number[] = [];
    let smoothLoss = NaN;
    const note = (r: StepResult) => {
      const rate = recent.length > 0 ? 1000 / median(recent) : NaN;
      return `loss ${smoothLoss.toFixed(3)}  acc ${r.accuracy.toFixed(3)}${lastVal ? `  val ${lastVal.accuracy.toFixed(4)}` : ''}  ${rate.toFixed(2)} step/s`;
    };
    await trainer.fit(train, {
      validation,
      evalEvery: plan.evaluation.every,
      evalLimit: plan.evaluation.examples,
      probe: probe?.x,
      ...(args.checkpoint != null
        ? { saveCheckpoint: (t: Trainer) => saveTrainerCheckpoint(t, args.checkpoint as string) }
        : {}),
      checkpointEvery: plan.checkpointEvery,
      signal: stopController.signal,
      onStep: (r) => {
        recent.push(r.ms);
        if (recent.length > 50) recent.shift();
        smoothLoss = Number.isNaN(smoothLoss) ? r.loss : 0.95 * smoothLoss + 0.05 * r.loss;
        bar.update(r.step, note(r));
      },
      onEval: (e) => {
        lastVal = e;
        write({ status: 'running', ...header, curves: curves(trainer.history) });
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
    if (stopController.signal.aborted)
      throw new TrainingInterrupted(trainer.step, String(stopController.signal.reason ?? ''));
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
    write({ status: 'finished', ...header, finishedAt: new Date().toISOString(), summary, curves: curves(h) });
    console.log(
      `${plan.name}: test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%  validation ${(summary.validationAccuracy * 100).toFixed(2)}%  ` +
        `${summary.msPerStepMedian.toFixed(0)} ms/step (median)  training ${(trainWallSeconds / 60).toFixed(1)} min wall, ${(trainCpuSeconds / 60).toFixed(1)} min CPU  → ${plan.outPath}`,
    );
  } catch (e) {
    const interrupted = e instanceof TrainingInterrupted;
    bar.finish(interrupted ? 'interrupted' : 'failed');
    // Only a file this run wrote is updated (recordEnd checks); a finished result of another run is never touched.
    recordEnd(run, interrupted ? 'interrupted' : 'failed', (e as Error).message, { curves: curves(trainer.history) });
    throw e;
  } finally {
    trainer.dispose();
    model.dispose();
    probe?.x.dispose();
    probe?.y.dispose();
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * First SIGINT/SIGTERM/SIGHUP: stop after the current update (the run records "interrupted").
 * A second: remove temporary files, record the interruption, release the locks and exit now.
 */
function installSignalHandlers(): void {
  for (const sig of Object.keys(SIGNAL_NUMBERS) as NodeJS.Signals[]) {
    process.on(sig, () => {
      const code = 128 + (SIGNAL_NUMBERS[sig] as number);
      if (!stopController.signal.aborted) {
        console.error(`\n${sig}: stopping after the current update (send it again to stop at once)`);
        stopController.abort(sig);
        return;
      }
      removePendingTemps();
      if (active != null) {
        recordEnd(active, 'interrupted', `stopped at once by a second ${sig}`);
        for (const lock of active.locks) lock.release();
      }
      process.exit(code);
    });
  }
}

async function main(argv: string[]): Promise<number> {
  const base = parse(argv);
  if (base.help) {
    console.log(HELP);
    return 0;
  }
  const sweepRuns = expandSweep(base.sweep ?? []);
  const plans = sweepRuns.map((extra) =>
    planRun(parse([...argv.filter((_, i) => !isSweepArg(argv, i)), ...extra]), sweepSuffix(extra)),
  );
  const names = new Set<string>();
  for (const p of plans) {
    if (names.has(p.outPath))
      throw new Error(`two runs of the sweep would write ${p.outPath}; add a --tag or vary the output`);
    names.add(p.outPath);
  }
  if (plans.length > 1 && base.out != null)
    throw new Error('--out names one file; a sweep writes one file per run (use --results-dir)');
  if (plans.length > 1 && base.checkpoint != null)
    throw new Error('--checkpoint names one file; use it with single runs');
  if (base['dry-run']) {
    let refused = 0;
    for (const p of plans) {
      let line: string;
      try {
        const decision = existingFileDecision(p);
        line =
          decision === 'skip'
            ? 'finished'
            : decision === 'new'
              ? 'new'
              : `replace ${inspectResultsFile(p.outPath).kind === 'ours' ? (inspectResultsFile(p.outPath) as { status: string }).status : ''}`.trim();
      } catch (e) {
        refused++;
        line = `refused: ${(e as Error).message.replace(/\n/g, ' ')}`;
      }
      console.log(`${line}\t${p.outPath}`);
    }
    if (refused > 0) throw new Error(`${refused} of ${plans.length} runs would be refused (see above)`);
    return 0;
  }
  // Refusals (a foreign file, other settings) are reported for every run before any training.
  const decisions = plans.map((p) => existingFileDecision(p));
  installSignalHandlers();
  const info = await initBackend(base.backend);
  console.error(
    `backend ${describeBackend(info)}${info.skipped.length ? ` (skipped: ${info.skipped.join('; ')})` : ''}`,
  );
  let failures = 0;
  for (const [i, plan] of plans.entries()) {
    if (stopController.signal.aborted) break;
    if (decisions[i] === 'skip') {
      console.error(
        `[${i + 1}/${plans.length}] ${plan.name}: finished result with these settings exists at ${plan.outPath}; skipping (--force re-runs)`,
      );
      continue;
    }
    try {
      await runOne(plan, i, plans.length);
    } catch (e) {
      if (e instanceof TrainingInterrupted) {
        console.error(`[${i + 1}/${plans.length}] ${plan.name}: ${e.message}`);
        break;
      }
      failures++;
      console.error(`[${i + 1}/${plans.length}] ${plan.name} failed: ${(e as Error).message}`);
      if (plans.length === 1) throw e;
    }
  }
  if (stopController.signal.aborted) {
    const sig = stopController.signal.reason as NodeJS.Signals;
    return 128 + (SIGNAL_NUMBERS[sig] ?? 2);
  }
  if (failures > 0) throw new Error(`${failures} of ${plans.length} runs failed`);
  return 0;
}

/** Whether argv[i] is a `--sweep` flag or its value (kept out of the per-run arguments). */
function isSweepArg(argv: string[], i: number): boolean {
  if (argv[i] === '--sweep' || argv[i].startsWith('--sweep=')) return true;
  return i > 0 && argv[i - 1] === '--sweep';
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    removePendingTemps();
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
