import { expect } from 'chai';
import { slotsFromCapacityFactor } from '../../lib/moe/soft-moe.js';
import { forEachBackend, goldenTests } from '../helpers/golden.js';

describe('softMoE (paper eqs. 1–3, §2.3) against the reference vectors: y, logits, dispatch, combine, slot inputs and outputs, gradients of sum(y·r) for x, phi, scale and every expert weight', function () {
  forEachBackend(() => goldenTests('soft_moe'), { webgpu: true });
});

describe('slotsFromCapacityFactor (vmoe compute_capacity, round half to even)', function () {
  it('rounds halves to even like Python', function () {
    // 5 tokens × 1.0 / 2 experts = 2.5 → 2 (Python round), Math.round would give 3.
    expect(slotsFromCapacityFactor(5, 2, 1)).to.equal(2);
    // 7 × 1 / 2 = 3.5 → 4.
    expect(slotsFromCapacityFactor(7, 2, 1)).to.equal(4);
    // 64 × 1 / 16 = 4.
    expect(slotsFromCapacityFactor(64, 16, 1)).to.equal(4);
  });
  it('rejects a capacity that rounds to 0, naming the numbers', function () {
    expect(() => slotsFromCapacityFactor(4, 16, 1)).to.throw(/round\(4 tokens × capacity factor 1 \/ 16 experts\) = 0/);
  });
});
