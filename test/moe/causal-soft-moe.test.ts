/**
 * Causally masked Soft MoE (lib/moe/causal-soft-moe.ts). No golden vectors: the expected values
 * come from a plain float64 loop over tokens and slots written below from the file's equations
 * (masked eqs. 1–3 with the §2.3 normalisation), and from properties that hold exactly by
 * construction (causality, zero weights, zero gradients). Every causality test has a control:
 * the unmasked `softMoE` on the same input must fail it, so the test can fail.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { causalMasks, causalSoftMoE, evenSlotPositions } from '../../lib/moe/causal-soft-moe.js';
import { softMoE, type SoftMoEParams } from '../../lib/moe/soft-moe.js';
import { expectClose, forEachBackend } from '../helpers/golden.js';

// ---------------------------------------------------------------------------------------------
// Plain float64 reference

const GELU_C = Math.sqrt(2 / Math.PI);
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v ** 3)));

interface Plain {
  x: number[][]; // one sequence [m, d]
  phi: number[][][]; // [d, n, p]
  scale: number;
  w1: number[][][]; // [n, d, h]
  b1: number[][];
  w2: number[][][]; // [n, h, d]
  b2: number[][];
}

/** Masked Soft MoE on one sequence, in float64: y [m, d], dispatch [m, S], combine [m, S]. */
function plainCausalSoftMoE(
  P: Plain,
  positions: number[],
): { y: number[][]; dispatch: number[][]; combine: number[][] } {
  const m = P.x.length;
  const d = P.x[0].length;
  const n = P.phi[0].length;
  const p = P.phi[0][0].length;
  const S = n * p;
  const norm = (v: number[]) => {
    const r = 1 / Math.sqrt(v.reduce((a, b) => a + b * b, 0) + 1e-6);
    return v.map((u) => u * r);
  };
  const xn = P.x.map(norm);
  // Φ column of slot s = (e, j), normalised over d, times scale.
  const phiCols = Array.from({ length: S }, (_, s) =>
    norm(Array.from({ length: d }, (_, k) => P.phi[k][Math.floor(s / p)][s % p])).map((v) => v * P.scale),
  );
  const logits = xn.map((xi) => phiCols.map((col) => col.reduce((a, c, k) => a + c * xi[k], 0))); // [m, S]
  // Dispatch: per slot, softmax over tokens i ≤ τ(s).
  const dispatch = Array.from({ length: m }, () => new Array<number>(S).fill(0));
  for (let s = 0; s < S; s++) {
    const allowed = [...Array(positions[s] + 1).keys()];
    const mx = Math.max(...allowed.map((i) => logits[i][s]));
    const z = allowed.reduce((a, i) => a + Math.exp(logits[i][s] - mx), 0);
    for (const i of allowed) dispatch[i][s] = Math.exp(logits[i][s] - mx) / z;
  }
  // Combine: per token, softmax over slots with τ(s) ≤ t.
  const combine = Array.from({ length: m }, (_, t) => {
    const allowed = [...Array(S).keys()].filter((s) => positions[s] <= t);
    const mx = Math.max(...allowed.map((s) => logits[t][s]));
    const z = allowed.reduce((a, s) => a + Math.exp(logits[t][s] - mx), 0);
    const row = new Array<number>(S).fill(0);
    for (const s of allowed) row[s] = Math.exp(logits[t][s] - mx) / z;
    return row;
  });
  const slotOut = Array.from({ length: S }, (_, s) => {
    const e = Math.floor(s / p);
    const xin = Array.from({ length: d }, (_, k) => P.x.reduce((a, xi, i) => a + dispatch[i][s] * xi[k], 0));
    const hid = P.b1[e].map((b, j) => gelu(b + xin.reduce((a, v, k) => a + v * P.w1[e][k][j], 0)));
    return P.b2[e].map((b, k) => b + hid.reduce((a, v, j) => a + v * P.w2[e][j][k], 0));
  });
  const y = combine.map((row) =>
    Array.from({ length: d }, (_, k) => row.reduce((a, c, s) => a + c * slotOut[s][k], 0)),
  );
  return { y, dispatch, combine };
}

// ---------------------------------------------------------------------------------------------
// Fixtures

