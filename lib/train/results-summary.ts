/**
 * Reading recorded results back: the results files that `npm run train` writes under
 * data/results/ (lib/train/results.ts, lib/cli/train.ts), summarised one run per entry, and
 * statistics over seeds (mean and spread), for the workbook's figures of recorded sweeps.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedViTConfig } from '../vit/config.js';

/** One recorded run, as the notebooks need it. */
export interface RunSummary {
  /** File the run was read from. */
  file: string;
  /** Name of the run, as `npm run train` gave it. */
  name: string;
  /** 'finished', or how far the run got ('running', 'failed', …). */
  status: string;
  /** The command that re-creates the run. */
  command: string;
  /** Data set trained on. */
  dataset: string;
  /** The model's resolved configuration. */
  model: ResolvedViTConfig;
  /** Kind of the MoE blocks ('dense' for a plain ViT). */
  kind: ResolvedViTConfig['kind'];
  /** Seed of the model and the batch order. */
  seed: number;
  /** Updates configured. */
  steps: number;
  /** Images per update. */
  batchSize: number;
  /** Peak learning rate. */
  learningRate: number;
  /** Random translation of training images, pixels (0 in files written before the option existed). */
  maxShift: number;
  /** Head initialisation ('zeros' in files written before the option existed). */
  headInit: 'zeros' | 'uniform';
  /** Fractions in [0, 1]; null when the run did not finish. */
  testAccuracy: number | null;
  /** Final validation accuracy; null when the run did not finish. */
  validationAccuracy: number | null;
  /** Number of test images evaluated; null when the run did not finish. */
  testCount: number | null;
  /** Median wall time of a training update (ms); wall time includes waiting for a shared CPU. */
  msPerStepMedian: number | null;
  /** Process CPU time per update (ms), when the file records it: less sensitive to other load. */
  cpuMsPerStep: number | null;
  /** Wall time of the whole training loop (s; evaluations during training included), when recorded. */
  trainWallSeconds: number | null;
  /**
   * Sparse routers: mean fraction of tokens that no expert processed, over the last updates of
   * training (the trainer's `finalDropFraction`); null for Soft MoE and dense, or when not recorded.
   */
  dropFraction: number | null;
  /** Trainable parameters of the model. */
  parameters: number;
  /** Forward FLOPs per image (lib/vit/cost.ts). */
  flopsPerImage: number;
  /** Validation accuracy during training. */
  validationCurve: Array<{
    /** Updates done at the evaluation. */
    step: number;
    /** Validation accuracy, in [0, 1]. */
    accuracy: number;
  }>;
  /** Machine description, backend name and load average (1 min) when the run started. */
  machine: string;
  /** tfjs backend name. */
  backend: string;
  /** 1-minute load average when the run started; null when not recorded. */
  loadAverage: number | null;
  /** git HEAD when the run started, and library files that differed from it (work in progress). */
  commit: string | null;
  /** Library files that differed from `commit` when the run started. */
  uncommittedLibraryFiles: string[];
  /** When the run started (ISO 8601). */
  startedAt: string;
}

interface ResultsDocument {
  status: string;
  name: string;
  command: string;
  startedAt: string;
  config: {
    dataset: string;
    model: ResolvedViTConfig;
    trainer: { steps: number; batchSize: number; seed: number; learningRate: number; maxShift?: number };
  };
  backend: { name: string };
  machine: { cpuModel: string; cores: number; loadAverage?: number[] };
  git: { commit: string; uncommittedLibraryFiles?: string[] } | null;
  cost: { parameters: number; flopsPerImage: { total: number } };
  summary?: {
    steps: number;
    testAccuracy: number;
    validationAccuracy: number;
    testCount: number;
    msPerStepMedian: number;
    trainCpuSeconds?: number;
    trainWallSeconds?: number;
    finalDropFraction?: number;
  };
  curves: { validation: Array<{ step: number; accuracy: number }> };
}

