/**
 * Run a golden case (test/fixtures/golden, see its README) and measure how far each output is
 * from the reference. Browser-safe (no Node imports): the headless-Chromium test bundles it
 * (test/browser/golden-page.ts), and test/webgpu/golden-errors.ts prints the same measures.
 */
import * as tf from '@tensorflow/tfjs';
import type { RouterParams } from '../../lib/moe/gating.js';
import { expertsChoice } from '../../lib/moe/routers/experts-choice.js';
import { tokensChoice } from '../../lib/moe/routers/tokens-choice.js';
import { softMoE, type SoftMoEParams } from '../../lib/moe/soft-moe.js';

export interface GoldenTensor {
  shape: number[];
  dtype: string;
  data: number[] | boolean[];
}
export interface GoldenCase {
  name: string;
  kind: 'soft_moe' | 'tokens_choice' | 'experts_choice';
  config: Record<string, unknown>;
  inputs: Record<string, GoldenTensor>;
  params: Record<string, GoldenTensor>;
  expected: Record<string, GoldenTensor | number>;
  grads: Record<string, GoldenTensor>;
}

/** A float32 tensor from a golden entry (booleans become 0/1). */
export function toTensor(t: GoldenTensor): tf.Tensor {
  const data = (t.data as Array<number | boolean>).map(Number);
  return tf.tensor(data, t.shape, 'float32');
}

/** The golden tolerance (README): |got − want| ≤ 1e-4 + 1e-3·|want|. */
export const ATOL = 1e-4;
export const RTOL = 1e-3;

/** Outputs compared exactly (integer and boolean routing decisions). */
export const EXACT_KEYS = new Set([
  'expert_index',
  'buffer_index',
  'kept',
  'token_kept',
  'expert_load',
  'selected_index_sorted',
  'token_expert_mask',
  'num_experts_per_token',
]);
/** Scalar fractions, compared within 1e-6 absolute. */
export const FRACTION_KEYS = new Set(['drop_fraction', 'choice_drop_fraction']);

function routerParams(c: GoldenCase): RouterParams {
  const t = (k: string) => toTensor(c.params[k]);
  return {
    wg: t('wg') as tf.Tensor2D,
    w1: t('w1') as tf.Tensor3D,
    b1: t('b1') as tf.Tensor2D,
    w2: t('w2') as tf.Tensor3D,
    b2: t('b2') as tf.Tensor2D,
  };
}

type RouterConfig = {
  k: number;
  capacity_factor: number;
  ceil_or_round: 'ceil' | 'round';
  multiple_of: number | null;
  batch_priority: boolean;
};

function route(c: GoldenCase, x: tf.Tensor3D, p: RouterParams) {
  const cfg = c.config as RouterConfig;
  return c.kind === 'tokens_choice'
    ? tokensChoice(x, p, {
        k: cfg.k,
        capacityFactor: cfg.capacity_factor,
        ceilOrRound: cfg.ceil_or_round,
        multipleOf: cfg.multiple_of,
        batchPriority: cfg.batch_priority,
      })
    : expertsChoice(x, p, { capacityFactor: cfg.capacity_factor, ceilOrRound: cfg.ceil_or_round });
}

/**
 * Every output of a case, named as in the reference file (`grad/x` for the gradient of
 * sum(y·r) with respect to x), plus the capacity. Call inside tf.tidy.
 */
export function goldenOutputs(c: GoldenCase): { tensors: Record<string, tf.Tensor>; capacity: number | null } {
  const x = toTensor(c.inputs.x) as tf.Tensor3D;
  const r = toTensor(c.inputs.r);
  let forward: (x: tf.Tensor3D, params: tf.Tensor[]) => tf.Tensor3D;
  let names: string[];
  const tensors: Record<string, tf.Tensor> = {};
  let capacity: number | null = null;
  if (c.kind === 'soft_moe') {
    names = ['phi', 'scale', 'w1', 'b1', 'w2', 'b2'];
    const asParams = (p: tf.Tensor[]) => Object.fromEntries(names.map((n, i) => [n, p[i]])) as unknown as SoftMoEParams;
    forward = (xx, p) => softMoE(xx, asParams(p)).y;
    const out = softMoE(x, asParams(names.map((n) => toTensor(c.params[n]))), { returnWeights: true });
    Object.assign(tensors, {
      y: out.y,
      logits: out.logits!,
      dispatch: out.dispatch!,
      combine: out.combine!,
      slot_inputs: out.slotInputs!,
      slot_outputs: out.slotOutputs!,
    });
  } else {
    names = ['wg', 'w1', 'b1', 'w2', 'b2'];
    const asParams = (p: tf.Tensor[]) => Object.fromEntries(names.map((n, i) => [n, p[i]])) as unknown as RouterParams;
    forward = (xx, p) => route(c, xx, asParams(p)).y;
    const out = route(c, x, routerParams(c));
    capacity = out.capacity;
    Object.assign(tensors, {
      y: out.y,
      gates: out.gates,
      token_kept: out.tokenKept,
      drop_fraction: out.dropFraction,
      expert_load: out.expertLoad,
    });
    if ('expertIndex' in out) {
      Object.assign(tensors, {
        expert_index: out.expertIndex,
        combine_weight: out.combineWeight,
        buffer_index: out.bufferIndex,
        kept: out.kept,
        choice_drop_fraction: out.choiceDropFraction,
      });
    } else {
      Object.assign(tensors, {
        selected_index_sorted: out.selectedIndexSorted,
        token_expert_mask: out.tokenExpertMask,
        num_experts_per_token: out.numExpertsPerToken,
      });
    }
  }
  tensors.loss = tf.sum(tf.mul(tensors.y, r));
  const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(forward(args[0] as tf.Tensor3D, args.slice(1)), r)))([
    x,
    ...names.map((n) => toTensor(c.params[n])),
  ]);
  ['x', ...names].forEach((n, i) => (tensors[`grad/${n}`] = grads[i]));
  return { tensors, capacity };
}

