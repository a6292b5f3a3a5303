/** Seeded random inputs and parameters for the router tests (no expected values come from here). */
import * as tf from '@tensorflow/tfjs';
import type { RouterParams } from '../../lib/moe/gating.js';
import type { NaiveExperts } from './naive.js';

/** Router + expert parameters with distinct experts: wg [d, n], w1 [n, d, h], … (scale ~1/√fan-in). */
export function randomRouterParams(d: number, n: number, h: number, seed: number, routerScale = 1): RouterParams {
  return tf.tidy(() => ({
    wg: tf.randomNormal([d, n], 0, routerScale / Math.sqrt(d), 'float32', seed) as tf.Tensor2D,
    w1: tf.randomNormal([n, d, h], 0, 1 / Math.sqrt(d), 'float32', seed + 1) as tf.Tensor3D,
    b1: tf.randomNormal([n, h], 0, 0.1, 'float32', seed + 2) as tf.Tensor2D,
    w2: tf.randomNormal([n, h, d], 0, 1 / Math.sqrt(h), 'float32', seed + 3) as tf.Tensor3D,
    b2: tf.randomNormal([n, d], 0, 0.1, 'float32', seed + 4) as tf.Tensor2D,
  }));
}

export function disposeParams(p: object): void {
  for (const t of Object.values(p)) if (t instanceof tf.Tensor) t.dispose();
}

/** The expert weights as nested arrays for the naive references. */
export function naiveExperts(p: RouterParams): NaiveExperts {
  return {
    w1: p.w1.arraySync() as number[][][],
    b1: p.b1.arraySync() as number[][],
    w2: p.w2.arraySync() as number[][][],
    b2: p.b2.arraySync() as number[][],
  };
}