function randomParams(d: number, n: number, p: number, h: number, seed: number): SoftMoEParams {
  return tf.tidy(() => ({
    phi: tf.randomNormal([d, n, p], 0, 1, 'float32', seed) as tf.Tensor3D,
    scale: tf.scalar(2.5), // > 1 so the softmaxes are not nearly uniform
    w1: tf.randomNormal([n, d, h], 0, 1 / Math.sqrt(d), 'float32', seed + 1) as tf.Tensor3D,
    b1: tf.randomNormal([n, h], 0, 0.1, 'float32', seed + 2) as tf.Tensor2D,
    w2: tf.randomNormal([n, h, d], 0, 1 / Math.sqrt(h), 'float32', seed + 3) as tf.Tensor3D,
    b2: tf.randomNormal([n, d], 0, 0.1, 'float32', seed + 4) as tf.Tensor2D,
  }));
}

function plainOf(x: tf.Tensor3D, P: SoftMoEParams, group: number): Plain {
  return {
    x: (x.arraySync() as number[][][])[group],
    phi: P.phi.arraySync() as number[][][],
    scale: P.scale.arraySync() as number,
    w1: P.w1.arraySync() as number[][][],
    b1: P.b1.arraySync() as number[][],
    w2: P.w2.arraySync() as number[][][],
    b2: P.b2.arraySync() as number[][],
  };
}

function dispose(P: object): void {
  for (const t of Object.values(P)) if (t instanceof tf.Tensor) t.dispose();
}

/** x with every token after position t replaced by fresh random values. */
function perturbAfter(x: tf.Tensor3D, t: number, seed: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [g, m, d] = x.shape;
    const keep = tf.tensor1d(Array.from({ length: m }, (_, i) => (i <= t ? 1 : 0))).reshape([1, m, 1]);
    const noise = tf.randomNormal([g, m, d], 0, 3, 'float32', seed);
    return tf.add(tf.mul(x, keep), tf.mul(noise, tf.sub(1, keep))) as tf.Tensor3D;
  });
}

/** max |a − b| over tokens 0…t of every sequence. */
function maxDiffUpTo(a: tf.Tensor3D, b: tf.Tensor3D, t: number): number {
  return tf.tidy(() => {
    const [g, , d] = a.shape;
    return tf.max(tf.abs(tf.sub(a.slice([0, 0, 0], [g, t + 1, d]), b.slice([0, 0, 0], [g, t + 1, d])))).dataSync()[0];
  });
}

// ---------------------------------------------------------------------------------------------

