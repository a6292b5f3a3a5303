/**
 * The training loop: Adam with warm-up and decay, cross-entropy plus the MoE blocks' auxiliary
 * losses, evaluation, per-step wall time, checkpoints that resume the same curve.
 *
 * Reproducibility: the weights come from the model's seed; the batch order from
 * `batchStream(train, {seed, startStep})` (lib/data), a function of (seed, step) alone; nothing
 * else is random. Same seed and backend → the same loss curve, bit for bit, and a run resumed
 * from a checkpoint continues it exactly.
 *
 * Memory: each step runs inside one tf.tidy; the only tensor that leaves it is a [5] vector
 * (loss, auxiliary loss, correct count, drop fraction, gradient norm) read back after the step,
 * outside tidy.
 */
import * as tf from '@tensorflow/tfjs';
import { batchStream, epochBatches } from '../data/batches.js';
import type { ImageDataset } from '../data/datasets.js';
import { checkInt, checkOptions } from '../ops/check.js';
import type { ResolvedViTConfig } from '../vit/config.js';
import { softMoEBlockDiagnostics, type BlockDiagnostics } from '../vit/diagnostics.js';
import type { ViT } from '../vit/vit.js';
import { Adam, type AdamOptions } from './adam.js';
import type { CheckpointContents, StoredTensor } from './checkpoint.js';
import { countCorrect, crossEntropy } from './loss.js';
import { checkSchedule, learningRateAt, type DecayKind, type ScheduleOptions } from './schedule.js';

/**
 * Options of a {@link Trainer}: the run length, batch size, learning-rate schedule (lib/train/schedule.ts),
 * Adam settings and the batch-order seed. Defaults are filled in by {@link resolveTrainerOptions}.
 */
export interface TrainerOptions {
  /** Total number of updates (sets the schedule's length). */
  steps: number;
  /** Images per update. Default 128. */
  batchSize?: number;
  /** Peak learning rate. Default 1e-3. */
  learningRate?: number;
  /** Linear warm-up updates. Default min(500, ⌊steps / 10⌋). */
  warmupSteps?: number;
  /** Decay after the warm-up. Default 'cosine'. */
  decay?: DecayKind;
  /** Final learning rate. Default 0 (vmoe `end_value = 0`). */
  endLearningRate?: number;
  /** Adam options (clipping default 1.0, weight decay default 0). */
  adam?: Pick<AdamOptions, 'beta1' | 'beta2' | 'epsilon' | 'weightDecay' | 'clipNorm'>;
  /** Seed of the batch order. Default 0. */
  seed?: number;
  /**
   * Random translation of training images by up to this many pixels per axis (lib/data/augment.ts).
   * Default 0 (none, as the paper). Evaluation never shifts.
   */
  maxShift?: number;
}

/**
 * {@link TrainerOptions} with every default filled in; stored in checkpoints, which must match it to resume.
 */
export interface ResolvedTrainerOptions {
  /** Total number of updates. */
  steps: number;
  /** Images per update. */
  batchSize: number;
  /** Peak learning rate (reached at the end of the warm-up). */
  learningRate: number;
  /** Linear warm-up updates. */
  warmupSteps: number;
  /** Decay after the warm-up. */
  decay: DecayKind;
  /** Final learning rate. */
  endLearningRate: number;
  /** Adam settings (see {@link AdamOptions}); `clipNorm` null means no clipping. */
  adam: Required<Pick<AdamOptions, 'beta1' | 'beta2' | 'epsilon' | 'weightDecay' | 'clipNorm'>>;
  /** Seed of the batch order. */
  seed: number;
  /** Random translation of training images, in pixels per axis (0 = none). */
  maxShift: number;
}

/**
 * Fill in the defaults of {@link TrainerOptions}: batch 128, peak learning rate 1e-3, warm-up
 * min(500, ⌊steps / 10⌋), cosine decay to 0 (vmoe `end_value = 0`), Adam β₁ 0.9, β₂ 0.999, ε 1e-8,
 * clipping at global norm 1.0 (vmoe `get_adam_config`), seed 0, no shift.
 *
 * @throws Error if `steps`, `batchSize`, `seed` or `maxShift` is not an integer in range, or the
 * schedule is inconsistent (e.g. more warm-up steps than steps).
 */
