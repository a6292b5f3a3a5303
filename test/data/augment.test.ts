/**
 * Random translation (lib/data/augment.ts) against a plain per-pixel loop, and its use by
 * batchStream: deterministic per (seed, step), unchanged labels and order, digits moved intact.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { randomShift } from '../../lib/data/augment.js';
import { backgroundValue, batchStream, type Batch } from '../../lib/data/batches.js';
import { type ImageDataset } from '../../lib/data/datasets.js';
import { loadDataset } from '../../lib/data/load.js';

/** out[y, x] = in[y − dy, x − dx] if inside the image, else fill — one pixel at a time. */
function shiftLoop(img: ArrayLike<number>, h: number, w: number, dy: number, dx: number, fill: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sy = y - dy;
      const sx = x - dx;
      out.push(sy >= 0 && sy < h && sx >= 0 && sx < w ? img[sy * w + sx] : fill);
    }
  }
  return out;
}

function take(gen: Generator<Batch>, n: number): Array<{ x: Float32Array; y: Int32Array; indices: number[] }> {
  const out: Array<{ x: Float32Array; y: Int32Array; indices: number[] }> = [];
  for (const b of gen) {
    out.push({ x: b.x.dataSync() as Float32Array, y: b.y.dataSync() as Int32Array, indices: Array.from(b.indices) });
    b.x.dispose();
    b.y.dispose();
    if (out.length === n) break;
  }
  return out;
}

describe('data/augment: random translation', function () {
  const [count, h, w] = [40, 5, 7];
  const images = Float32Array.from({ length: count * h * w }, (_, i) => ((i * 37) % 101) / 10 - 5);

  it('each image equals the source moved by its own offset, the border filled (against a loop)', function () {
    const { images: out, offsets } = randomShift(images, count, h, w, { maxShift: 2, fill: -0.5, seed: 7 });
    for (let k = 0; k < count; k++) {
      const [dy, dx] = [offsets[2 * k], offsets[2 * k + 1]];
      expect(Math.abs(dy)).to.be.at.most(2);
      expect(Math.abs(dx)).to.be.at.most(2);
      const want = shiftLoop(images.subarray(k * h * w, (k + 1) * h * w), h, w, dy, dx, -0.5);
      expect(
        Array.from(out.subarray(k * h * w, (k + 1) * h * w)),
        `image ${k} shifted by (${dy}, ${dx})`,
      ).to.deep.equal(want);
    }
    // Every offset in {−2, …, 2}² can occur; 40 images must show several distinct ones.
    const distinct = new Set(Array.from({ length: count }, (_, k) => `${offsets[2 * k]},${offsets[2 * k + 1]}`));
    expect(distinct.size).to.be.greaterThan(8);
  });

  it('maxShift 0 is the identity; the same seed gives the same shifts, another seed others', function () {
    const none = randomShift(images, count, h, w, { maxShift: 0, fill: 3, seed: 1 });
    expect(Array.from(none.images)).to.deep.equal(Array.from(images));
    expect(Array.from(none.offsets).every((o) => o === 0)).to.equal(true);
    const a = randomShift(images, count, h, w, { maxShift: 1, fill: 0, seed: 11 });
    const b = randomShift(images, count, h, w, { maxShift: 1, fill: 0, seed: 11 });
    const c = randomShift(images, count, h, w, { maxShift: 1, fill: 0, seed: 12 });
    expect(Array.from(b.offsets)).to.deep.equal(Array.from(a.offsets));
    expect(Array.from(c.offsets)).to.not.deep.equal(Array.from(a.offsets));
  });

  it('rejects bad options with clear messages', function () {
    const o = { maxShift: 1, fill: 0, seed: 0 };
    expect(() => randomShift(images, count, h, w, { ...o, maxShift: -1 })).to.throw(
      /maxShift must be an integer ≥ 0, got -1/,
    );
    expect(() => randomShift(images, count, h, w, { ...o, maxShift: 1.5 })).to.throw(
      /maxShift must be an integer ≥ 0, got 1.5/,
    );
    expect(() => randomShift(images, count, h, w, { ...o, maxShift: 5 })).to.throw(
      /maxShift 5 must be smaller than the image side \(5×7\)/,
    );
    expect(() => randomShift(images, count, h, w, { ...o, fill: NaN })).to.throw(
      /fill must be a finite number, got NaN/,
    );
    expect(() => randomShift(images, count + 1, h, w, o)).to.throw(/expected 41×5×7 = 1435 values, got 1400/);
  });

  describe('in batchStream', function () {
    let ds: ImageDataset;
    before(async function () {
      ds = await loadDataset('tiny-mnist', 'train');
    });

    it('same order and labels as without shifts; reproducible per (seed, step), also from a later start', function () {
      const before = tf.memory().numTensors;
      const plain = take(batchStream(ds, { batchSize: 16, seed: 5 }), 3);
      const shifted = take(batchStream(ds, { batchSize: 16, seed: 5, maxShift: 3 }), 3);
      const again = take(batchStream(ds, { batchSize: 16, seed: 5, maxShift: 3, startStep: 2 }), 1);
      expect(tf.memory().numTensors).to.equal(before);
      for (let s = 0; s < 3; s++) {
        expect(shifted[s].indices).to.deep.equal(plain[s].indices);
        expect(Array.from(shifted[s].y)).to.deep.equal(Array.from(plain[s].y));
      }
      expect(Array.from(shifted[0].x)).to.not.deep.equal(Array.from(plain[0].x));
      expect(Array.from(again[0].x)).to.deep.equal(Array.from(shifted[2].x));
    });

    it('moves each MNIST digit whole: its pixels are only translated (checked by finding the offset)', function () {
      // MNIST digits sit in a 20×20 box centred in 28×28, so a shift of ≤ 3 pixels loses no ink
      // in most images; each shifted image must equal its original under some (dy, dx) with |·| ≤ 3.
      const fill = backgroundValue(ds);
      expect(fill).to.be.closeTo(-0.1306604763 / 0.3081078039, 1e-6); // (0 − mean)/std of MNIST
      const [plain] = take(batchStream(ds, { batchSize: 32, seed: 9 }), 1);
      const [shifted] = take(batchStream(ds, { batchSize: 32, seed: 9, maxShift: 3 }), 1);
      const size = 28 * 28;
      let moved = 0;
      for (let k = 0; k < 32; k++) {
        const src = plain.x.subarray(k * size, (k + 1) * size);
        const got = Array.from(shifted.x.subarray(k * size, (k + 1) * size));
        const matches: string[] = [];
        for (let dy = -3; dy <= 3; dy++) {
          for (let dx = -3; dx <= 3; dx++) {
            const want = shiftLoop(src, 28, 28, dy, dx, fill);
            if (want.every((v, i) => Math.abs(v - got[i]) < 1e-6)) matches.push(`${dy},${dx}`);
          }
        }
        expect(matches.length, `image ${k} is a translate of its original`).to.be.greaterThan(0);
        if (!matches.includes('0,0')) moved++;
      }
      expect(moved, 'most images are actually moved').to.be.greaterThan(20);
    });

    it('rejects a shift as large as the image', function () {
      expect(() => batchStream(ds, { batchSize: 4, seed: 0, maxShift: 28 }).next()).to.throw(
        /maxShift must be an integer in \[0, 28\) pixels, got 28/,
      );
    });
  });
});
