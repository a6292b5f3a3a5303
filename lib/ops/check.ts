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
    throw new Error(
      `${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`,
    );
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
    throw new Error(
      `${name} must be finite, got ${String(vals[index])} at flat index ${index} of shape [${t.shape.join(', ')}]`,
    );
  }
}

/**
 * The seed to hand to tfjs' `randomNormal` / `truncatedNormal` for a validated seed (integer ≥ 0).
 * They seed their generator with `seed ? seed : Math.random()` (tfjs-core 4.22 `rand_util.js`,
 * MPRandGauss), so a seed of 0 means "unseeded": a layer built twice with seed 0 would get
 * different weights. (`randomUniform` treats only null as unseeded.) 0 is mapped to 0.5,
 * a value no integer seed can take (the generator is seeded with its string, "0.5"); every
 * other seed is passed unchanged, so weights recorded with nonzero seeds stay the same.
 */
export function tfjsSeed(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be an integer ≥ 0, got ${String(seed)}`);
  return seed === 0 ? 0.5 : seed;
}

/**
 * checkAllFinite on every tensor of a parameter object (x first, then phi, scale, w1, …), so a
 * NaN anywhere is named instead of turning the output into NaN.
 */
export function checkAllFiniteParams(tensors: Record<string, tf.Tensor | undefined>): void {
  for (const [name, t] of Object.entries(tensors)) if (t != null) checkAllFinite(t, name);
}

/**
 * The expected type of one option: a primitive kind, 'seed' (an integer ≥ 0), 'tensor', 'any',
 * or a list of the allowed strings.
 */
export type OptionKind =
  | 'boolean'
  | 'number'
  | 'number-or-null'
  | 'integer'
  | 'integer-or-null'
  | 'seed'
  | 'string'
  | 'object'
  | 'array'
  | 'function'
  | 'tensor'
  | 'any'
  | readonly string[];

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) for "did you mean". */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The allowed name closest to `key`, if it is a near miss (case, a typo, a missing letter). */
export function nearestName(key: string, allowed: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const name of allowed) {
    const distance = name.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return best != null && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof tf.Tensor) return `a tensor of shape [${value.shape.join(', ')}]`;
  return `a ${typeof value}`;
}

function kindMatches(value: unknown, kind: OptionKind): boolean {
  if (Array.isArray(kind)) return kind.includes(value as string);
  switch (kind) {
    case 'boolean':
      return typeof value === 'boolean';
    // NaN and ranges are left to the caller's own check, whose message states the range.
    case 'number':
      return typeof value === 'number';
    case 'number-or-null':
      return value === null || typeof value === 'number';
    case 'integer':
      return Number.isInteger(value);
    case 'integer-or-null':
      return value === null || Number.isInteger(value);
    case 'seed':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'string':
      return typeof value === 'string';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'function':
      return typeof value === 'function';
    case 'tensor':
      return value instanceof tf.Tensor;
    default:
      return true;
  }
}

function kindText(kind: OptionKind): string {
  if (Array.isArray(kind)) return `one of ${kind.map((k) => JSON.stringify(k)).join(', ')}`;
  const texts: Record<string, string> = {
    boolean: 'true or false',
    number: 'a number',
    'number-or-null': 'a number or null',
    'integer-or-null': 'an integer or null',
    integer: 'an integer',
    seed: 'an integer ≥ 0',
    string: 'a string',
    object: 'an object',
    array: 'an array',
    function: 'a function',
    tensor: 'a tf.Tensor',
  };
  return texts[kind as string] ?? String(kind);
}

/**
 * Check an options object against its allowed keys and their types: an unknown or misspelled key
 * (with "did you mean" for near misses and the list of allowed keys) or a value of the wrong type
 * throws, naming the option (after `path`, e.g. 'moe.') and `where`. 'number' checks the type
 * only: the caller checks NaN and the range with a message that states it. Undefined values are
 * skipped (they mean "default");
 * `options` itself may be undefined, but not null or a non-object.
 */
export function checkOptions(
  options: unknown,
  spec: Readonly<Record<string, OptionKind>>,
  where: string,
  path = '',
): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options) || options instanceof tf.Tensor) {
    throw new Error(
      `${where}: ${path ? path.replace(/\.$/, '') : 'options'} must be an object (or left out), got ${describe(options)}`,
    );
  }
  const allowed = Object.keys(spec);
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(spec, key)) {
      const near = nearestName(key, allowed);
      throw new Error(
        `${where}: unknown option ${JSON.stringify(path + key)}${near ? ` — did you mean ${JSON.stringify(path + near)}?` : ''} Allowed: ${allowed.join(', ')}`,
      );
    }
    if (value === undefined) continue;
    const kind = spec[key];
    if (!kindMatches(value, kind))
      throw new Error(`${where}: ${path}${key} must be ${kindText(kind)}, got ${describe(value)}`);
  }
}