export function resolveTrainerOptions(options: TrainerOptions): ResolvedTrainerOptions {
  if (options == null) throw new Error('Trainer needs options {steps, …}');
  checkOptions(
    options,
    {
      steps: 'number',
      batchSize: 'number',
      learningRate: 'number',
      warmupSteps: 'number',
      decay: ['cosine', 'linear', 'constant'],
      endLearningRate: 'number',
      adam: 'object',
      seed: 'number',
      maxShift: 'number',
    },
    'Trainer options',
  );
  checkOptions(
    options.adam,
    { beta1: 'number', beta2: 'number', epsilon: 'number', weightDecay: 'number', clipNorm: 'number-or-null' },
    'Trainer options',
    'adam.',
  );
  checkInt(options.steps, 'steps');
  const batchSize = options.batchSize ?? 128;
  checkInt(batchSize, 'batchSize');
  const seed = options.seed ?? 0;
  checkInt(seed, 'seed', 0);
  const maxShift = options.maxShift ?? 0;
  checkInt(maxShift, 'maxShift', 0);
  const resolved: ResolvedTrainerOptions = {
    steps: options.steps,
    batchSize,
    learningRate: options.learningRate ?? 1e-3,
    warmupSteps: options.warmupSteps ?? Math.min(500, Math.floor(options.steps / 10)),
    decay: options.decay ?? 'cosine',
    endLearningRate: options.endLearningRate ?? 0,
    adam: {
      beta1: options.adam?.beta1 ?? 0.9,
      beta2: options.adam?.beta2 ?? 0.999,
      epsilon: options.adam?.epsilon ?? 1e-8,
      weightDecay: options.adam?.weightDecay ?? 0,
      clipNorm: options.adam?.clipNorm === undefined ? 1.0 : options.adam.clipNorm,
    },
    seed,
    maxShift,
  };
  checkSchedule(scheduleOf(resolved));
  return resolved;
}

function scheduleOf(o: ResolvedTrainerOptions): ScheduleOptions {
  return {
    peak: o.learningRate,
    totalSteps: o.steps,
    warmupSteps: o.warmupSteps,
    decay: o.decay,
    end: o.endLearningRate,
  };
}

/** What one update measured. */
export interface StepResult {
  /** Updates done after this one (1-based). */
  step: number;
  /** Cross-entropy on the batch (without the auxiliary loss). */
  loss: number;
  /** Summed auxiliary loss of the MoE blocks (unweighted; 0 without sparse MoEs). */
  auxLoss: number;
  /** Fraction of the batch classified correctly (before the update). */
  accuracy: number;
  /** Fraction of tokens no expert processed, averaged over the sparse MoE blocks (0 otherwise). */
  dropFraction: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate this update used. */
  learningRate: number;
  /** Wall time of the update, read-back included (ms). */
  ms: number;
}

/** What one evaluation measured ({@link Trainer.evaluate}, {@link evaluateModel}). */
export interface EvalResult {
  /** Updates done when the evaluation ran. */
  step: number;
  /** Fraction of the evaluated images classified correctly. */
  accuracy: number;
  /** Mean cross-entropy over the evaluated images. */
  loss: number;
  /** Number of images evaluated. */
  count: number;
  /** Wall time of the evaluation (ms). */
  ms: number;
}

