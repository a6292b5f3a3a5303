import { expect } from 'chai';
import { deriveSeed, hash32, permutation, SeededRandom } from '../../lib/core/random.js';

describe('data/random: seeded PRNG', function () {
  it('mulberry32 matches an independent implementation', function () {
    // Expected values from a Python transcription of mulberry32 (arbitrary-precision ints masked
    // to 32 bits), run with /usr/bin/python3 3.11. Cross-check: bryc's JS reference gives
    // mulberry32(0)() = 0.26642920868471265 = 1144304738 / 2^32.
    const want: Record<number, number[]> = {
      0: [1144304738, 1416247, 958946056, 627933444],
      1: [2693262067, 11749833, 2265367787, 4213581821],
      42: [2581720956, 1925393290, 3661312704, 2876485805],
      4294967295: [3850105811, 813802916, 3073704848, 4054706436],
    };
    for (const [seed, values] of Object.entries(want)) {
      const rng = new SeededRandom(Number(seed));
      expect(
        values.map(() => rng.nextUint32()),
        `seed ${seed}`,
      ).to.deep.equal(values);
    }
    expect(new SeededRandom(0).next()).to.equal(1144304738 / 4294967296);
  });

  it('hash32 and deriveSeed match the same Python transcription', function () {
    // lowbias32 and deriveSeed transcribed in Python (same run as above).
    expect([0, 1, 2, 0xffffffff].map(hash32)).to.deep.equal([0, 1753845952, 3507691905, 1734902346]);
    expect(deriveSeed(0)).to.equal(33350994);
    expect(deriveSeed(42)).to.equal(2698982912);
    expect(deriveSeed(42, 0)).to.equal(2693760569);
    expect(deriveSeed(42, 1)).to.equal(4033171595);
    expect(deriveSeed(42, 1, 2)).to.equal(4145943673);
  });

  it('permutation(10, 7) matches Fisher–Yates in Python and is a permutation', function () {
    // Python: Fisher–Yates from the top with int(i+1) by rejection, same generator.
    expect(Array.from(permutation(10, 7))).to.deep.equal([0, 4, 8, 1, 7, 3, 5, 6, 9, 2]);
    const p = permutation(1000, 3);
    expect(Array.from(p).sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(permutation(1000, 3))).to.deep.equal(Array.from(p));
    expect(Array.from(permutation(1000, 4))).to.not.deep.equal(Array.from(p));
  });

  it('int(n) is uniform: all 6 orders of 3 items about equally often', function () {
    // 60000 shuffles, 10000 expected per order; the seed is fixed, so this cannot flake. A
    // generator or Fisher–Yates bug (e.g. j = int(n) instead of int(i+1)) skews some orders by
    // more than 20% (the classic biased shuffle gives 4/27 vs 5/27 of 6 orders).
    const rng = new SeededRandom(123);
    const counts = new Map<string, number>();
    for (let t = 0; t < 60000; t++) {
      const key = rng.shuffle([0, 1, 2]).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).to.equal(6);
    for (const [key, c] of counts) expect(Math.abs(c - 10000), key).to.be.below(400); // ~4σ, σ = √(60000·(1/6)(5/6)) ≈ 91
  });

  it('normal() has mean 0 and variance 1', function () {
    const rng = new SeededRandom(9);
    let s = 0;
    let s2 = 0;
    const n = 100000;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      s += z;
      s2 += z * z;
    }
    // Standard errors: mean 1/√n ≈ 0.0032, variance √(2/n) ≈ 0.0045; bounds are ~5σ.
    expect(Math.abs(s / n)).to.be.below(0.016);
    expect(Math.abs(s2 / n - 1)).to.be.below(0.025);
  });

  it('fork(key) depends only on the seed and the key', function () {
    const a = new SeededRandom(5);
    const f1 = a.fork(1).nextUint32();
    a.nextUint32();
    a.nextUint32();
    expect(a.fork(1).nextUint32()).to.equal(f1);
    expect(new SeededRandom(deriveSeed(5, 1)).nextUint32()).to.equal(f1);
    expect(a.fork(2).nextUint32()).to.not.equal(f1);
  });

  it('rejects bad seeds and ranges, naming the value', function () {
    expect(() => new SeededRandom(-1)).to.throw(/seed must be an integer in \[0, 2\^32\), got -1/);
    expect(() => new SeededRandom(1.5)).to.throw(/got 1.5/);
    expect(() => new SeededRandom(2 ** 32)).to.throw(/got 4294967296/);
    expect(() => new SeededRandom(0).int(0)).to.throw(/n must be an integer in \[1, 2\^32\], got 0/);
    expect(() => deriveSeed(1, -3)).to.throw(/key 0 must be an integer in \[0, 2\^32\), got -3/);
    expect(() => permutation(-2, 0)).to.throw(/n must be an integer ≥ 0, got -2/);
  });
});
