/**
 * The image classification data sets in data/: MNIST, Fashion-MNIST, and tiny slices of both
 * for fast tests: their sizes, classes and normalisation constants, subsets and validation
 * splits. `loadDataset` (./load.ts, Node only) reads the gzipped IDX files, verifies them
 * against data/manifest.json, checks the counts and label range, and normalises the pixels.
 *
 * Normalisation ('standard', the default): x = (byte / 255 − mean) / std, where mean and std are
 * the mean and standard deviation of all pixels (scaled to [0, 1]) of the data set's full
 * training split — the same constants for its train, validation and test splits and for its
 * tiny slice, so a model sees one input distribution. This is the usual MNIST recipe
 * (e.g. PyTorch's examples/mnist uses 0.1307 / 0.3081). 'unit' gives byte / 255 in [0, 1].
 * The paper's ViTs (§3, vmoe input pipeline) map pixels to [−1, 1] instead; any fixed affine
 * map works for training from scratch, and per-data-set standardisation is the MNIST habit.
 */
import { checkOptions } from '../ops/check.js';
import { checkSeed, permutation } from '../core/random.js';

/**
 * The data sets in data/: full MNIST and Fashion-MNIST and their tiny slices (512 train / 256 test images).
 */
export type DatasetName = 'mnist' | 'fashion-mnist' | 'tiny-mnist' | 'tiny-fashion-mnist';
/**
 * A stored split: the 60 000 training or 10 000 test images (validation is carved from 'train', {@link splitValidation}).
 */
export type DatasetSplit = 'train' | 'test';
/** Every {@link DatasetName}. */
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist', 'tiny-mnist', 'tiny-fashion-mnist'];

/** Static facts about one data set. */
export interface DatasetInfo {
  /** The data set's name (key of {@link DATASETS}). */
  name: DatasetName;
  /** Folder under data/ holding the four gzipped IDX files. */
  dir: string;
  /** Human-readable title. */
  title: string;
  /** Image height in pixels (28). */
  height: number;
  /** Image width in pixels (28). */
  width: number;
  /** Name of each class, indexed by label. */
  classNames: readonly string[];
  /** Number of images in each split (checked on load). */
  counts: Record<DatasetSplit, number>;
  /** Mean and std of the pixels (byte / 255) of the full training split; see the file header. */
  mean: number;
  /** Std of the pixels (byte / 255) of the full training split. */
  std: number;
}

const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
// Label names from Zalando's Fashion-MNIST README ("Labels" table).
const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

// Pixel statistics of the full training splits (60000 × 784 bytes / 255, float64), computed with
// numpy from data/{mnist,fashion-mnist}/train-images-idx3-ubyte.gz and re-derived in
// test/data/datasets.test.ts from the decoded bytes.
const MNIST_MEAN = 0.1306604763;
const MNIST_STD = 0.3081078039;
const FASHION_MEAN = 0.286040597;
const FASHION_STD = 0.3530242445;

/** Sizes of the tiny slices: the first images of each split (see data/README.md). */
export const TINY_COUNTS: Record<DatasetSplit, number> = { train: 512, test: 256 };

/** Static facts of every data set in data/ (sizes, classes, pixel mean and std), by name. */
export const DATASETS: Record<DatasetName, DatasetInfo> = {
  mnist: {
    name: 'mnist',
    dir: 'mnist',
    title: 'MNIST handwritten digits',
    height: 28,
    width: 28,
    classNames: MNIST_CLASSES,
    counts: { train: 60000, test: 10000 },
    mean: MNIST_MEAN,
    std: MNIST_STD,
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    dir: 'fashion-mnist',
    title: 'Fashion-MNIST (Zalando article images)',
    height: 28,
    width: 28,
    classNames: FASHION_CLASSES,
    counts: { train: 60000, test: 10000 },
    mean: FASHION_MEAN,
    std: FASHION_STD,
  },
  'tiny-mnist': {
    name: 'tiny-mnist',
    dir: 'tiny/mnist',
    title: 'MNIST, tiny slice for tests',
    height: 28,
    width: 28,
    classNames: MNIST_CLASSES,
    counts: TINY_COUNTS,
    mean: MNIST_MEAN,
    std: MNIST_STD,
  },
  'tiny-fashion-mnist': {
    name: 'tiny-fashion-mnist',
    dir: 'tiny/fashion-mnist',
    title: 'Fashion-MNIST, tiny slice for tests',
    height: 28,
    width: 28,
    classNames: FASHION_CLASSES,
    counts: TINY_COUNTS,
    mean: FASHION_MEAN,
    std: FASHION_STD,
  },
};

/**
 * Resolve a data set name; 'tiny' is short for 'tiny-mnist'.
 *
 * @throws Error naming the known data sets if `name` is not one of them.
 */
export function datasetInfo(name: DatasetName | 'tiny'): DatasetInfo {
  const resolved = name === 'tiny' ? 'tiny-mnist' : name;
  const info = (DATASETS as Record<string, DatasetInfo | undefined>)[resolved];
  if (info == null) {
    throw new Error(
      `unknown data set ${JSON.stringify(name)}; expected one of ${[...DATASET_NAMES, 'tiny'].map((n) => JSON.stringify(n)).join(', ')}`,
    );
  }
  return info;
}

