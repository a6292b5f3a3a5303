/**
 * Plain-JavaScript references for the routers: loops over tokens, choices and experts in
 * float64, written from the paper / vmoe semantics without any tensor op, to check the
 * vectorised library (equivalence tests, as vmoe's moe_test.py runs one helper against two
 * dispatchers). Inputs are nested arrays read back from tensors.
 */

export type Mat = number[][];

const GELU_C = Math.sqrt(2 / Math.PI);
/** GELU, tanh form, as in the golden README. */
export function gelu(v: number): number {
  return 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v ** 3)));
}

export interface NaiveExperts {
  w1: number[][][]; // [n, d, h]
  b1: number[][]; // [n, h]
  w2: number[][][]; // [n, h, d]
  b2: number[][]; // [n, d]
}

/** expert_e(x) = gelu(x·w1[e] + b1[e])·w2[e] + b2[e]. */
export function expert(e: number, x: number[], p: NaiveExperts): number[] {
  const h = p.b1[e].map((b, j) => gelu(b + x.reduce((s, xi, i) => s + xi * p.w1[e][i][j], 0)));
  return p.b2[e].map((b, k) => b + h.reduce((s, hj, j) => s + hj * p.w2[e][j][k], 0));
}

/** Indices sorted by descending value; ties keep the lower index first (a stable sort). */
export function argsortDesc(values: number[]): number[] {
  return values
    .map((v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, i]) => i);
}

export interface NaiveTokensChoice {
  expertIndex: number[][]; // [m, K]
  bufferIndex: number[][]; // [m, K]
  kept: boolean[][]; // [m, K]
  y: Mat; // [m, d]
}

/**
 * Tokens Choice for one group: K-major positions (all 1st choices, then all 2nd, …), tokens in
 * sequence order or, with batch priority, by descending top-1 gate (stable).
 */
export function naiveTokensChoice(
  x: Mat,
  gates: Mat,
  k: number,
  capacity: number,
  batchPriority: boolean,
  p: NaiveExperts,
): NaiveTokensChoice {
  const m = x.length;
  const n = gates[0].length;
  const expertIndex = gates.map((row) => argsortDesc(row).slice(0, k));
  const order = batchPriority ? argsortDesc(gates.map((row, i) => row[expertIndex[i][0]])) : [...Array(m).keys()];
  const counts = new Array(n).fill(0);
  const bufferIndex = gates.map(() => new Array(k).fill(-1));
  for (let choice = 0; choice < k; choice++) {
    for (const token of order) bufferIndex[token][choice] = counts[expertIndex[token][choice]]++;
  }
  const kept = bufferIndex.map((row) => row.map((pos) => pos < capacity));
  const y = x.map((xi, i) => {
    const out = new Array(xi.length).fill(0);
    for (let c = 0; c < k; c++) {
      if (!kept[i][c]) continue;
      const e = expertIndex[i][c];
      expert(e, xi, p).forEach((v, j) => (out[j] += gates[i][e] * v));
    }
    return out;
  });
  return { expertIndex, bufferIndex, kept, y };
}

/** Experts Choice for one group: each expert takes its top-C tokens by gate (ties: lower index). */
export function naiveExpertsChoice(
  x: Mat,
  gates: Mat,
  capacity: number,
  p: NaiveExperts,
): { selected: number[][]; y: Mat } {
  const n = gates[0].length;
  const selected = [...Array(n).keys()].map((e) =>
    argsortDesc(gates.map((row) => row[e]))
      .slice(0, capacity)
      .sort((a, b) => a - b),
  );
  const y = x.map((xi) => new Array(xi.length).fill(0));
  selected.forEach((tokens, e) => {
    for (const i of tokens) expert(e, x[i], p).forEach((v, j) => (y[i][j] += gates[i][e] * v));
  });
  return { selected, y };
}
