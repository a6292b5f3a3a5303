/**
 * Seeded mini-batches as tensors. Each batch is x [b, height, width, 1] float32 and
 * y [b] int32 (class indices); the caller owns both and must dispose them (or build them inside
 * its own tf.tidy). Tensors are created only when a batch is pulled from the generator, so
 * stopping early leaks nothing.
 *
 * Order: epoch e visits the images in `permutation(count, deriveSeed(seed, e))`, so a run is
 * reproducible from (seed, step) alone and a resumed run sees the same batches.
 */
import * as tf from '@tensorflow/tfjs';
import { checkOptions } from '../ops/check.js';
import { randomShift } from './augment.js';
import type { ImageDataset } from './datasets.js';
import { checkSeed, deriveSeed, permutation } from '../core/random.js';

/** One mini-batch of {@link epochBatches} or {@link batchStream}; the caller disposes `x` and `y`. */
export interface Batch {
  /** Images [b, height, width, 1], float32, normalised. */
  x: tf.Tensor4D;
  /** Labels [b], int32. */
  y: tf.Tensor1D;
  /** Which images of the data set, in batch order. */
  indices: Int32Array;
  /** Epoch this batch belongs to (0-based). */
  epoch: number;
  /** Global step: batches yielded since epoch 0 began (0-based). */
  step: number;
}

/** Tensors for the images at `indices` (the caller disposes x and y). */
export function batchFromIndices(
  ds: ImageDataset,
  indices: Int32Array,
): {
  /** Images [b, height, width, 1], float32. */
  x: tf.Tensor4D;
  /** Labels [b], int32. */
  y: tf.Tensor1D;
} {
  const { images, labels } = gather(ds, indices);
  return toTensors(ds, images, labels);
}

/** x [b, height, width, channels] float32 and y [b] int32 from plain arrays. */
function toTensors(ds: ImageDataset, images: Float32Array, labels: Int32Array): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return {
    x: tf.tensor4d(images, [labels.length, ds.height, ds.width, ds.channels], 'float32'),
    y: tf.tensor1d(labels, 'int32'),
  };
}

/** The images and labels at `indices`, copied out of the data set. */
function gather(ds: ImageDataset, indices: Int32Array): { images: Float32Array; labels: Int32Array } {
  const size = ds.height * ds.width * ds.channels;
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (i < 0 || i >= ds.count) throw new Error(`batch index ${i} at position ${k} is outside [0, ${ds.count})`);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
  }
  return { images, labels };
}

/** The normalised value of a black (0) pixel: what a shifted image's uncovered border shows. */
export function backgroundValue(ds: ImageDataset): number {
  return (0 - ds.normalization.mean) / ds.normalization.std;
}

/** The order in which epoch `epoch` visits the images: a seeded permutation, or 0..n-1. */
export function epochOrder(count: number, epoch: number, seed: number | undefined): Int32Array {
  if (seed == null) {
    const order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    return order;
  }
  return permutation(count, deriveSeed(seed, epoch));
}

/** Options of {@link epochBatches}. */
export interface EpochBatchOptions {
  /** Images per batch, an integer ≥ 1 (the last batch may be smaller). */
  batchSize: number;
  /** Shuffle seed; leave it out for the stored order (evaluation). */
  seed?: number;
  /** Which epoch (selects the shuffle). Default 0. */
  epoch?: number;
  /** Drop the last, smaller batch. Default false (evaluation sees every image once). */
  dropRemainder?: boolean;
}

