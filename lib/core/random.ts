/**
 * Seeded pseudo-random numbers for everything the library shuffles or samples in JavaScript
 * (data order, validation splits, seeds handed to tfjs initialisers). Same seed → same numbers
 * on every machine and backend: only 32-bit integer arithmetic (Math.imul, >>>), no Math.random.
 *
 * - Generator: mulberry32 (Tommy Ettinger, public domain), 32 bits of state, period 2^32.
 *   Plenty for shuffling 60k images; not for cryptography.
 * - Seed derivation: the "lowbias32" integer hash from Chris Wellons' hash-prospector
 *   (constants 0x7feb352d, 0x846ca68b), so `deriveSeed(seed, epoch)` gives well-mixed,
 *   independent-looking streams for neighbouring seeds and epochs.
 */

const TWO_POW_32 = 4294967296;

/**
 * Throw unless `seed` is an integer in [0, 2^32).
 *
 * @throws Error if `seed` is not an integer in [0, 2^32).
 */
export function checkSeed(seed: number, name = 'seed'): void {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= TWO_POW_32) {
    throw new Error(`${name} must be an integer in [0, 2^32), got ${String(seed)}`);
  }
}

/** lowbias32 (hash-prospector): a bijective 32-bit mix; returns an unsigned 32-bit integer. */
export function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
}

/**
 * A new seed from a seed and integer keys, e.g. `deriveSeed(seed, epoch)` for the shuffle of one
 * epoch, or `deriveSeed(seed, 7)` for a named stream. Each key is folded in through hash32.
 *
 * @throws Error if `seed` or a key is not an integer in [0, 2^32).
 */
export function deriveSeed(seed: number, ...keys: number[]): number {
  checkSeed(seed);
  let h = hash32(seed ^ 0x9e3779b9);
  keys.forEach((key, i) => {
    if (!Number.isInteger(key) || key < 0 || key >= TWO_POW_32) {
      throw new Error(`deriveSeed key ${i} must be an integer in [0, 2^32), got ${String(key)}`);
    }
    h = hash32((h ^ hash32(key)) + 0x9e3779b9);
  });
  return h;
}

/** A seeded generator (mulberry32). Holds 32 bits of state; `fork` makes independent streams. */
export class SeededRandom {
  /** The seed this generator started from. */
  readonly seed: number;
  private state: number;

  /**
   * @param seed an integer in [0, 2^32); the state starts at it.
   * @throws Error if `seed` is not such an integer.
   */
  constructor(seed: number) {
    checkSeed(seed);
    this.seed = seed;
    this.state = seed >>> 0;
  }

  /** Next unsigned 32-bit integer (mulberry32, reference: github.com/bryc/code, PRNGs.md). */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n), exactly uniform (rejection of the top partial block). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new Error(`SeededRandom.int: n must be an integer in [1, 2^32], got ${String(n)}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n); // largest multiple of n ≤ 2^32
    let r = this.nextUint32();
    while (r >= limit) r = this.nextUint32();
    return r % n;
  }

  /** Standard normal sample (Box–Muller, cosine branch; one normal per two uniforms). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log(0) impossible
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Shuffle in place (Fisher–Yates, Knuth TAOCP vol. 2 Algorithm P); returns the array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A new generator for sub-stream `key`: `deriveSeed(seed, key)`, however far this one has run. */
  fork(key: number): SeededRandom {
    return new SeededRandom(deriveSeed(this.seed, key));
  }
}

/**
 * A seeded random permutation of 0..n-1 (Fisher–Yates over mulberry32).
 *
 * @throws Error if `n` is not an integer ≥ 0 or `seed` is not a valid seed.
 */
export function permutation(n: number, seed: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`permutation: n must be an integer ≥ 0, got ${String(n)}`);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return new SeededRandom(seed).shuffle(order);
}

/**
 * The seed of one variable's initialiser: `deriveSeed(seed, key)` (a hash, so the keys of one
 * layer never collide with those of a neighbouring layer, as `seed + 1` did), never 0: tfjs
 * 4.22's `randomNormal`, `randomUniform` and `truncatedNormal` treat a seed of 0 as "no seed"
 * (`seed ? seed : Math.random()` in `rand_util.js`) and would draw different weights on every run.
 */
export function initSeed(seed: number, key: number): number {
  return deriveSeed(seed, key) || 1;
}

/**
 * A deterministic stream of seeds for the layers of one model: the i-th `next()` is
 * `initSeed(base, i)`. Each layer takes ONE seed and derives the seeds of its own variables from it
 * with `initSeed(seed, key)`, so nothing outside a layer needs to know how many draws it makes,
 * and adding a layer at the end does not change the others.
 */
export class SeedStream {
  private counter = 0;
  /**
   * @param base the model's seed, an integer in [0, 2^32).
   * @throws Error if `base` is not such an integer.
   */
  constructor(private readonly base: number) {
    checkSeed(base, 'SeedStream base');
  }
  /** The next layer's seed: `initSeed(base, i)` for the i-th call (1, 2, …); never 0. */
  next(): number {
    return initSeed(this.base, ++this.counter);
  }
}
