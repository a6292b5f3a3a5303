/**
 * Input checks shared by every layer: each failure names the offending value and what was
 * expected, so bad input never turns into a NaN or a crash deep inside tfjs.
 */
import * as tf from '@tensorflow/tfjs';

/** Throw unless `t` is a tensor of the given rank. */
export function checkRank(t: tf.Tensor | undefined | null, rank: number, name: string): void {
  if (t == null || !(t instanceof tf.Tensor)) {
    throw new Error(`${name} must be a tf.Tensor of rank ${rank}, got ${t === null ? 'null' : typeof t}`);
  }
  if (t.rank !== rank) {
    throw new Error(`${name} must have rank ${rank}, got shape [${t.shape.join(', ')}] (rank ${t.rank})`);
  }
  if (t.isDisposed) throw new Error(`${name} has been disposed`);
}

/** Throw unless `t.shape` equals `shape` (null entries match anything). */
export function checkShape(t: tf.Tensor, shape: ReadonlyArray<number | null>, name: string, what = ''): void {
  checkRank(t, shape.length, name);
  const ok = shape.every((s, i) => s == null || s === t.shape[i]);
  if (!ok) {
    const want = shape.map((s) => (s == null ? '?' : String(s))).join(', ');
    throw new Error(`${name} must have shape [${want}]${what ? ` (${what})` : ''}, got [${t.shape.join(', ')}]`);
  }
}

/** Throw unless `value` is an integer ≥ `min`. */
export function checkInt(value: number, name: string, min = 1): void {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer ≥ ${min}, got ${String(value)}`);
  }
}

/** Throw unless `value` is a finite number > 0. */
export function checkPositive(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${name} must be a finite number > 0, got ${String(value)}`);
  }
}

/** Throw unless `value` is one of `allowed`. */
export function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], name: string): asserts value is T {
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new Error(`${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`);
  }
}

/** Throw unless `t` is floating point. */
export function checkFloat(t: tf.Tensor, name: string): void {
  if (t.dtype !== 'float32') throw new Error(`${name} must have dtype float32, got ${t.dtype}`);
}

/**
 * Throw if `t` holds NaN or ±Inf. This reads the tensor back synchronously, so it is opt-in
 * (`checkFinite: true` in the options of softMoE, the routers and the layers; off by default)
 * and never used inside a training step.
 */
export function checkAllFinite(t: tf.Tensor, name: string): void {
  const bad = tf.tidy(() => tf.logicalNot(tf.isFinite(t)).any());
  const anyBad = bad.dataSync()[0] !== 0;
  bad.dispose();
  if (anyBad) {
    const vals = t.dataSync();
    let index = 0;
    while (index < vals.length && Number.isFinite(vals[index])) index++;
    throw new Error(`${name} must be finite, got ${String(vals[index])} at flat index ${index} of shape [${t.shape.join(', ')}]`);
  }
}