/** Summarise one results document (the parsed JSON of a results file). */
export function summarizeRun(doc: unknown, file = '(in memory)'): RunSummary {
  const d = doc as ResultsDocument;
  if (d == null || typeof d !== 'object' || typeof d.status !== 'string' || d.config?.model == null || d.cost == null) {
    throw new Error(`${file} is not a results file of npm run train (expected status, config.model and cost)`);
  }
  const s = d.summary;
  const finished = d.status === 'finished' && s != null;
  return {
    file,
    name: d.name,
    status: d.status,
    command: d.command,
    dataset: d.config.dataset,
    model: d.config.model,
    kind: d.config.model.kind,
    seed: d.config.trainer.seed,
    steps: d.config.trainer.steps,
    batchSize: d.config.trainer.batchSize,
    learningRate: d.config.trainer.learningRate,
    maxShift: d.config.trainer.maxShift ?? 0,
    headInit: d.config.model.headInit ?? 'zeros',
    testAccuracy: finished ? s.testAccuracy : null,
    validationAccuracy: finished ? s.validationAccuracy : null,
    testCount: finished ? s.testCount : null,
    msPerStepMedian: finished ? s.msPerStepMedian : null,
    cpuMsPerStep: finished && s.trainCpuSeconds != null && s.steps > 0 ? (1000 * s.trainCpuSeconds) / s.steps : null,
    trainWallSeconds: finished && typeof s.trainWallSeconds === 'number' ? s.trainWallSeconds : null,
    dropFraction: finished && typeof s.finalDropFraction === 'number' ? s.finalDropFraction : null,
    parameters: d.cost.parameters,
    flopsPerImage: d.cost.flopsPerImage.total,
    validationCurve: (d.curves?.validation ?? []).map((v) => ({ step: v.step, accuracy: v.accuracy })),
    machine: `${d.machine.cpuModel}, ${d.machine.cores} cores`,
    backend: d.backend.name,
    loadAverage: d.machine.loadAverage?.[0] ?? null,
    commit: d.git?.commit ?? null,
    uncommittedLibraryFiles: d.git?.uncommittedLibraryFiles ?? [],
    startedAt: d.startedAt,
  };
}

/**
 * Every results file (`*.json`) of a folder, summarised and sorted by name. By default only
 * finished runs; `{ all: true }` keeps running and failed ones too. A missing folder gives [].
 */
export function readResultsDir(dir: string, options: { all?: boolean } = {}): RunSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot list the results folder ${dir}: ${(e as Error).message}`);
  }
  const runs = files.map((f) => {
    const path = join(dir, f);
    let doc: unknown;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`cannot read ${path}: ${(e as Error).message}`);
    }
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    return summarizeRun(doc, path);
  });
  return options.all ? runs : runs.filter((r) => r.status === 'finished');
}

/** Mean and spread of one quantity over seeds. */
export interface SeedStats {
  /** Number of values. */
  count: number;
  /** Arithmetic mean. */
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single value. */
  std: number;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** The values, in the order given. */
  values: number[];
}

/**
 * Count, mean, sample std, min and max of one metric over seeds.
 *
 * @throws Error if `values` is empty or holds a non-finite number.
 */
export function seedStats(values: readonly number[]): SeedStats {
  if (values.length === 0) throw new Error('seedStats needs at least one value');
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new Error(`seedStats: value #${i} must be finite, got ${v}`);
  });
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  return {
    count: n,
    mean,
    std: Math.sqrt(variance),
    min: Math.min(...values),
    max: Math.max(...values),
    values: [...values],
  };
}

/** Runs grouped by a key (e.g. model and number of experts), in first-seen order. */
export function groupRuns(runs: readonly RunSummary[], key: (run: RunSummary) => string): Map<string, RunSummary[]> {
  const groups = new Map<string, RunSummary[]>();
  for (const r of runs) {
    const k = key(r);
    const list = groups.get(k);
    if (list) list.push(r);
    else groups.set(k, [r]);
  }
  return groups;
}