/** The stored file names of one split (the original MNIST names; the test split is "t10k"). */
export function splitFiles(
  info: DatasetInfo,
  split: DatasetSplit,
): {
  /** Path of the images file, relative to data/. */
  images: string;
  /** Path of the labels file, relative to data/. */
  labels: string;
} {
  const stem = split === 'train' ? 'train' : 't10k';
  return {
    images: `${info.dir}/${stem}-images-idx3-ubyte.gz`,
    labels: `${info.dir}/${stem}-labels-idx1-ubyte.gz`,
  };
}

/** 'standard': (byte / 255 − mean) / std with the training split's statistics; 'unit': byte / 255. */
export type NormalizationKind = 'standard' | 'unit';

/** How stored bytes became `images` values: value = (byte / 255 − mean) / std. */
export interface Normalization {
  /** Which normalisation was applied. */
  kind: NormalizationKind;
  /** Subtracted from byte / 255 (0 for 'unit'). */
  mean: number;
  /** Divides byte / 255 − mean (1 for 'unit'). */
  std: number;
}

/** A labelled image set held in memory. */
export interface ImageDataset {
  /** Which data set the images come from. */
  name: DatasetName;
  /** The split they come from ('validation' after {@link splitValidation}). */
  split: DatasetSplit | 'validation';
  /** Number of images. */
  count: number;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Always 1 (greyscale); batches have shape [b, height, width, channels]. */
  channels: 1;
  /** Number of classes; labels are in [0, numClasses). */
  numClasses: number;
  /** Name of each class, indexed by label. */
  classNames: readonly string[];
  /** [count, height, width] row-major, normalised as `normalization` says. */
  images: Float32Array;
  /** [count], each in [0, numClasses). */
  labels: Int32Array;
  /** How the stored bytes were mapped to `images` values. */
  normalization: Normalization;
  /** For a subset: each image's index in the split it was taken from. */
  sourceIndices?: Int32Array;
}

/** Map normalised values back to [0, 1] pixel intensities (for plots). */
export function toUnitRange(values: Float32Array, normalization: Normalization): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * normalization.std + normalization.mean;
  return out;
}

/**
 * The images at `indices` (in that order) as a new data set; `split` defaults to the source's.
 *
 * @throws Error if an index is not an integer in [0, count).
 */
export function subset(
  ds: ImageDataset,
  indices: ArrayLike<number>,
  split: ImageDataset['split'] = ds.split,
): ImageDataset {
  const size = ds.height * ds.width * ds.channels;
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  const sourceIndices = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new Error(`subset: index ${String(i)} at position ${k} is outside [0, ${ds.count})`);
    }
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
    sourceIndices[k] = ds.sourceIndices ? ds.sourceIndices[i] : i;
  }
  return { ...ds, split, count: indices.length, images, labels, sourceIndices };
}

/** Options of {@link splitValidation}: the size of the held-out set (`count` or `fraction`) and its seed. */
export interface ValidationSplitOptions {
  /** Number of validation images; give this or `fraction`. */
  count?: number;
  /** Fraction of the images held out, in (0, 1); the count is round(fraction · n). */
  fraction?: number;
  /** Seed of the random choice of validation images. */
  seed: number;
}

/**
 * Hold out a random validation set from a training split (for choosing hyper-parameters; the
 * test split only reports). The two parts are disjoint, cover the source, and keep its order.
 *
 * @throws Error unless exactly one of `count` (an integer in [1, count − 1]) and `fraction`
 * (in (0, 1)) is given, or if `seed` is invalid.
 */
export function splitValidation(
  ds: ImageDataset,
  options: ValidationSplitOptions,
): {
  /** The images not held out, in source order. */
  train: ImageDataset;
  /** The held-out images, in source order. */
  validation: ImageDataset;
} {
  if (options == null) throw new Error('splitValidation needs options {count | fraction, seed}');
  checkOptions(options, { count: 'number', fraction: 'number', seed: 'number' }, 'splitValidation');
  checkSeed(options.seed, 'splitValidation seed');
  if ((options.count == null) === (options.fraction == null)) {
    throw new Error(
      `splitValidation needs exactly one of count or fraction, got count=${String(options.count)}, fraction=${String(options.fraction)}`,
    );
  }
  let count: number;
  if (options.fraction != null) {
    const f = options.fraction;
    if (typeof f !== 'number' || !(f > 0 && f < 1)) {
      throw new Error(`splitValidation fraction must be in (0, 1), got ${String(f)}`);
    }
    count = Math.round(f * ds.count);
  } else {
    count = options.count as number;
  }
  if (!Number.isInteger(count) || count < 1 || count >= ds.count) {
    throw new Error(
      `splitValidation: validation count must be an integer in [1, ${ds.count - 1}] for ${ds.count} images, got ${String(count)}`,
    );
  }
  const order = permutation(ds.count, options.seed);
  const validationIdx = order.slice(0, count).sort();
  const trainIdx = order.slice(count).sort();
  return { train: subset(ds, trainIdx, 'train'), validation: subset(ds, validationIdx, 'validation') };
}