/** Curves of a run; one entry per update in the per-step arrays. */
export interface History {
  /** Cross-entropy of each update's batch ({@link StepResult.loss}). */
  loss: number[];
  /** Summed auxiliary loss of each update (unweighted). */
  auxLoss: number[];
  /** Batch accuracy of each update (before the update). */
  accuracy: number[];
  /** Global gradient norm of each update, before clipping. */
  gradNorm: number[];
  /** Fraction of tokens dropped at each update, averaged over the sparse MoE blocks. */
  dropFraction: number[];
  /** Learning rate of each update. */
  learningRate: number[];
  /** Wall time of each update (ms). */
  stepMs: number[];
  /** The periodic evaluations, in order ({@link FitOptions.evalEvery}). */
  evals: EvalResult[];
  /**
   * Soft MoE diagnostics (lib/moe/diagnostics.ts) on the fixed probe batch, per block: before the
   * first update and at every evaluation (only when `fit` is given a probe).
   */
  diagnostics: DiagnosticsRecord[];
}

/** The Soft MoE diagnostics of every Soft MoE block after `step` updates. */
export interface DiagnosticsRecord {
  /** Updates done when the diagnostics were measured (0: before training). */
  step: number;
  /** The diagnostics of each Soft MoE block, by block name. */
  blocks: BlockDiagnostics;
}

/** A {@link History} with no entries. */
export function emptyHistory(): History {
  return {
    loss: [],
    auxLoss: [],
    accuracy: [],
    gradNorm: [],
    dropFraction: [],
    learningRate: [],
    stepMs: [],
    evals: [],
    diagnostics: [],
  };
}

/** Options of {@link Trainer.evaluate} and {@link evaluateModel}. */
export interface EvaluateOptions {
  /** Images per forward pass. Default 500. */
  batchSize?: number;
  /** Use only the first `limit` images (in stored order). Default: all. */
  limit?: number;
}

/** Options of {@link Trainer.fit}: evaluation, stopping point, callbacks and checkpoints. */
export interface FitOptions {
  /** Validation split for the periodic evaluations (never the test set). */
  validation?: ImageDataset;
  /** Evaluate every N updates (and after the last). 0 = never. Default 0. */
  evalEvery?: number;
  /** Images of `validation` used by the periodic evaluations. Default: all. */
  evalLimit?: number;
  /**
   * A fixed probe batch [b, H, W, C] (e.g. the first 64 validation images): the Soft MoE
   * diagnostics are measured on it before the first update and at each evaluation, into
   * `history.diagnostics`. The caller owns the tensor.
   */
  probe?: tf.Tensor4D;
  /** Called with each diagnostics record as it is measured (only with `probe`). */
  onDiagnostics?: (record: DiagnosticsRecord) => void;
  /** Stop after this many updates in total. Default: options.steps. */
  untilStep?: number;
  /** Called after every update with what it measured. */
  onStep?: (result: StepResult) => void;
  /** Called after every periodic evaluation. */
  onEval?: (result: EvalResult) => void;
  /** Call `saveCheckpoint` every N updates (and after the last). */
  checkpointEvery?: number;
  /**
   * Store a checkpoint of the trainer, e.g. `(t) => saveTrainerCheckpoint(t, path)` from the
   * Node entry ('soft-moe-workbook/node'), which writes `checkpointContents()` to a file.
   */
  saveCheckpoint?: (trainer: Trainer) => Promise<void>;
  /** Stop before the next update once aborted (throws TrainingInterrupted). */
  signal?: AbortSignal;
  /**
   * Declare the run diverged (throw) when an update's loss exceeds this factor times
   * max(first loss of the run, ln(classes)). Default 10: the first loss of a classifier is about
   * ln(classes) (exactly, with the zero head init), so 10× means the model puts probability
   * ≈ e^(−10·ln C) on the right class — far worse than guessing. 0 turns the check off
   * (non-finite losses are always rejected).
   */
  divergenceFactor?: number;
}

/** Thrown by `fit` when its `signal` aborts; the trainer's state is that after the last update. */
export class TrainingInterrupted extends Error {
  /**
   * An interruption after update `step`.
   *
   * @param step updates done when training stopped; kept as `step`.
   * @param reason why (the abort reason), or empty.
   */
  constructor(
    readonly step: number,
    reason: string,
  ) {
    super(`training interrupted after update ${step}${reason ? ` (${reason})` : ''}`);
    this.name = 'TrainingInterrupted';
  }
}