function checkBatchSize(ds: ImageDataset, batchSize: number, needFull: boolean): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize must be an integer ≥ 1, got ${String(batchSize)}`);
  }
  if (needFull && batchSize > ds.count) {
    throw new Error(
      `batchSize ${batchSize} exceeds the ${ds.count} images of ${ds.name} ${ds.split}; no full batch exists`,
    );
  }
}

/** Number of batches in one epoch. */
export function batchesPerEpoch(count: number, batchSize: number, dropRemainder: boolean): number {
  return dropRemainder ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * One pass over the data set in batches (shuffled when `seed` is given).
 *
 * @throws Error if `batchSize`, `seed` or `epoch` is invalid (the batch size must be an integer ≥ 1).
 */
export function* epochBatches(ds: ImageDataset, options: EpochBatchOptions): Generator<Batch, void, undefined> {
  if (options == null) throw new Error('epochBatches needs options {batchSize}');
  checkOptions(
    options,
    { batchSize: 'number', seed: 'number', epoch: 'number', dropRemainder: 'boolean' },
    'epochBatches',
  );
  const { batchSize } = options;
  const epoch = options.epoch ?? 0;
  const dropRemainder = options.dropRemainder ?? false;
  checkBatchSize(ds, batchSize, dropRemainder);
  if (options.seed != null) checkSeed(options.seed);
  if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`epoch must be an integer ≥ 0, got ${String(epoch)}`);
  const order = epochOrder(ds.count, epoch, options.seed);
  const n = batchesPerEpoch(ds.count, batchSize, dropRemainder);
  for (let j = 0; j < n; j++) {
    const indices = order.slice(j * batchSize, Math.min((j + 1) * batchSize, ds.count));
    const { x, y } = batchFromIndices(ds, indices);
    yield { x, y, indices, epoch, step: epoch * n + j };
  }
}

/** Options of {@link batchStream}. */
export interface BatchStreamOptions {
  /** Images per batch, an integer in [1, count] (every batch is full). */
  batchSize: number;
  /** Seed of the batch order (and of the shifts). */
  seed: number;
  /** Start at this global step (to resume a run). Default 0. */
  startStep?: number;
  /**
   * Random translation of each image by up to this many pixels per axis (lib/data/augment.ts).
   * Default 0: none. The shifts of step s come from deriveSeed(seed, SHIFT_STREAM, s).
   */
  maxShift?: number;
}

/** Sub-stream key of the shift seeds (distinct from the epoch keys of the batch order). */
const SHIFT_STREAM = 0x5348_4654; // 'SHFT'

/**
 * An endless stream of full training batches, epoch after epoch, each epoch reshuffled.
 * The last partial batch of an epoch is dropped, so step s is batch s mod ⌊n/b⌋ of epoch
 * ⌊s / ⌊n/b⌋⌋ and `startStep` resumes exactly.
 *
 * @throws Error if `batchSize` is not an integer in [1, count], `seed` or `startStep` is invalid,
 * or `maxShift` is not an integer in [0, min(height, width)).
 */
export function* batchStream(ds: ImageDataset, options: BatchStreamOptions): Generator<Batch, never, undefined> {
  if (options == null) throw new Error('batchStream needs options {batchSize, seed}');
  checkOptions(
    options,
    { batchSize: 'number', seed: 'number', startStep: 'number', maxShift: 'number' },
    'batchStream',
  );
  const { batchSize, seed } = options;
  checkBatchSize(ds, batchSize, true);
  checkSeed(seed);
  const startStep = options.startStep ?? 0;
  if (!Number.isInteger(startStep) || startStep < 0)
    throw new Error(`startStep must be an integer ≥ 0, got ${String(startStep)}`);
  const maxShift = options.maxShift ?? 0;
  if (!Number.isInteger(maxShift) || maxShift < 0 || maxShift >= Math.min(ds.height, ds.width)) {
    throw new Error(
      `maxShift must be an integer in [0, ${Math.min(ds.height, ds.width)}) pixels, got ${String(maxShift)}`,
    );
  }
  const perEpoch = batchesPerEpoch(ds.count, batchSize, true);
  let epoch = -1;
  let order: Int32Array = new Int32Array(0);
  for (let step = startStep; ; step++) {
    const e = Math.floor(step / perEpoch);
    if (e !== epoch) {
      epoch = e;
      order = epochOrder(ds.count, epoch, seed);
    }
    const j = step - epoch * perEpoch;
    const indices = order.slice(j * batchSize, (j + 1) * batchSize);
    const { images, labels } = gather(ds, indices);
    const pixels =
      maxShift === 0
        ? images
        : randomShift(images, indices.length, ds.height, ds.width, {
            maxShift,
            fill: backgroundValue(ds),
            seed: deriveSeed(seed, SHIFT_STREAM, step),
          }).images;
    yield { ...toTensors(ds, pixels, labels), indices, epoch, step };
  }
}
