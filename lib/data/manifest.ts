/**
 * data/manifest.json: the size and SHA-256 of every data file, both as stored (gzipped) and
 * decoded (the IDX bytes inside), with the IDX shape. The loader checks a file against it
 * before use, so a truncated, corrupted or swapped file fails loudly instead of training on
 * garbage. The decoded SHA-256 values of the full MNIST and Fashion-MNIST files equal the ones
 * published for the original IDX files (see data/README.md), which pins the data themselves,
 * whatever gzip produced the stored bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';

const gunzip = promisify(gunzipCallback);

/** One file's entry: the stored bytes and the decoded IDX bytes. */
export interface ManifestEntry {
  /** Size of the stored (gzipped) file in bytes. */
  bytes: number;
  /** SHA-256 (hex) of the stored file. */
  sha256: string;
  /** The IDX content after gunzip. */
  decoded: {
    /** Size of the decoded IDX content in bytes. */
    bytes: number;
    /** SHA-256 of the decoded IDX content, hex. */
    sha256: string;
    /** IDX shape, e.g. [60000, 28, 28]. */
    shape: number[];
  };
}

/** The parsed data/manifest.json. */
export interface Manifest {
  /** Free text: what this manifest covers. */
  description: string;
  /** Paths relative to the data folder, with forward slashes → entry. */
  files: Record<string, ManifestEntry>;
}

/** Name of the manifest inside the data folder. */
export const MANIFEST_FILE = 'manifest.json';

/** SHA-256 of `bytes` as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function restoreHint(relPath: string): string {
  return (
    `restore it with \`git checkout -- data/${relPath}\` from the project root ` +
    '(the data files are committed), or rebuild it as data/README.md describes'
  );
}

/** Read and check the shape of `<dataDir>/manifest.json`. */
export async function readManifest(dataDir: string): Promise<Manifest> {
  const path = join(dataDir, MANIFEST_FILE);
  if (!existsSync(path)) {
    throw new Error(`data manifest missing: ${path} does not exist; ${restoreHint(MANIFEST_FILE)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(
      `data manifest ${path} is not valid JSON (${(err as Error).message}); ${restoreHint(MANIFEST_FILE)}`,
    );
  }
  const files = (parsed as { files?: unknown }).files;
  if (files == null || typeof files !== 'object') {
    throw new Error(`data manifest ${path} has no "files" object; ${restoreHint(MANIFEST_FILE)}`);
  }
  for (const [name, entry] of Object.entries(files as Record<string, unknown>)) {
    const e = entry as Partial<ManifestEntry>;
    const ok =
      typeof e.bytes === 'number' &&
      typeof e.sha256 === 'string' &&
      e.decoded != null &&
      typeof e.decoded.bytes === 'number' &&
      typeof e.decoded.sha256 === 'string' &&
      Array.isArray(e.decoded.shape);
    if (!ok) {
      throw new Error(
        `data manifest ${path}: entry "${name}" must have bytes, sha256 and decoded {bytes, sha256, shape}`,
      );
    }
  }
  return parsed as Manifest;
}

/** The manifest entry for a stored file and its decoded content. */
export function manifestEntry(stored: Uint8Array, decoded: Uint8Array, shape: number[]): ManifestEntry {
  return {
    bytes: stored.length,
    sha256: sha256Hex(stored),
    decoded: { bytes: decoded.length, sha256: sha256Hex(decoded), shape: [...shape] },
  };
}

/** Options of {@link readDataFile}. */
export interface ReadDataFileOptions {
  /** Check sizes and SHA-256 sums against the manifest. Default true. */
  verify?: boolean;
}

/**
 * Read `<dataDir>/<relPath>` (a gzipped file listed in the manifest), verify it and return the
 * decoded bytes. Errors name the file, what was expected, what was found and how to restore it.
 */
export async function readDataFile(
  dataDir: string,
  relPath: string,
  manifest: Manifest,
  options: ReadDataFileOptions = {},
): Promise<Uint8Array> {
  const verify = options.verify ?? true;
  const path = join(dataDir, relPath);
  const entry = manifest.files[relPath];
  if (verify && entry == null) {
    throw new Error(`data file ${relPath} is not listed in ${join(dataDir, MANIFEST_FILE)}; cannot verify it`);
  }
  if (!existsSync(path)) {
    throw new Error(`data file missing: ${path} does not exist; ${restoreHint(relPath)}`);
  }
  const stored = new Uint8Array(await readFile(path));
  if (verify && entry != null) {
    if (stored.length < entry.bytes) {
      throw new Error(
        `data file ${path} is truncated: ${stored.length} bytes, the manifest says ${entry.bytes}; ${restoreHint(relPath)}`,
      );
    }
    const actual = sha256Hex(stored);
    if (actual !== entry.sha256 || stored.length !== entry.bytes) {
      throw new Error(
        `checksum mismatch for data file ${path}: expected sha256 ${entry.sha256} (${entry.bytes} bytes), ` +
          `got ${actual} (${stored.length} bytes); the file is corrupted or was replaced; ${restoreHint(relPath)}`,
      );
    }
  }
  if (stored.length < 2 || stored[0] !== 0x1f || stored[1] !== 0x8b) {
    throw new Error(`data file ${path} is not gzip data (it does not start with 1f 8b); ${restoreHint(relPath)}`);
  }
  let decoded: Uint8Array;
  try {
    decoded = new Uint8Array(await gunzip(stored));
  } catch (err) {
    throw new Error(
      `data file ${path} is truncated or corrupted: gunzip failed (${(err as Error).message}); ${restoreHint(relPath)}`,
    );
  }
  if (verify && entry != null) {
    const actual = sha256Hex(decoded);
    if (actual !== entry.decoded.sha256 || decoded.length !== entry.decoded.bytes) {
      throw new Error(
        `checksum mismatch for the decoded content of ${path}: expected sha256 ${entry.decoded.sha256} ` +
          `(${entry.decoded.bytes} bytes), got ${actual} (${decoded.length} bytes); ${restoreHint(relPath)}`,
      );
    }
  }
  return decoded;
}