/** The loss above which `fit` declares divergence (see FitOptions.divergenceFactor), or Infinity. */
export function divergenceLimit(history: History, numClasses: number, factor = 10): number {
  if (!(factor > 0)) return Infinity;
  const first = history.loss.length > 0 ? history.loss[0] : Math.log(numClasses);
  return factor * Math.max(first, Math.log(numClasses));
}

/** The checkpoint's JSON meta. */
export interface TrainerCheckpointMeta {
  /** Marks the file as a trainer checkpoint. */
  kind: 'soft-moe-workbook/trainer';
  /** Updates done when the checkpoint was taken. */
  step: number;
  /** The model's resolved configuration (must match to restore). */
  modelConfig: ResolvedViTConfig;
  /** The trainer's resolved options (must match to restore). */
  trainerOptions: ResolvedTrainerOptions;
  /** The curves up to `step`. */
  history: History;
}

/**
 * Trains a {@link ViT} classifier: Adam ({@link Adam}) with warm-up and decay
 * ({@link learningRateAt}), cross-entropy plus `auxLossWeight` × the MoE blocks' auxiliary losses,
 * periodic evaluation on a validation split, and checkpoints that resume the same curve. The batch
 * order is a function of (seed, step) alone ({@link batchStream}), so the same seed and backend give
 * the same loss curve.
 *
 * The trainer owns the optimiser state (disposed by {@link Trainer.dispose}); the model belongs to
 * the caller.
 *
 * @example
 * ```ts
 * const train = await loadDataset('fashion-mnist', 'train');          // Node entry
 * const { train: fit, validation } = splitValidation(train, { count: 5000, seed: 0 });
 * const model = new ViT({ ...SIZE_PRESETS.small, kind: 'soft', moe: { numExperts: 16, slotsPerExpert: 1 } });
 * const trainer = new Trainer(model, { steps: 2000, batchSize: 128, learningRate: 1e-3 });
 * const history = await trainer.fit(fit, { validation, evalEvery: 500, onStep: (r) => console.log(r.step, r.loss) });
 * console.log((await trainer.evaluate(validation)).accuracy);
 * trainer.dispose(); model.dispose();
 * ```
 */
export class Trainer {
  /** The resolved options (defaults filled in). */
  readonly options: ResolvedTrainerOptions;
  /** The Adam optimiser over the model's variables; owned by the trainer. */
  readonly optimizer: Adam;
  /** Curves of the run so far (restored from a checkpoint by {@link Trainer.restoreCheckpoint}). */
  history: History = emptyHistory();
  private readonly params: Record<string, tf.Variable>;

  /**
   * @param model the ViT to train (its variables are the parameters; the caller keeps ownership).
   * @param options run length, schedule and Adam settings; see {@link resolveTrainerOptions} for the defaults.
   * @throws Error for invalid options (see {@link resolveTrainerOptions} and {@link Adam}).
   */
  constructor(
    readonly model: ViT,
    options: TrainerOptions,
  ) {
    this.options = resolveTrainerOptions(options);
    this.params = model.variables;
    this.optimizer = new Adam(this.params, { ...this.options.adam, lrMultiplier: softMoELrMultiplier(model.config) });
  }

  /** Updates applied so far. */
  get step(): number {
    return this.optimizer.step;
  }

  /** Learning rate of the next update. */
  get learningRate(): number {
    return learningRateAt(this.step, scheduleOf(this.options));
  }