/** How one output compares with the reference. */
export interface GoldenComparison {
  key: string;
  /** Shape matches and every element is within tolerance (exact for EXACT_KEYS). */
  ok: boolean;
  maxAbsError: number;
  /** max over elements of |got − want| / (atol + rtol·|want|): ≤ 1 passes. */
  worstRatio: number;
  detail: string;
}

/** The reference entry of an output key (expert_load of Experts Choice: C everywhere, by construction). */
function reference(
  c: GoldenCase,
  key: string,
  got: { shape: number[] },
  capacity: number | null,
): { shape: number[]; data: number[] } | null {
  if (key.startsWith('grad/')) {
    const g = c.grads[key.slice(5)];
    return { shape: g.shape, data: (g.data as Array<number | boolean>).map(Number) };
  }
  const e = c.expected[key];
  if (e == null) {
    if (key === 'expert_load' && c.kind === 'experts_choice' && capacity != null)
      return { shape: got.shape, data: new Array(got.shape.reduce((a, b) => a * b, 1)).fill(capacity) };
    return null;
  }
  if (typeof e === 'number') return { shape: [], data: [e] };
  return { shape: e.shape, data: (e.data as Array<number | boolean>).map(Number) };
}

/** Reference keys (expected outputs and gradients) that `results` does not cover. */
export function uncovered(c: GoldenCase, results: GoldenComparison[]): string[] {
  const keys = [...Object.keys(c.expected), ...Object.keys(c.grads).map((k) => `grad/${k}`)];
  return keys.filter((k) => !results.some((r) => r.key === k));
}

export function compareGolden(
  c: GoldenCase,
  got: Record<string, { shape: number[]; data: ArrayLike<number> }>,
  capacity: number | null,
): GoldenComparison[] {
  const results: GoldenComparison[] = [];
  if (capacity != null) {
    const want = c.expected.capacity as number;
    results.push({
      key: 'capacity',
      ok: capacity === want,
      maxAbsError: Math.abs(capacity - want),
      worstRatio: capacity === want ? 0 : Infinity,
      detail: `${capacity} vs ${want}`,
    });
  }
  for (const [key, value] of Object.entries(got)) {
    const want = reference(c, key, value, capacity);
    if (want == null) continue;
    const [atol, rtol] = EXACT_KEYS.has(key) ? [0, 0] : FRACTION_KEYS.has(key) ? [1e-6, 0] : [ATOL, RTOL];
    const sameShape = want.shape.length === value.shape.length && want.shape.every((s, i) => s === value.shape[i]);
    let maxAbsError = 0;
    let worstRatio = 0;
    let worst = -1;
    for (let i = 0; i < want.data.length; i++) {
      const err = Math.abs(value.data[i] - want.data[i]);
      const ratio = atol + rtol === 0 ? (err === 0 ? 0 : Infinity) : err / (atol + rtol * Math.abs(want.data[i]));
      if (!(err <= maxAbsError)) maxAbsError = err;
      if (!(ratio <= worstRatio)) {
        worstRatio = ratio;
        worst = i;
      }
    }
    const ok = sameShape && value.data.length === want.data.length && worstRatio <= 1;
    const detail = !sameShape
      ? `shape [${value.shape}] vs [${want.shape}]`
      : worst >= 0
        ? `element ${worst}: ${value.data[worst]} vs ${want.data[worst]}`
        : '';
    results.push({ key, ok, maxAbsError, worstRatio, detail });
  }
  return results;
}

/** Run one case on the active backend (reads with `await data()`) and compare it. */
export async function runGolden(c: GoldenCase): Promise<GoldenComparison[]> {
  let capacity: number | null = null;
  const tensors = tf.tidy(() => {
    const out = goldenOutputs(c);
    capacity = out.capacity;
    return out.tensors;
  });
  try {
    const got: Record<string, { shape: number[]; data: ArrayLike<number> }> = {};
    for (const [key, t] of Object.entries(tensors)) got[key] = { shape: t.shape, data: await t.data() };
    return compareGolden(c, got, capacity);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
