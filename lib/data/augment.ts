/**
 * Random translation, the one augmentation the workbook uses: each training image is moved by
 * (dy, dx), each drawn uniformly from {−s, …, s}, and the uncovered border is filled with the
 * background (the normalised value of a black pixel). This is the "pad by s, crop back at a
 * random offset" of CIFAR/MNIST training recipes (e.g. He et al. 2016 §4.2 pad 4 and crop);
 * vmoe's ImageNet pipelines use Inception crops and flips instead, which do not suit 28×28
 * digits (a flipped 2 is not a 2).
 *
 * Departure from the paper: the paper's models train for hundreds of thousands of updates on
 * JFT-4B and need no augmentation; our small ViTs see MNIST about ten times in 15 minutes and
 * overfit (train loss ≪ validation loss), which a few pixels of translation curbs.
 *
 * Deterministic: the shifts of a batch are drawn from `SeededRandom(seed)`, and the trainer
 * derives that seed from (run seed, step), so a resumed run sees the same shifted images.
 */
import { SeededRandom } from '../core/random.js';

/** Options of {@link randomShift}. */
export interface ShiftOptions {
  /** Largest shift in pixels along each axis, an integer ≥ 0 (0 leaves the images unchanged). */
  maxShift: number;
  /** Value written where no source pixel lands (the background). */
  fill: number;
  /** Seed of the shifts. */
  seed: number;
}

/**
 * Shift each of the `count` images [count, height, width] (row-major, one channel) by its own
 * random offset; returns a new array and the offsets drawn ([dy, dx] per image).
 */
export function randomShift(
  images: Float32Array,
  count: number,
  height: number,
  width: number,
  options: ShiftOptions,
): {
  /** The shifted images [count, height, width], a new array. */
  images: Float32Array;
  /** The shift of each image, [count, 2] as [dy, dx]. */
  offsets: Int32Array;
} {
  const { maxShift, fill, seed } = options;
  if (!Number.isInteger(maxShift) || maxShift < 0)
    throw new Error(`randomShift: maxShift must be an integer ≥ 0, got ${String(maxShift)}`);
  if (maxShift >= Math.min(height, width)) {
    throw new Error(`randomShift: maxShift ${maxShift} must be smaller than the image side (${height}×${width})`);
  }
  if (!Number.isFinite(fill)) throw new Error(`randomShift: fill must be a finite number, got ${String(fill)}`);
  if (images.length !== count * height * width) {
    throw new Error(
      `randomShift: expected ${count}×${height}×${width} = ${count * height * width} values, got ${images.length}`,
    );
  }
  const rng = new SeededRandom(seed);
  const out = new Float32Array(images.length);
  const offsets = new Int32Array(2 * count);
  const size = height * width;
  for (let k = 0; k < count; k++) {
    const dy = rng.int(2 * maxShift + 1) - maxShift;
    const dx = rng.int(2 * maxShift + 1) - maxShift;
    offsets[2 * k] = dy;
    offsets[2 * k + 1] = dx;
    const base = k * size;
    // out[y, x] = in[y − dy, x − dx] where that pixel exists, else the background.
    for (let y = 0; y < height; y++) {
      const sy = y - dy;
      const row = base + y * width;
      if (sy < 0 || sy >= height) {
        out.fill(fill, row, row + width);
        continue;
      }
      const x0 = Math.max(0, dx);
      const x1 = Math.min(width, width + dx);
      out.fill(fill, row, row + x0);
      out.set(images.subarray(base + sy * width + x0 - dx, base + sy * width + x1 - dx), row + x0);
      out.fill(fill, row + x1, row + width);
    }
  }
  return { images: out, offsets };
}