  /** One Adam update on a batch: images [b, H, W, C] float32, labels [b] int32. */
  async trainStep(images: tf.Tensor4D, labels: tf.Tensor1D): Promise<StepResult> {
    const learningRate = this.learningRate;
    const stepIndex = this.step; // updates done before this one
    const auxWeight = this.model.config.moe.auxLossWeight;
    const names = Object.keys(this.params);
    const varList = names.map((n) => this.params[n]);
    const start = performance.now();
    const stats = tf.tidy(() => {
      // [cross-entropy, auxiliary loss, correct count, mean drop fraction], kept so that it outlives variableGrads'
      // forward scope; disposed once packed below.
      const held: { parts?: tf.Tensor1D } = {};
      const { grads } = tf.variableGrads(() => {
        const out = this.model.apply(images, { training: true, step: stepIndex });
        const ce = crossEntropy(out.logits, labels);
        const drops = out.dropFractions;
        const drop = drops.length > 0 ? tf.div(tf.addN(drops), drops.length) : tf.scalar(0);
        held.parts = tf.keep(tf.stack([ce, out.auxLoss, countCorrect(out.logits, labels), drop]) as tf.Tensor1D);
        return auxWeight > 0 ? tf.add(ce, tf.mul(out.auxLoss, auxWeight)) : ce;
      }, varList);
      const named: Record<string, tf.Tensor> = {};
      for (const n of names) named[n] = grads[this.params[n].name];
      const norm = this.optimizer.apply(named, learningRate);
      const parts = held.parts as tf.Tensor1D;
      const packed = tf.concat([parts, norm.reshape([1])]);
      parts.dispose();
      return packed;
    });
    const [loss, auxLoss, correct, dropFraction, gradNorm] = await stats.data();
    stats.dispose();
    const ms = performance.now() - start;
    if (!Number.isFinite(loss))
      throw new Error(`training diverged at update ${this.step}: loss ${loss} (learning rate ${learningRate})`);
    const result: StepResult = {
      step: this.step,
      loss,
      auxLoss,
      accuracy: correct / images.shape[0],
      dropFraction,
      gradNorm,
      learningRate,
      ms,
    };
    const h = this.history;
    h.loss.push(loss);
    h.auxLoss.push(auxLoss);
    h.accuracy.push(result.accuracy);
    h.gradNorm.push(gradNorm);
    h.dropFraction.push(dropFraction);
    h.learningRate.push(learningRate);
    h.stepMs.push(ms);
    return result;
  }

  /** Accuracy and mean cross-entropy on a data set (forward passes only, inside tidy). */
  async evaluate(ds: ImageDataset, options: EvaluateOptions = {}): Promise<EvalResult> {
    return evaluateModel(this.model, ds, options, this.step);
  }

  /** Train until `untilStep` (default: options.steps), evaluating and checkpointing on the way. */
  async fit(train: ImageDataset, options: FitOptions = {}): Promise<History> {
    checkOptions(
      options,
      {
        validation: 'object',
        evalEvery: 'number',
        evalLimit: 'number',
        untilStep: 'number',
        onStep: 'function',
        onEval: 'function',
        checkpointEvery: 'number',
        saveCheckpoint: 'function',
        signal: 'object',
        divergenceFactor: 'number',
        probe: 'tensor',
        onDiagnostics: 'function',
      },
      'fit',
    );
    const untilStep = options.untilStep ?? this.options.steps;
    checkInt(untilStep, 'untilStep', 0);
    const evalEvery = options.evalEvery ?? 0;
    if (options.checkpointEvery && !options.saveCheckpoint)
      throw new Error('checkpointEvery needs saveCheckpoint (e.g. saveTrainerCheckpoint from the Node entry)');
    if (options.saveCheckpoint && !options.checkpointEvery)
      throw new Error('saveCheckpoint needs checkpointEvery (updates between checkpoints)');
    const factor = options.divergenceFactor ?? 10;
    if (typeof factor !== 'number' || !(factor >= 0))
      throw new Error(`divergenceFactor must be a number ≥ 0, got ${String(factor)}`);
    this.history.diagnostics ??= []; // histories saved before the diagnostics existed
    const diagnose = async () => {
      if (!options.probe) return;
      const record = { step: this.step, blocks: await softMoEBlockDiagnostics(this.model, options.probe) };
      this.history.diagnostics.push(record);
      options.onDiagnostics?.(record);
    };
    if (this.step === 0 && this.history.diagnostics.length === 0) await diagnose();
    const stream = batchStream(train, {
      batchSize: this.options.batchSize,
      seed: this.options.seed,
      startStep: this.step,
      maxShift: this.options.maxShift,
    });
    try {
      while (this.step < untilStep) {
        if (options.signal?.aborted) throw new TrainingInterrupted(this.step, String(options.signal.reason ?? ''));
        const batch = stream.next().value;
        let result: StepResult;
        try {
          result = await this.trainStep(batch.x, batch.y);
        } finally {
          batch.x.dispose();
          batch.y.dispose();
        }
        options.onStep?.(result);
        const limit = divergenceLimit(this.history, this.model.config.numClasses, factor);
        if (result.loss > limit) {
          throw new Error(
            `training diverged at update ${result.step}: loss ${result.loss.toPrecision(4)} is above ${factor} × max(first loss ${this.history.loss[0].toPrecision(4)}, ` +
              `ln ${this.model.config.numClasses}) = ${limit.toPrecision(4)} (learning rate ${result.learningRate}); lower the learning rate`,
          );
        }
        const last = this.step === untilStep;
        if (options.validation && evalEvery > 0 && (this.step % evalEvery === 0 || last)) {
          const ev = await this.evaluate(options.validation, { limit: options.evalLimit });
          this.history.evals.push(ev);
          await diagnose();
          options.onEval?.(ev);
        }
        if (options.saveCheckpoint && options.checkpointEvery && (this.step % options.checkpointEvery === 0 || last)) {
          await options.saveCheckpoint(this);
        }
      }
    } finally {
      stream.return(undefined as never);
    }
    return this.history;
  }

