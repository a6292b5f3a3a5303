/**
 * Maintenance of data/: import a data set's four IDX files into data/<name>/ (gzipped),
 * cut the tiny slices, write manifest entries, and verify every file the manifest lists.
 * Run through the command line (`npm run data -- import|tiny|verify`, lib/cli/data.ts);
 * data/README.md records the exact commands that built the committed files.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { datasetInfo, splitFiles, TINY_COUNTS, type DatasetName, type DatasetSplit } from './datasets.js';
import { decodeIdx, encodeIdx } from './idx.js';
import { manifestEntry, MANIFEST_FILE, readDataFile, readManifest, type Manifest } from './manifest.js';

const SPLITS: readonly DatasetSplit[] = ['train', 'test'];

/** gzip at level 9; Node writes mtime 0 and no file name, so the output depends only on the input and zlib. */
export function gzipBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes, { level: zlibConstants.Z_BEST_COMPRESSION }));
}

async function readManifestOrEmpty(dataDir: string): Promise<Manifest> {
  if (!existsSync(join(dataDir, MANIFEST_FILE))) {
    return {
      description: 'Sizes and SHA-256 sums of the data files (stored gzip and decoded IDX); see README.md.',
      files: {},
    };
  }
  return readManifest(dataDir);
}

async function writeManifest(dataDir: string, manifest: Manifest): Promise<void> {
  const files = Object.fromEntries(Object.entries(manifest.files).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(join(dataDir, MANIFEST_FILE), `${JSON.stringify({ ...manifest, files }, null, 2)}\n`);
}

async function storeFile(
  dataDir: string,
  manifest: Manifest,
  relPath: string,
  stored: Uint8Array,
  decoded: Uint8Array,
  dims: number,
): Promise<void> {
  const idx = decodeIdx(decoded, dims, relPath);
  await mkdir(dirname(join(dataDir, relPath)), { recursive: true });
  await writeFile(join(dataDir, relPath), stored);
  manifest.files[relPath] = manifestEntry(stored, decoded, idx.shape);
}

/**
 * Copy one data set's files from `sourceDir` into `<dataDir>/<name>/`. A gzipped source file
 * (`train-images-idx3-ubyte.gz`) is copied byte for byte; an uncompressed one is gzipped.
 */
export async function importDataset(name: DatasetName, sourceDir: string, dataDir: string): Promise<string[]> {
  const info = datasetInfo(name);
  const manifest = await readManifestOrEmpty(dataDir);
  const written: string[] = [];
  for (const split of SPLITS) {
    const files = splitFiles(info, split);
    for (const [relPath, dims] of [
      [files.images, 3],
      [files.labels, 1],
    ] as const) {
      const base = relPath.slice(info.dir.length + 1); // e.g. train-images-idx3-ubyte.gz
      const gz = join(sourceDir, base);
      const raw = join(sourceDir, base.replace(/\.gz$/, ''));
      let stored: Uint8Array;
      let decoded: Uint8Array;
      if (existsSync(gz)) {
        stored = new Uint8Array(await readFile(gz));
        decoded = new Uint8Array(gunzipSync(stored));
      } else if (existsSync(raw)) {
        decoded = new Uint8Array(await readFile(raw));
        stored = gzipBytes(decoded);
      } else {
        throw new Error(`importDataset ${name}: neither ${gz} nor ${raw} exists`);
      }
      await storeFile(dataDir, manifest, relPath, stored, decoded, dims);
      written.push(relPath);
    }
  }
  await writeManifest(dataDir, manifest);
  return written;
}

/**
 * Write the tiny slice of a full data set: the first TINY_COUNTS[split] images and labels of
 * each split (verified against the manifest first), as gzipped IDX under data/tiny/<name>/.
 */
export async function makeTinyDataset(parent: 'mnist' | 'fashion-mnist', dataDir: string): Promise<string[]> {
  const source = datasetInfo(parent);
  const tiny = datasetInfo(parent === 'mnist' ? 'tiny-mnist' : 'tiny-fashion-mnist');
  const manifest = await readManifest(dataDir);
  const written: string[] = [];
  for (const split of SPLITS) {
    const from = splitFiles(source, split);
    const to = splitFiles(tiny, split);
    const n = TINY_COUNTS[split];
    const images = decodeIdx(await readDataFile(dataDir, from.images, manifest), 3, from.images);
    const labels = decodeIdx(await readDataFile(dataDir, from.labels, manifest), 1, from.labels);
    const [, h, w] = images.shape;
    const imageIdx = encodeIdx([n, h, w], images.data.subarray(0, n * h * w));
    const labelIdx = encodeIdx([n], labels.data.subarray(0, n));
    await storeFile(dataDir, manifest, to.images, gzipBytes(imageIdx), imageIdx, 3);
    await storeFile(dataDir, manifest, to.labels, gzipBytes(labelIdx), labelIdx, 1);
    written.push(to.images, to.labels);
  }
  await writeManifest(dataDir, manifest);
  return written;
}

/** A data file that {@link verifyDataDir} checked. */
export interface VerifiedFile {
  /** Path relative to the data folder. */
  path: string;
  /** Size of the stored (gzipped) file in bytes. */
  bytes: number;
  /** IDX shape of the decoded content. */
  shape: number[];
  /** SHA-256 of the stored file, hex. */
  sha256: string;
}

/** Check every file the manifest lists: size, SHA-256 (stored and decoded), IDX header and shape. */
export async function verifyDataDir(dataDir: string, onFile?: (f: VerifiedFile) => void): Promise<VerifiedFile[]> {
  const manifest = await readManifest(dataDir);
  const out: VerifiedFile[] = [];
  for (const [relPath, entry] of Object.entries(manifest.files)) {
    const decoded = await readDataFile(dataDir, relPath, manifest);
    const idx = decodeIdx(decoded, entry.decoded.shape.length, join(dataDir, relPath));
    if (idx.shape.join(',') !== entry.decoded.shape.join(',')) {
      throw new Error(
        `${join(dataDir, relPath)}: IDX shape [${idx.shape.join(', ')}], manifest says [${entry.decoded.shape.join(', ')}]`,
      );
    }
    const f = { path: relPath, bytes: entry.bytes, shape: idx.shape, sha256: entry.sha256 };
    onFile?.(f);
    out.push(f);
  }
  return out;
}