describe('evenSlotPositions and causalMasks', function () {
  it('spreads slots evenly, slot 0 at position 0', function () {
    // τ(s) = ⌊s·m/S⌋: m = 8, S = 4 → 0, 2, 4, 6; m = 4, S = 8 → 0,0,1,1,2,2,3,3 (by hand).
    expect(evenSlotPositions(8, 4)).to.deep.equal([0, 2, 4, 6]);
    expect(evenSlotPositions(4, 8)).to.deep.equal([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(evenSlotPositions(5, 1)).to.deep.equal([0]);
  });

  it('builds the dispatch (i ≤ τ) and combine (τ ≤ t) masks', function () {
    // Positions [0, 2] over m = 3 tokens, by hand: slot 0 reads token 0; slot 1 reads 0, 1, 2.
    // Token 0 and 1 read slot 0 only; token 2 reads both.
    const { dispatchMask, combineMask } = causalMasks([0, 2], 3);
    expect(dispatchMask).to.deep.equal([
      [1, 0, 0],
      [1, 1, 1],
    ]);
    expect(combineMask).to.deep.equal([
      [1, 0],
      [1, 0],
      [1, 1],
    ]);
  });

  it('rejects bad positions with a message naming them', function () {
    expect(() => causalMasks([1, 2], 3)).to.throw(/include 0.*smallest position 1/);
    expect(() => causalMasks([0, 3], 3)).to.throw(/slotPositions\[1\].*\[0, 2\].*got 3/);
    expect(() => causalMasks([0, 1.5], 3)).to.throw(/slotPositions\[1\].*got 1.5/);
  });
});

describe('causalSoftMoE (Soft MoE with causal masks; paper §6 limitation)', function () {
  forEachBackend(() => {
    const [g, m, d, n, p, h] = [2, 7, 5, 3, 2, 6];

    it('output at t is unchanged when tokens after t change; the unmasked layer fails this', function () {
      const P = randomParams(d, n, p, h, 11);
      const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 1) as tf.Tensor3D;
      const base = causalSoftMoE(x, P).y;
      const unmaskedBase = softMoE(x, P).y;
      for (let t = 0; t < m - 1; t++) {
        const x2 = perturbAfter(x, t, 100 + t);
        const y2 = causalSoftMoE(x2, P).y;
        // Exactly equal: masked weights are exact zeros (exp underflow), so the sums are the same.
        expect(maxDiffUpTo(base, y2, t), `causal, tokens ≤ ${t}`).to.equal(0);
        // Control: the unmasked Soft MoE lets every token see the perturbed future.
        const u2 = softMoE(x2, P).y;
        expect(maxDiffUpTo(unmaskedBase, u2, t), `unmasked, tokens ≤ ${t}`).to.be.greaterThan(1e-4);
        // And the causal output after t does change (the mask is not simply cutting everything).
        const after = tf.tidy(
          () =>
            tf
              .max(
                tf.abs(
                  tf.sub(base.slice([0, t + 1, 0], [g, m - t - 1, d]), y2.slice([0, t + 1, 0], [g, m - t - 1, d])),
                ),
              )
              .dataSync()[0],
        );
        expect(after, `causal, tokens > ${t}`).to.be.greaterThan(1e-4);
        tf.dispose([x2, y2, u2]);
      }
      tf.dispose([x, base, unmaskedBase]);
      dispose(P);
    });

    it('∂y_t/∂x_j is exactly zero for j > t and non-zero for j ≤ t', function () {
      const P = randomParams(d, n, p, h, 21);
      const x = tf.randomNormal([1, m, d], 0, 1, 'float32', 2) as tf.Tensor3D;
      const r = tf.randomNormal([1, 1, d], 0, 1, 'float32', 3);
      for (const [label, layer] of [
        ['causal', (xx: tf.Tensor3D) => causalSoftMoE(xx, P).y],
        ['unmasked', (xx: tf.Tensor3D) => softMoE(xx, P).y],
      ] as const) {
        for (let t = 0; t < m; t++) {
          const gx = tf.grad((xx: tf.Tensor) =>
            tf.sum(tf.mul(layer(xx as tf.Tensor3D).slice([0, t, 0], [1, 1, d]), r)),
          )(x);
          const perToken = tf.tidy(() => tf.sum(tf.abs(gx), -1).dataSync());
          gx.dispose();
          for (let j = 0; j < m; j++) {
            if (label === 'causal' && j > t) expect(perToken[j], `causal ∂y_${t}/∂x_${j}`).to.equal(0);
            else expect(perToken[j], `${label} ∂y_${t}/∂x_${j}`).to.be.greaterThan(0);
          }
        }
      }
      tf.dispose([x, r]);
      dispose(P);
    });

    it('dispatch and combine are zero where masked and sum to 1 over what is allowed', async function () {
      const P = randomParams(d, n, p, h, 31);
      const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 4) as tf.Tensor3D;
      const positions = evenSlotPositions(m, n * p);
      const out = causalSoftMoE(x, P, { returnWeights: true });
      const D = (await out.dispatch!.reshape([g, m, n * p]).array()) as number[][][];
      const C = (await out.combine!.reshape([g, m, n * p]).array()) as number[][][];
      for (let b = 0; b < g; b++) {
        for (let s = 0; s < n * p; s++) {
          let sum = 0;
          for (let i = 0; i < m; i++) {
            if (i > positions[s]) expect(D[b][i][s], `dispatch slot ${s} token ${i}`).to.equal(0);
            else expect(D[b][i][s]).to.be.greaterThan(0);
            sum += D[b][i][s];
          }
          expect(sum).to.be.closeTo(1, 1e-5);
        }
        for (let t = 0; t < m; t++) {
          const row = C[b][t];
          row.forEach((c, s) =>
            positions[s] > t ? expect(c, `combine token ${t} slot ${s}`).to.equal(0) : expect(c).to.be.greaterThan(0),
          );
          expect(row.reduce((a, c) => a + c, 0)).to.be.closeTo(1, 1e-5);
        }
      }
      tf.dispose([x, out.y, out.logits!, out.dispatch!, out.combine!, out.slotInputs!, out.slotOutputs!]);
      dispose(P);
    });

    for (const [label, positions] of [
      ['even positions', undefined],
      ['custom positions', [3, 0, 6, 0, 2, 5]],
    ] as const) {
      it(`matches a plain float64 loop over tokens and slots (${label})`, async function () {
        const P = randomParams(d, n, p, h, 41);
        const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 5) as tf.Tensor3D;
        const taus = positions ? [...positions] : evenSlotPositions(m, n * p);
        const out = causalSoftMoE(x, P, { returnWeights: true, slotPositions: taus });
        const y = (await out.y.array()) as number[][][];
        const D = (await out.dispatch!.reshape([g, m, n * p]).array()) as number[][][];
        const C = (await out.combine!.reshape([g, m, n * p]).array()) as number[][][];
        for (let b = 0; b < g; b++) {
          const want = plainCausalSoftMoE(plainOf(x, P, b), taus);
          expectClose(y[b].flat(), want.y.flat(), `y[${b}]`);
          expectClose(D[b].flat(), want.dispatch.flat(), `dispatch[${b}]`);
          expectClose(C[b].flat(), want.combine.flat(), `combine[${b}]`);
        }
        tf.dispose([x, out.y, out.logits!, out.dispatch!, out.combine!, out.slotInputs!, out.slotOutputs!]);
        dispose(P);
      });
    }

    it('gradients match central differences of the float64 loop (x, Φ, scale, w1)', function () {
      const [mm, dd, nn, pp, hh] = [5, 4, 2, 2, 3];
      const P = randomParams(dd, nn, pp, hh, 51);
      const x = tf.randomNormal([1, mm, dd], 0, 1, 'float32', 6) as tf.Tensor3D;
      const r = tf.randomNormal([1, mm, dd], 0, 1, 'float32', 7);
      const rv = (r.arraySync() as number[][][])[0];
      const taus = evenSlotPositions(mm, nn * pp);
      const loss = (Q: Plain) =>
        plainCausalSoftMoE(Q, taus).y.reduce((a, row, t) => a + row.reduce((b, v, k) => b + v * rv[t][k], 0), 0);
      const [gx, gphi, gscale, gw1] = tf.grads((xx: tf.Tensor, phi: tf.Tensor, scale: tf.Tensor, w1: tf.Tensor) =>
        tf.sum(
          tf.mul(
            causalSoftMoE(xx as tf.Tensor3D, {
              ...P,
              phi: phi as tf.Tensor3D,
              scale: scale as tf.Scalar,
              w1: w1 as tf.Tensor3D,
            }).y,
            r,
          ),
        ),
      )([x, P.phi, P.scale, P.w1]);
      const eps = 1e-6;
      const base = plainOf(x, P, 0);
      const central = (bump: (Q: Plain, delta: number) => void) => {
        const plus = structuredClone(base);
        const minus = structuredClone(base);
        bump(plus, eps);
        bump(minus, -eps);
        return (loss(plus) - loss(minus)) / (2 * eps);
      };
      const gxv = (gx.arraySync() as number[][][])[0];
      const gphiv = gphi.arraySync() as number[][][];
      const gw1v = gw1.arraySync() as number[][][];
      const got: number[] = [];
      const want: number[] = [];
      for (let i = 0; i < mm; i++)
        for (let k = 0; k < dd; k++) {
          got.push(gxv[i][k]);
          want.push(central((Q, e) => (Q.x[i][k] += e)));
        }
      for (let k = 0; k < dd; k++)
        for (let e = 0; e < nn; e++)
          for (let j = 0; j < pp; j++) {
            got.push(gphiv[k][e][j]);
            want.push(central((Q, delta) => (Q.phi[k][e][j] += delta)));
          }
      got.push(gscale.dataSync()[0]);
      want.push(central((Q, e) => (Q.scale += e)));
      for (let e = 0; e < nn; e++)
        for (let k = 0; k < dd; k++)
          for (let j = 0; j < hh; j++) {
            got.push(gw1v[e][k][j]);
            want.push(central((Q, delta) => (Q.w1[e][k][j] += delta)));
          }
      // Some gradient entries are genuinely non-zero (the check is not vacuous).
      expect(Math.max(...want.map(Math.abs))).to.be.greaterThan(0.1);
      expectClose(got, want, 'gradients vs central differences');
      tf.dispose([x, r, gx, gphi, gscale, gw1]);
      dispose(P);
    });

    it('Forward and training step: no memory leak', function () {
      const P = randomParams(d, n, p, h, 61);
      const x = tf.randomNormal([g, m, d], 0, 1, 'float32', 8) as tf.Tensor3D;
      const step = () => {
        causalSoftMoE(x, P).y.dispose();
        const grads = tf.grads((phi: tf.Tensor, w1: tf.Tensor) =>
          tf.sum(causalSoftMoE(x, { ...P, phi: phi as tf.Tensor3D, w1: w1 as tf.Tensor3D }).y),
        )([P.phi, P.w1]);
        tf.dispose(grads);
      };
      step(); // warm-up
      const before = tf.memory().numTensors;
      step();
      expect(tf.memory().numTensors).to.equal(before);
      x.dispose();
      dispose(P);
    });

    it('rejects slot positions of the wrong length, with the expected count', function () {
      const P = randomParams(d, n, p, h, 71);
      const x = tf.zeros([1, m, d]) as tf.Tensor3D;
      expect(() => causalSoftMoE(x, P, { slotPositions: [0, 1] })).to.throw(/n·p = 6 integers, got 2 values/);
      x.dispose();
      dispose(P);
    });
  });
});