  /**
   * What a checkpoint holds: parameters, Adam's moments and step (tensors, not copies), the
   * options and the history. Written to a file by `saveTrainerCheckpoint` (Node entry).
   */
  checkpointContents(): {
    /** Parameters (`param/…`) and Adam moments (`adam/m/…`, `adam/v/…`), the live tensors. */
    tensors: Record<string, tf.Tensor>;
    /** Step, configurations and history. */
    meta: TrainerCheckpointMeta;
  } {
    const state = this.optimizer.getState();
    const tensors: Record<string, tf.Tensor> = {};
    for (const [n, v] of Object.entries(this.params)) tensors[`param/${n}`] = v;
    for (const [n, t] of Object.entries(state.m)) tensors[`adam/m/${n}`] = t;
    for (const [n, t] of Object.entries(state.v)) tensors[`adam/v/${n}`] = t;
    const meta: TrainerCheckpointMeta = {
      kind: 'soft-moe-workbook/trainer',
      step: state.step,
      modelConfig: this.model.config,
      trainerOptions: this.options,
      history: this.history,
    };
    return { tensors, meta };
  }

  /**
   * Restore checkpoint contents (as `checkpointContents()` made them; read from a file by
   * `loadTrainerCheckpoint`, Node entry) into this trainer's model and optimiser. `path` names
   * the source in error messages. The model config and the trainer options must match (a
   * different schedule or batch order would not continue the same run).
   */
  restoreCheckpoint(contents: CheckpointContents<TrainerCheckpointMeta>, path = 'checkpoint'): TrainerCheckpointMeta {
    const { meta, tensors } = contents;
    if (meta == null || meta.kind !== 'soft-moe-workbook/trainer')
      throw new Error(`${path} is not a trainer checkpoint (meta.kind = ${JSON.stringify(meta?.kind)})`);
    const diff =
      firstDifference(meta.modelConfig, this.model.config, 'modelConfig') ??
      firstDifference(meta.trainerOptions, this.options, 'trainerOptions');
    if (diff) throw new Error(`${path} was saved with a different configuration: ${diff}`);
    const take = (key: string, like: tf.Variable): StoredTensor => {
      const t = tensors[key];
      if (t == null) throw new Error(`${path} has no tensor ${JSON.stringify(key)}`);
      if (t.shape.length !== like.shape.length || t.shape.some((s, i) => s !== like.shape[i])) {
        throw new Error(`${path}: ${key} has shape [${t.shape.join(', ')}], expected [${like.shape.join(', ')}]`);
      }
      return t;
    };
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    const values: Record<string, Float32Array> = {};
    for (const [n, p] of Object.entries(this.params)) {
      values[n] = take(`param/${n}`, p).data;
      m[n] = take(`adam/m/${n}`, p).data;
      v[n] = take(`adam/v/${n}`, p).data;
    }
    const extra = Object.keys(tensors).filter((k) => !k.startsWith('param/') && !k.startsWith('adam/'));
    const expectedCount = 3 * Object.keys(this.params).length;
    if (extra.length > 0 || Object.keys(tensors).length !== expectedCount) {
      throw new Error(
        `${path} holds ${Object.keys(tensors).length} tensors, expected ${expectedCount} (3 per parameter)${extra.length ? `; unknown: ${extra.slice(0, 3).join(', ')}` : ''}`,
      );
    }
    for (const [n, p] of Object.entries(this.params)) tf.tidy(() => p.assign(tf.tensor(values[n], p.shape, 'float32')));
    this.optimizer.setState({ step: meta.step, m, v });
    this.history = meta.history;
    return meta;
  }

