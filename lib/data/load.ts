/**
 * Reading a data set split from disk (Node only): the gzipped IDX files under data/, verified
 * against data/manifest.json. What the data sets are and how pixels are normalised: ./datasets.ts.
 */
import { join } from 'node:path';
import { checkOptions } from '../ops/check.js';
import {
  datasetInfo,
  splitFiles,
  type DatasetName,
  type DatasetSplit,
  type ImageDataset,
  type Normalization,
  type NormalizationKind,
} from './datasets.js';
import { decodeIdx } from './idx.js';
import { readDataFile, readManifest, type Manifest } from './manifest.js';
import { defaultDataDir } from './paths.js';

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions {
  /** Folder holding manifest.json and the data set folders. Default: <project root>/data. */
  dataDir?: string;
  /** Verify sizes and SHA-256 sums against the manifest. Default true (≈0.2 s for 60k images). */
  verify?: boolean;
  /** 'standard' (default): per-data-set mean/std; 'unit': byte / 255. */
  normalization?: NormalizationKind;
}

/**
 * Load one split of a data set into memory: verify, decode, check counts, normalise.
 *
 *   const train = await loadDataset('fashion-mnist', 'train');
 *   train.images // Float32Array [60000·28·28], train.labels // Int32Array [60000]
 *
 * @param name 'mnist', 'fashion-mnist', their tiny slices, or 'tiny' (= 'tiny-mnist').
 * @param split 'train' (60 000 images) or 'test' (10 000); hold out validation with {@link splitValidation}.
 * @returns images [count, 28, 28] row-major and labels [count], normalised as `options.normalization` says.
 * @throws Error if the name or split is unknown, a file is missing, truncated or fails its SHA-256
 * check (the message says how to restore it), or the counts or labels are out of range.
 *
 * @example
 * ```ts
 * const train = await loadDataset('fashion-mnist', 'train');
 * const { train: fit, validation } = splitValidation(train, { count: 5000, seed: 0 });
 * console.log(fit.count, validation.count, train.classNames[train.labels[0]]);
 * ```
 */
export async function loadDataset(
  name: DatasetName | 'tiny',
  split: DatasetSplit,
  options: LoadDatasetOptions = {},
): Promise<ImageDataset> {
  checkOptions(options, { dataDir: 'string', verify: 'boolean', normalization: ['standard', 'unit'] }, 'loadDataset');
  const info = datasetInfo(name);
  if (split !== 'train' && split !== 'test') {
    throw new Error(`split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  const kind = options.normalization ?? 'standard';
  if (kind !== 'standard' && kind !== 'unit') {
    throw new Error(`normalization must be "standard" or "unit", got ${JSON.stringify(kind)}`);
  }
  const dataDir = options.dataDir ?? defaultDataDir();
  const verify = options.verify ?? true;
  const manifest: Manifest = verify ? await readManifest(dataDir) : { description: '', files: {} };
  const files = splitFiles(info, split);

  const [imageBytes, labelBytes] = await Promise.all([
    readDataFile(dataDir, files.images, manifest, { verify }),
    readDataFile(dataDir, files.labels, manifest, { verify }),
  ]);
  const imagesPath = join(dataDir, files.images);
  const labelsPath = join(dataDir, files.labels);
  const images = decodeIdx(imageBytes, 3, imagesPath);
  const labels = decodeIdx(labelBytes, 1, labelsPath);

  const [count, height, width] = images.shape;
  if (labels.shape[0] !== count) {
    throw new Error(
      `${info.name} ${split}: ${imagesPath} holds ${count} images but ${labelsPath} holds ${labels.shape[0]} labels`,
    );
  }
  if (count !== info.counts[split]) {
    throw new Error(`${info.name} ${split}: expected ${info.counts[split]} images, ${imagesPath} holds ${count}`);
  }
  if (height !== info.height || width !== info.width) {
    throw new Error(
      `${info.name} ${split}: expected ${info.height}×${info.width} images, ${imagesPath} holds ${height}×${width}`,
    );
  }
  const numClasses = info.classNames.length;
  const labelArray = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels.data[i];
    if (label >= numClasses) {
      throw new Error(`${labelsPath}: label ${label} at index ${i} is outside [0, ${numClasses})`);
    }
    labelArray[i] = label;
  }

  const normalization: Normalization =
    kind === 'standard' ? { kind, mean: info.mean, std: info.std } : { kind, mean: 0, std: 1 };
  // One float32 value per byte value: the same rounding for every pixel, and fast.
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) table[b] = (b / 255 - normalization.mean) / normalization.std;
  const pixels = images.data;
  const values = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) values[i] = table[pixels[i]];

  return {
    name: info.name,
    split,
    count,
    height,
    width,
    channels: 1,
    numClasses,
    classNames: info.classNames,
    images: values,
    labels: labelArray,
    normalization,
  };
}
