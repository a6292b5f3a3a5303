/**
 * Permutations of axes: the inverse, and the fewest axes that describe the same data movement
 * (used by the transpose op and by fast transpose kernels to pick a 2-D or block transpose).
 */

/** The inverse of a permutation. */
export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

/**
 * Reduce (shape, perm) to the fewest axes that describe the same data movement: drop axes of
 * size 1, then merge runs of axes that are adjacent in the input and stay adjacent, in order,
 * in the output. Returns the reduced input shape and permutation.
 */
export function reducePermutation(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => shape[axis] !== 1);
  // Runs of consecutive input axes in output order.
  const runs: number[][] = [];
  for (const axis of kept) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] + 1 === axis) last.push(axis);
    else runs.push([axis]);
  }
  // Order runs by their first input axis to get the reduced input shape.
  const byInput = [...runs].sort((r1, r2) => r1[0] - r2[0]);
  const reducedShape = byInput.map((run) => run.reduce((size, axis) => size * shape[axis], 1));
  const reducedPerm = runs.map((run) => byInput.indexOf(run));
  return { shape: reducedShape, perm: reducedPerm };
}