  /** Dispose the optimiser state (the model belongs to the caller). */
  dispose(): void {
    this.optimizer.dispose();
  }
}

/**
 * Learning-rate multipliers of the Soft MoE blocks' `scale` and Φ (config `moe.scaleLrMultiplier`,
 * `moe.phiLrMultiplier`; variables `block{l}/moe/scale` and `block{l}/moe/phi`); 1 elsewhere.
 */
export function softMoELrMultiplier(config: ResolvedViTConfig): (name: string) => number {
  const { scaleLrMultiplier, phiLrMultiplier } = config.moe;
  return (name) =>
    /(^|\/)moe\/scale$/.test(name) ? scaleLrMultiplier : /(^|\/)moe\/phi$/.test(name) ? phiLrMultiplier : 1;
}

/** Accuracy and mean cross-entropy of `model` on `ds` (forward passes only). */
export async function evaluateModel(
  model: ViT,
  ds: ImageDataset,
  options: EvaluateOptions = {},
  step = 0,
): Promise<EvalResult> {
  checkOptions(options, { batchSize: 'number', limit: 'number' }, 'evaluate');
  const batchSize = options.batchSize ?? 500;
  checkInt(batchSize, 'evaluate batchSize');
  const limit = Math.min(options.limit ?? ds.count, ds.count);
  checkInt(limit, 'evaluation limit');
  const start = performance.now();
  let correct = 0;
  let lossSum = 0;
  let seen = 0;
  for (const batch of epochBatches(ds, { batchSize })) {
    if (seen >= limit) {
      batch.x.dispose();
      batch.y.dispose();
      break;
    }
    const take = Math.min(batch.indices.length, limit - seen);
    const stats = tf.tidy(() => {
      const x = take < batch.indices.length ? batch.x.slice(0, take) : batch.x;
      const y = take < batch.indices.length ? batch.y.slice(0, take) : batch.y;
      const { logits } = model.apply(x as tf.Tensor4D);
      return tf.stack([countCorrect(logits, y as tf.Tensor1D), tf.mul(crossEntropy(logits, y as tf.Tensor1D), take)]);
    });
    batch.x.dispose();
    batch.y.dispose();
    const [c, l] = await stats.data();
    stats.dispose();
    correct += c;
    lossSum += l;
    seen += take;
  }
  return { step, accuracy: correct / seen, loss: lossSum / seen, count: seen, ms: performance.now() - start };
}

/** A short description of the first place two JSON-like values differ, or null. */
function firstDifference(a: unknown, b: unknown, path: string): string | null {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return Object.is(a, b) ? null : `${path} is ${JSON.stringify(a)} in the checkpoint, ${JSON.stringify(b)} now`;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    if (d) return d;
  }
  return null;
}
