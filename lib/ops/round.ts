/**
 * Python's `round()`: round half to even (2.5 → 2, 3.5 → 4), unlike JavaScript's `Math.round`
 * (2.5 → 3). vmoe computes capacities with Python's `round` (`vmoe/moe.py`, `compute_capacity`),
 * so the capacity of a router with `ceilOrRound: 'round'` depends on this choice.
 */
export function roundHalfToEven(x: number): number {
  if (!Number.isFinite(x)) throw new Error(`roundHalfToEven expects a finite number, got ${x}`);
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
