/**
 * Learning-rate schedules: linear warm-up, then cosine or linear decay (the ViT recipe; vmoe
 * `get_optimizer_linear_config`: schedule 'warmup_linear_decay', peak 8e-4, end 0, 10k warm-up
 * steps; optax `warmup_cosine_decay_schedule` for the cosine form).
 *
 * Update s (0-based) uses
 *   warm-up  s < w:  peak · (s + 1) / w
 *   decay    s ≥ w:  t = (s − w) / max(1, T − w) ∈ [0, 1]
 *            cosine: end + (peak − end) · ½ (1 + cos(π t))
 *            linear: peak + (end − peak) · t
 * Departure from optax: optax's warm-up starts at exactly 0 for the first update (a wasted
 * step); here the first update already uses peak/w.
 */
import { checkInt } from '../ops/check.js';

/**
 * How the learning rate falls after the warm-up: 'cosine' (optax `warmup_cosine_decay_schedule`),
 * 'linear' (vmoe 'warmup_linear_decay') or 'constant' (stays at the peak).
 */
export type DecayKind = 'cosine' | 'linear' | 'constant';

/** A learning-rate schedule: linear warm-up to `peak`, then decay to `end` at `totalSteps`. */
export interface ScheduleOptions {
  /** Peak learning rate. */
  peak: number;
  /** Total number of updates T. */
  totalSteps: number;
  /** Warm-up updates w (≥ 0). */
  warmupSteps: number;
  /** Decay after the warm-up. Default 'cosine'. */
  decay?: DecayKind;
  /** Final learning rate. Default 0. */
  end?: number;
}

/**
 * Validate a schedule.
 *
 * @throws Error if `peak` is not a finite number > 0, `totalSteps` or `warmupSteps` is not an
 * integer in range, `warmupSteps` > `totalSteps`, `end` is outside [0, peak], or `decay` is
 * unknown.
 */
export function checkSchedule(options: ScheduleOptions): void {
  const { peak, totalSteps, warmupSteps } = options;
  if (!Number.isFinite(peak) || peak <= 0)
    throw new Error(`learning rate peak must be a finite number > 0, got ${String(peak)}`);
  checkInt(totalSteps, 'totalSteps');
  checkInt(warmupSteps, 'warmupSteps', 0);
  if (warmupSteps > totalSteps) throw new Error(`warmupSteps ${warmupSteps} must be ≤ totalSteps ${totalSteps}`);
  const end = options.end ?? 0;
  if (!Number.isFinite(end) || end < 0 || end > peak)
    throw new Error(`end learning rate must be in [0, peak = ${peak}], got ${String(end)}`);
  const decay = options.decay ?? 'cosine';
  if (!['cosine', 'linear', 'constant'].includes(decay))
    throw new Error(`decay must be "cosine", "linear" or "constant", got ${JSON.stringify(decay)}`);
}

/** The learning rate of update `step` (0-based). */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  const { peak, totalSteps, warmupSteps } = options;
  const end = options.end ?? 0;
  const decay = options.decay ?? 'cosine';
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  if (decay === 'constant') return peak;
  const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  if (decay === 'linear') return peak + (end - peak) * t;
  return end + (peak - end) * 0.5 * (1 + Math.cos(Math.PI * t));
}
